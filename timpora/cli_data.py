"""`timpora simulate`, `validate`, `ingest` and `features`: making, checking and growing a data set.

Wiring only: the packages are imported inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from timpora.cli_common import (
    EXIT_ERROR,
    EXIT_USAGE,
    console,
    fail,
    latest_date,
    load_data,
    parse_date,
    say,
    settings,
    usage_errors,
)


def simulate(
    out: Annotated[Path, typer.Option(help="Directory to write the data set into (created if missing).")],
    persons: Annotated[
        int | None, typer.Option(min=10, help="Number of foreign nationals in the world. Default: settings.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives the same world. Default: settings.")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First day of the simulated period (YYYY-MM-DD). Default: settings.")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last day of the simulated period (YYYY-MM-DD). Default: settings.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="File format of the tables: parquet or csv.")
    ] = "parquet",
    false_tips_on: Annotated[
        str | None,
        typer.Option(
            help="Nationality (ISO alpha-3) the public files false tips about, 10x the background "
            "(a world whose labelled view favours the office rule)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a directory that already holds files (they are deleted).")
    ] = False,
) -> None:
    """Write a synthetic world in the data contract, with hidden truth in _truth/."""
    from features.tables import write_tables, write_truth
    from simulator.summary import summarise_world
    from simulator.world import WorldConfig, simulate_world

    if fmt not in ("parquet", "csv"):
        fail(f"--format must be parquet or csv, got {fmt!r}", EXIT_USAGE)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        fail(
            f"{out} already holds files (a data set, ingested outcomes, lists?): "
            "choose another --out, or pass --force to replace it",
            EXIT_USAGE,
        )
    defaults = settings().simulation
    start_date = parse_date(start, "--start") if start else defaults.start
    end_date = parse_date(end, "--end") if end else defaults.end
    persons = defaults.persons if persons is None else persons
    seed = defaults.seed if seed is None else seed
    if end_date <= start_date:
        fail("--end must be after --start", EXIT_USAGE)
    with usage_errors():
        config = WorldConfig(
            persons=persons, seed=seed, start=start_date, end=end_date, false_tip_nationality=false_tips_on
        )
    world = simulate_world(config)
    if force and out.is_dir():
        shutil.rmtree(out)
    elif force and out.exists():
        out.unlink()
    write_tables(world.tables, out, fmt)  # type: ignore[arg-type]
    write_truth(world.truth, out, fmt)  # type: ignore[arg-type]
    console.print(summarise_world(world))
    console.print(f"Wrote {out}/ ({fmt}), ground truth in {out}/_truth/ (evaluation only).")


def validate(
    data: Annotated[Path, typer.Argument(help="Data set directory: one <table>.parquet or .csv per table.")],
) -> None:
    """Check a data set against the data contract and print a report (exit 1 if invalid)."""
    from features.loading import load_tables

    result = load_tables(data)
    say(result.report.render())
    if not result.report.ok:
        raise typer.Exit(EXIT_ERROR)


def ingest(
    data: Annotated[Path, typer.Argument(help="Data set directory to add the rows to.")],
    file: Annotated[
        Path, typer.Argument(help="CSV or parquet file of new rows, in the contract's columns of the table.")
    ],
    table: Annotated[
        str, typer.Option(help="Event table the rows belong to (persons and sponsors are refused).")
    ] = "inspections",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report what would be added; write nothing.")
    ] = False,
    today: Annotated[
        str | None,
        typer.Option(help="Today (YYYY-MM-DD): rows dated later are rejected. Default: the system date."),
    ] = None,
) -> None:
    """Add new rows to an event table: checked, idempotent, atomic, logged (exit 1 if rejected)."""
    from features.ingest import ingest as ingest_rows

    day = parse_date(today, "--today") if today else None
    try:
        result = ingest_rows(data, file, table, dry_run=dry_run, today=day)
    except OSError as exc:
        fail(f"cannot ingest into {data}: {exc}")
    if not result.ok:
        say(result.report.render(), err=True)
        fail(f"rejected {file}: nothing was written")
    for issue in result.report.warnings:
        say(issue.render())
    verb = "would add" if dry_run else "added"
    lines = [f"{result.table}: {result.rows_in_file:,} rows in {file}, {verb} {result.added:,}"]
    if result.unchanged:
        lines.append(f"{result.unchanged:,} rows already present, unchanged")
    if result.not_visited:
        lines.append(f"{result.not_visited:,} listed cases recorded as not visited on their list")
    if dry_run:
        lines.append("dry run: nothing written")
    elif not result.added:
        lines.append("nothing to add: the table was not rewritten")
    say("; ".join(lines))


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
    from features.pipeline import build_features, describe_features

    tables = load_data(data)
    dates = [parse_date(d, "--as-of") for d in as_of] if as_of else [latest_date(tables)]
    matrix = build_features(tables, dates)
    out.parent.mkdir(parents=True, exist_ok=True)
    matrix.to_parquet(out)
    console.print(describe_features(matrix))
    console.print(f"Wrote {len(matrix):,} cases x {matrix.shape[1]} features to {out}")
