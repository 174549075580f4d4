"""What every command shares: the settings (built once per process), printing, and one way to fail.

Errors reach the user one way: `fail` (one sentence on stderr, then the exit
code), or a data contract report printed verbatim by `data_errors`. Heavy
imports (the settings pull in MLflow) happen on first use, so `--help` stays fast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from features.tables import Tables
    from models.mlflow_store import TrackingConfig
    from timpora.settings import Settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_ERROR = 1  # runtime or data error
EXIT_USAGE = 2  # usage error or unknown filter value
EXIT_NOT_REGISTERED = 3
EXIT_NOT_PROMOTED = 4


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print one error sentence on stderr and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def say(text: str, *, err: bool = False) -> None:
    """Print data verbatim (on stderr if `err`): no markup, no highlighting, no wrapping inside a token."""
    (err_console if err else console).print(text, highlight=False, markup=False, soft_wrap=True)


@contextmanager
def data_errors() -> Iterator[None]:
    """Turn a data set or run that cannot go on into exit 1.

    `DataContractError`: its validation report, verbatim on stderr. `ValueError`:
    its message, one sentence. Anything else propagates.
    """
    from features.loading import DataContractError

    try:
        yield
    except DataContractError as exc:
        say(exc.report.render(), err=True)
        raise typer.Exit(EXIT_ERROR) from None
    except ValueError as exc:
        fail(str(exc))


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn a `ValueError` from checking the options (a config object refusing them) into exit 2."""
    try:
        yield
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


@cache
def settings() -> Settings:
    """The settings of this process, loaded on first use; a bad setting is a usage error."""
    from timpora.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc), EXIT_USAGE)


def tracking() -> TrackingConfig:
    """The MLflow store of the settings, with MLflow quietened first: call it before any MLflow use."""
    from models.mlflow_store import quiet_mlflow

    quiet_mlflow()
    return settings().tracking


def load_data(data: Path) -> Tables:
    """The data set in `data`, validated against the contract; exit 1 with the report if it is not valid."""
    from features.loading import load_valid_tables

    with data_errors():
        return load_valid_tables(data)


def default_as_of(tables: Tables) -> dt.date:
    """The default as-of date: the date the data set is known through (the last date every continuously
    fed table of the settings covers, `Tables.known_through`); exit 1 if it has no dated rows."""
    known = tables.known_through(settings().dataset.continuous_tables)
    if known is None:
        fail("the data set has no dated rows; pass --as-of")
    return known.date()


def parse_date(value: str, option: str) -> dt.date:
    """`value` as an ISO date; exit 2 naming `option` if it is not one."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} must be a date as YYYY-MM-DD, got {value!r}", EXIT_USAGE)
