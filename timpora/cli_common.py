"""What every command shares: the settings (built once per process), printing, and one way to fail."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from timpora.settings import Settings, SettingsError, load_settings

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


def say(text: str) -> None:
    """Print data verbatim: no markup, no highlighting, no wrapping inside a token."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@cache
def settings() -> Settings:
    """The settings of this process, loaded on first use; a bad setting is a usage error."""
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc), EXIT_USAGE)


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} must be a date as YYYY-MM-DD, got {value!r}", EXIT_USAGE)
