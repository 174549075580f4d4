"""The `timpora` command line: subcommands in the order of the workflow.

Each command is wiring only: parse options, call the packages, print. Heavy
imports happen inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from timpora.config import SETTINGS

app = typer.Typer(
    name="timpora",
    help=(
        "Timpora: ranked, explained inspection lists for immigration supervision teams. "
        "Workflow: simulate (or bring data) -> validate -> features -> train -> rank -> serve."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

_SIM = SETTINGS.simulation


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} must be a date as YYYY-MM-DD, got {value!r}", 2)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Directory to write the data set into (created if missing).")],
    persons: Annotated[int, typer.Option(min=10, help="Number of foreign nationals in the world.")] = (
        _SIM.persons
    ),
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same world.")] = _SIM.seed,
    start: Annotated[str, typer.Option(help="First day of the simulated period (YYYY-MM-DD).")] = (
        _SIM.start.isoformat()
    ),
    end: Annotated[str, typer.Option(help="Last day of the simulated period (YYYY-MM-DD).")] = (
        _SIM.end.isoformat()
    ),
    fmt: Annotated[
        str, typer.Option("--format", help="File format of the tables: parquet or csv.")
    ] = "parquet",
) -> None:
    """Write a synthetic world in the data contract, with hidden truth in _truth/."""
    from simulator.summary import summarise_world
    from simulator.world import WorldConfig, simulate_world

    from features.tables import write_tables, write_truth

    if fmt not in ("parquet", "csv"):
        _fail(f"--format must be parquet or csv, got {fmt!r}", 2)
    start_date, end_date = _parse_date(start, "--start"), _parse_date(end, "--end")
    if end_date <= start_date:
        _fail("--end must be after --start", 2)
    config = WorldConfig(persons=persons, seed=seed, start=start_date, end=end_date)
    world = simulate_world(config)
    write_tables(world.tables, out, fmt)  # type: ignore[arg-type]
    write_truth(world.truth, out, fmt)  # type: ignore[arg-type]
    console.print(summarise_world(world))
    console.print(f"Wrote {out}/ ({fmt}), ground truth in {out}/_truth/ (evaluation only).")


@app.command()
def validate(
    data: Annotated[Path, typer.Argument(help="Data set directory: one <table>.parquet or .csv per table.")],
) -> None:
    """Check a data set against the data contract and print a report (exit 1 if invalid)."""
    from features.loading import load_tables

    result = load_tables(data)
    console.print(result.report.render(), highlight=False)
    if not result.report.ok:
        raise typer.Exit(1)


@app.command()
def features(
    data: Annotated[Path, typer.Argument(help="Data set directory in the data contract's shape.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write the feature matrix to.")],
    as_of: Annotated[
        list[str] | None,
        typer.Option(
            "--as-of",
            help="Date (YYYY-MM-DD) to compute features as of; repeat for several. "
            "Default: the latest event date in the data.",
        ),
    ] = None,
) -> None:
    """Build the point-in-time feature matrix: one row per case (person in the country) and date."""
    from features.loading import DataContractError, load_valid_tables

    from features.pipeline import build_features, describe_features

    try:
        tables = load_valid_tables(data)
    except DataContractError as exc:
        err_console.print(exc.report.render(), highlight=False)
        raise typer.Exit(1) from None
    if as_of:
        dates = [_parse_date(d, "--as-of") for d in as_of]
    else:
        last = tables.last_date()
        if last is None:
            _fail("the data set has no dated rows; pass --as-of")
        dates = [last.date()]
    matrix = build_features(tables, dates)
    out.parent.mkdir(parents=True, exist_ok=True)
    matrix.to_parquet(out)
    console.print(describe_features(matrix))
    console.print(f"Wrote {len(matrix):,} cases x {matrix.shape[1]} features to {out}")


def main() -> None:  # pragma: no cover - console entry point
    app(sys.argv[1:])
