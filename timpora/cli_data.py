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
    default_as_of,
    fail,
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
    """Check a data set against the data contract and print a report (exit 1 if invalid), then each
    table's last date and the date the data set is known through (the default as-of date)."""
    from features.loading import load_tables
    from timpora.cli_dates import print_data_dates

    result = load_tables(data, old_date_year=settings().dataset.old_date_year)
    say(result.report.render())
    if not result.report.ok or result.tables is None:
        raise typer.Exit(EXIT_ERROR)
    print_data_dates(result.tables)


def ingest(
    data: Annotated[Path, typer.Argument(help="Data set directory to add the rows to.")],
    file: Annotated[
        Path, typer.Argument(help="CSV or parquet file of new rows, in the contract's columns of the table.")
    ],
    table: Annotated[
        str,
        typer.Option(help="Table the rows belong to: an event table, or persons and sponsors (new ids)."),
    ] = "inspections",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report what would be added; write nothing.")
    ] = False,
    today: Annotated[
        str | None,
        typer.Option(help="Today (YYYY-MM-DD): rows dated later are rejected. Default: the system date."),
    ] = None,
    correct: Annotated[
        bool,
        typer.Option(
            "--correct",
            help="Replace the rows of the same key (each must exist) instead of adding; "
            "the old rows are kept in the ingest log. Needs --reason.",
        ),
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why the rows are corrected (with --correct; kept in the ingest log).")
    ] = None,
) -> None:
    """Add new rows to a table, or correct rows by key: checked, atomic, logged (exit 1 if rejected)."""
    from features.ingest import ingest as ingest_rows
    from features.ingest import reason_problem
    from timpora.cli_dates import print_data_dates

    day = parse_date(today, "--today") if today else None
    if correct and (problem := reason_problem(reason)) is not None:
        fail(problem, EXIT_USAGE)
    if reason is not None and not correct:
        fail("--reason goes with --correct: an addition needs no reason", EXIT_USAGE)
    try:
        result = ingest_rows(
            data,
            file,
            table,
            dry_run=dry_run,
            today=day,
            correct=correct,
            reason=reason,
            old_date_year=settings().dataset.old_date_year,
        )
    except OSError as exc:
        fail(f"cannot ingest into {data}: {exc}")
    if not result.ok:
        say(result.report.render(), err=True)
        fail(f"rejected {file}: nothing was written")
    for issue in result.report.warnings:
        say(issue.render())
    if correct:
        verb = "would correct" if dry_run else "corrected"
        count = result.corrected
    else:
        verb = "would add" if dry_run else "added"
        count = result.added
    lines = [f"{result.table}: {result.rows_in_file:,} rows in {file}, {verb} {count:,}"]
    if result.unchanged:
        lines.append(f"{result.unchanged:,} rows already present, unchanged")
    if result.not_visited:
        lines.append(f"{result.not_visited:,} listed cases recorded as not visited on their list")
    if dry_run:
        lines.append("dry run: nothing written")
    elif not result.written:
        lines.append(f"nothing to {'correct' if correct else 'add'}: the table was not rewritten")
    elif correct:
        lines.append("the replaced rows are kept in the ingest log")
    say("; ".join(lines))
    if result.written:  # where the data set now reaches (a table run ahead moves no default date)
        print_data_dates(load_data(data))


def features(
    data: Annotated[Path, typer.Argument(help="Data set directory in the data contract's shape.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write the feature matrix to.")],
    as_of: Annotated[
        list[str] | None,
        typer.Option(
            "--as-of",
            help="Date (YYYY-MM-DD) to compute features as of; repeat for several. "
            "Default: the date the data set is known through (see validate).",
        ),
    ] = None,
) -> None:
    """Build the point-in-time feature matrix: one row per case (person in the country) and date."""
    from features.pipeline import build_features, describe_features

    tables = load_data(data)
    dates = [parse_date(d, "--as-of") for d in as_of] if as_of else [default_as_of(tables)]
    matrix = build_features(tables, dates)
    out.parent.mkdir(parents=True, exist_ok=True)
    matrix.to_parquet(out)
    console.print(describe_features(matrix))
    console.print(f"Wrote {len(matrix):,} cases x {matrix.shape[1]} features to {out}")
