"""The ``nasforge`` command line. Commands stay thin: they parse, call the library, and print.

One module per group of commands: ``_search`` (search), ``_runs`` (show, report), ``_model``
(train, export, profile, zoo), ``_predict`` (predict), ``_bench`` (list, bench, rank); ``_app``
holds the app, its consoles and the error handling, ``_progress`` the progress bars and lines,
``_tables`` the tables. The commands are registered below, in the order ``nasforge --help`` lists them.
"""

from __future__ import annotations

from nasforge.cli._app import app, main
from nasforge.cli._bench import bench, list_components, rank
from nasforge.cli._model import export, profile, train, zoo
from nasforge.cli._predict import predict
from nasforge.cli._runs import report, show
from nasforge.cli._search import _terminate_as_interrupt, search
from nasforge.cli._tables import fitted_table as _fitted_table
from nasforge.config import merge_executor_options as _executor_options
from nasforge.config import merge_track_options as _track_options

for _command in (search, show, report, train, predict, export, profile, zoo):
    app.command()(_command)
app.command("list")(list_components)
app.command()(bench)
app.command()(rank)

__all__ = ["_executor_options", "_fitted_table", "_terminate_as_interrupt", "_track_options", "app", "main"]
