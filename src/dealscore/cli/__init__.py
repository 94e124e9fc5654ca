"""The ``dealscore`` command: one Typer app, one sub-module per area.

Every command turns a :class:`~dealscore.errors.DealscoreError` into a one-line
message and a non-zero exit, so users never see a traceback for bad input.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from importlib.metadata import entry_points
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console

from dealscore.errors import DealscoreError

app = typer.Typer(
    name="dealscore",
    help="Score open B2B deals: real stage, win probability, reasons and next-best actions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
#: Width when the output is not a terminal (a log, a pipe): wide enough that ids, paths and
#: commands are never cut or wrapped, as rich's default of 80 columns did.
PIPE_WIDTH = 200


def _width(stream: TextIO) -> int | None:
    """rich's own choice on a terminal or when ``COLUMNS`` says; :data:`PIPE_WIDTH` otherwise."""
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return PIPE_WIDTH


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))


def _finite(obj: Any) -> Any:
    """The value with every NaN or infinite float as None (JSON's null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def json_text(obj: Any) -> str:
    """Valid JSON for the commands' ``--json``/``--format json`` output: never ``NaN`` or ``Infinity``.

    Python's ``json`` writes those tokens, which no JSON parser but Python's accepts;
    a number that is not finite is written as null (inputs refuse such numbers,
    so this is the last guard, not the rule).
    """
    return json.dumps(_finite(obj), indent=2, allow_nan=False)


@app.callback()
def _root() -> None:
    """Score open B2B deals: real stage, win probability, reasons and next-best actions."""

SchedulerOpt = Annotated[
    str | None,
    typer.Option("--scheduler", envvar="DEALSCORE_SCHEDULER",
                 help="Run on a Dask cluster: a scheduler address (tcp://host:8786) or local:N for a LocalCluster "
                 "of N workers. The history is then a partitioned one (docs/scale-out.md). Default: this process."),
]
"""The ``--scheduler`` option of the commands that can run on a cluster (and its ``DEALSCORE_SCHEDULER`` setting)."""

# Sub-modules register their commands on ``app`` when imported.
from dealscore.cli import data as _data  # noqa: E402,F401
from dealscore.cli import features as _features  # noqa: E402,F401
from dealscore.cli import forecast as _forecast  # noqa: E402,F401
from dealscore.cli import importers as _importers  # noqa: E402,F401
from dealscore.cli import score as _score  # noqa: E402,F401
from dealscore.cli import simulate as _simulate  # noqa: E402,F401
from dealscore.cli import train as _train  # noqa: E402,F401

#: Entry-point group through which installed packages add commands (the service adds serve, api-key, demo).
PLUGIN_GROUP = "dealscore.cli"


def _load_plugins() -> None:
    """Import every module registered under :data:`PLUGIN_GROUP`; each adds its commands to ``app``.

    A plugin whose code is not importable (a partial installation) is skipped:
    the library's own commands still work, and the missing command says so.
    """
    for ep in entry_points(group=PLUGIN_GROUP):
        with contextlib.suppress(ImportError):
            ep.load()


_load_plugins()


def main() -> None:
    """Console entry point: run the app, mapping product errors to clean exits."""
    try:
        app()
    except DealscoreError as exc:
        text = str(exc)
        fix = exc.detail.get("fix")
        if fix and "Fix:" not in text:  # most errors carry the fix beside the message (the API sends both)
            text += f". Fix: {fix}"
        err_console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
        sys.exit(2)
