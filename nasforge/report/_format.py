"""HTML pieces of the report: escaping, numbers and times for cells, tables, embedded images, and
the one-line reason of a failed trial."""

from __future__ import annotations

import base64
import math
import re
import time
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasforge.experiment import Trial
    from nasforge.space import Architecture

__all__ = [
    "arch_cell",
    "describe_arch",
    "error_line",
    "esc",
    "failure_reason",
    "img",
    "kv",
    "note",
    "num",
    "seconds",
    "table",
    "when",
]


def esc(value: Any) -> str:
    """Anything from the run, as HTML text."""
    return escape(str(value), quote=True)


def num(value: Any) -> str:
    """A metric for a table cell: thousands separated, 4 significant decimals below 10."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 1000 or (abs(value) >= 10 and value.is_integer()):
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def seconds(s: float | None) -> str:
    """``12.3 s``, ``4 min 05 s`` or ``1 h 02 min``; empty for None."""
    if s is None:
        return ""
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def when(timestamp: float | None) -> str:
    """A timestamp as local ``YYYY-MM-DD HH:MM:SS``; empty for None."""
    return "" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def describe_arch(arch: Architecture) -> str:
    """The space's short text for ``arch``: :meth:`nasforge.space.SearchSpace.describe`."""
    return arch.space.describe(arch)


def error_line(error: str | None) -> str:
    """The line of an error that says what happened: a traceback's last line, else the first."""
    lines = [line.strip() for line in (error or "").strip().splitlines() if line.strip()]
    if not lines:
        return "no reason recorded"
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def failure_reason(trial: Trial) -> str:
    """A failure's kind, so that trials failing alike count together.

    ``interrupted`` for trials whose process stopped, the exception type or the text before the
    first ``": "`` (``infeasible before training``), else the line with its numbers masked.
    """
    if trial.interrupted:
        return "interrupted (retried on resume)"
    line = error_line(trial.error)
    head, sep, _ = line.partition(": ")
    if sep and len(head) <= 48:
        return head
    masked = re.sub(r"\d+(\.\d+)?", "N", line)
    return masked if len(masked) <= 100 else masked[:97] + "..."


def table(header: Sequence[str], rows: Iterable[Sequence[str]], *, ident: str = "") -> str:
    """An HTML table; cells are HTML already (escape run strings before)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join('<tr class="row">' + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    id_attr = f' id="{ident}"' if ident else ""
    return f'<table class="data"{id_attr}><thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>'


def kv(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column key / value table; values are HTML already."""
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>\n" for k, v in pairs)
    return f'<table class="kv"><tbody>\n{rows}</tbody></table>'


def img(path: Path, alt: str) -> str:
    """The PNG at ``path`` embedded as a data URI (the page loads nothing from elsewhere)."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="plot" src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def arch_cell(trial: Trial) -> str:
    """A table cell with the trial's architecture."""
    return f"<code>{esc(describe_arch(trial.architecture))}</code>"


def note(text: str) -> str:
    """A note paragraph; ``text`` is HTML already."""
    return f'<p class="note">{text}</p>'
