"""The typer app, its consoles, and what every command shares: errors as one line, names from the
registry in help texts, the warning format."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from nasforge.errors import NasforgeError
from nasforge.registry import Registry

app = typer.Typer(
    name="nasforge",
    help="Neural Architecture Search: find, train and hand back a model for your data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # help paragraphs are reflowed to the terminal width
)
out = Console()
err = Console(stderr=True)
DEVICE_HELP = "Where to train: auto (CUDA if available, then MPS, then CPU), cpu, cuda, cuda:N, mps."


def names_help(registry: Registry, notes: Mapping[str, str] | None = None) -> str:
    """The names ``registry`` holds, for an option's help text: ``a, b (a note), c``.

    Read from the registry when the CLI starts, so a newly registered component shows up in
    ``--help`` without editing it; ``notes`` adds a remark to the names that need one.
    """
    notes = notes or {}
    return ", ".join(f"{n} ({notes[n]})" if n in notes else n for n in registry.names())


def recipe_help(key: str, stage: str = "trial") -> str:
    """What the table of recipes per dataset (:data:`nasforge._defaults.RECIPES`) gives ``key`` at
    ``stage``, for an option's help text: ``digits none, mnist shift, ..., other data none``.

    Read from the table, so ``--help`` follows it when its numbers change.
    """
    from nasforge._defaults import DEFAULT_RECIPE, RECIPES

    def say(value: Any) -> str:
        return f"{value:g}" if isinstance(value, float) else str(value)

    items = [f"{name} {say(getattr(recipes[stage], key))}" for name, recipes in RECIPES.items()]
    return ", ".join([*items, f"other data {say(getattr(DEFAULT_RECIPE[stage], key))}"])


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input becomes one line on stderr and exit code 2; no traceback."""
    try:
        yield
    except NasforgeError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        from nasforge import __version__

        out.print(__version__)
        raise typer.Exit()


_default_showwarning = warnings.showwarning


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Data notices (images resized, ...), images far from the model's input size and tracker
    failures as one readable line; others as usual."""
    from nasforge.data._own import DataNotice
    from nasforge.deploy import ImageSizeWarning
    from nasforge.track import TrackingWarning

    if issubclass(category, DataNotice):
        err.print(f"[yellow]notice:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    elif issubclass(category, TrackingWarning | ImageSizeWarning):
        err.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    else:
        _default_showwarning(message, category, *args, **kwargs)


def main() -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_warning
    app(prog_name="nasforge")
