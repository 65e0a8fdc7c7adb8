"""The HTML report of a run: leaderboard, plots, architecture diagrams and failures in one page.

Example:
    >>> from nasforge.report import write_report
    >>> write_report("runs/digits-evolution")  # doctest: +SKIP
    PosixPath('runs/digits-evolution/report/index.html')
"""

from nasforge.report._html import write_report

__all__ = ["write_report"]
