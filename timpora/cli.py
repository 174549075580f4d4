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
from rich.markup import escape

from timpora import cli_lists
from timpora.cli_access import audit_app, keys_app
from timpora.cli_common import settings

EXIT_CODES = (
    "Exit codes (every command): 0 done; 1 runtime or data error; 2 usage error or unknown filter value; "
    "3 not registered (train, retrain); 4 not promoted (promote, retrain)."
)
EXIT_NOT_REGISTERED = 3
EXIT_NOT_PROMOTED = 4

app = typer.Typer(
    name="timpora",
    help=(
        "Timpora: ranked, explained inspection lists for immigration supervision teams. "
        "Workflow: simulate (or bring data) -> validate -> features -> train -> rank -> serve."
    ),
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _say(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} must be a date as YYYY-MM-DD, got {value!r}", 2)


@app.command()
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
) -> None:
    """Write a synthetic world in the data contract, with hidden truth in _truth/."""
    from features.tables import write_tables, write_truth
    from simulator.summary import summarise_world
    from simulator.world import WorldConfig, simulate_world

    if fmt not in ("parquet", "csv"):
        _fail(f"--format must be parquet or csv, got {fmt!r}", 2)
    defaults = settings().simulation
    start_date = _parse_date(start, "--start") if start else defaults.start
    end_date = _parse_date(end, "--end") if end else defaults.end
    persons = defaults.persons if persons is None else persons
    seed = defaults.seed if seed is None else seed
    if end_date <= start_date:
        _fail("--end must be after --start", 2)
    try:
        config = WorldConfig(
            persons=persons, seed=seed, start=start_date, end=end_date, false_tip_nationality=false_tips_on
        )
    except ValueError as exc:
        _fail(str(exc), 2)
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
    console.print(result.report.render(), highlight=False, markup=False, soft_wrap=True)
    if not result.report.ok:
        raise typer.Exit(1)


@app.command()
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

    day = _parse_date(today, "--today") if today else None
    try:
        result = ingest_rows(data, file, table, dry_run=dry_run, today=day)
    except OSError as exc:
        _fail(f"cannot ingest into {data}: {exc}")
    if not result.ok:
        err_console.print(result.report.render(), highlight=False, markup=False, soft_wrap=True)
        _fail(f"rejected {file}: nothing was written")
    for issue in result.report.warnings:
        console.print(issue.render(), highlight=False, markup=False, soft_wrap=True)
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
    console.print("; ".join(lines), highlight=False, markup=False, soft_wrap=True)


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
        err_console.print(exc.report.render(), highlight=False, markup=False, soft_wrap=True)
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


def _tracking():  # type: ignore[no-untyped-def]
    from models.mlflow_store import quiet_mlflow

    quiet_mlflow()
    return settings().tracking


def _load_or_exit(data: Path):  # type: ignore[no-untyped-def]
    from features.loading import DataContractError, load_valid_tables

    try:
        return load_valid_tables(data)
    except DataContractError as exc:
        err_console.print(exc.report.render(), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None


def _model_data_and_date(data: Path, as_of: str | None, model_version: str | None):  # type: ignore[no-untyped-def]
    """The champion (or a pinned version), the validated data set, and the date asked (default: latest)."""
    from models.mlflow_store import NoModelError, load_risk_model

    try:
        model, version = load_risk_model(_tracking(), alias="champion", version=model_version)
    except NoModelError as exc:
        _fail(str(exc))
    tables = _load_or_exit(data)
    if as_of:
        return model, version, tables, _parse_date(as_of, "--as-of")
    last = tables.last_date()
    if last is None:
        _fail("the data set has no dated rows; pass --as-of")
    return model, version, tables, last.date()


@app.command()
def train(
    data: Annotated[Path, typer.Argument(help="Data set directory in the data contract's shape.")],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Cut-off (test) date YYYY-MM-DD. Default: last date with a full horizon."
        ),
    ] = None,
    horizon: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=730,
            help="Label horizon in days: a violation found within H days of T. Default: settings.",
        ),
    ] = None,
    objective: Annotated[
        str, typer.Option(help="binary, lambdarank, or both (keep the better on the validation fold).")
    ] = "binary",
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment name (default: timpora).")] = None,
) -> None:
    """Train, evaluate against baselines, audit for bias, log to MLflow and register a challenger.

    Registered unless the evidence does not show the model beats a random list, or shows it below the
    office rule by more than delta. Exit 3 when not registered.
    """
    from dataclasses import replace

    from features.loading import DataContractError
    from training.bias import count_flags
    from training.train import TrainOptions
    from training.workflow import run_training, training_table

    if objective not in ("binary", "lambdarank", "both"):
        _fail(f"--objective must be binary, lambdarank or both, got {objective!r}", 2)
    tracking = _tracking()
    if experiment:
        tracking = replace(tracking, experiment=experiment)
    options = TrainOptions(
        objective=objective,  # type: ignore[arg-type]
        cutoff=_parse_date(as_of, "--as-of") if as_of else None,
        horizon_days=horizon,
        defaults=settings().training,
    )
    try:
        outcome = run_training(data, options, tracking)
    except DataContractError as exc:
        err_console.print(exc.report.render(), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        _fail(str(exc))
    main_k = settings().training.main_capacity
    _say(outcome.registration.render())
    console.print(f"Split: {outcome.result.split.describe()}")
    table = training_table(outcome, main_k)
    console.print(
        table.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(f"Proxy check: features predict nationality with AUC {outcome.proxy_auc:.3f}")
    flags = outcome.bias_flags
    _say(f"Bias flags: {count_flags(flags)}" + "".join(f"\n  {f.text}" for f in flags[:5]))
    if len(flags) > 5:
        console.print(f"  ... and {len(flags) - 5} more in bias_audit.csv")
    import mlflow

    artifacts = mlflow.MlflowClient(tracking.tracking_uri).get_run(outcome.run_id).info.artifact_uri
    console.print(f"MLflow run {outcome.run_id} ({tracking.tracking_uri})")
    console.print(
        f"Report and model card: {artifacts.removeprefix('file://')}/evaluation_report.md, model_card.md"
    )
    if outcome.version is None:
        _say("Not registered: " + outcome.registration.sentence)
        raise typer.Exit(EXIT_NOT_REGISTERED)
    console.print(
        f"Registered {tracking.model_name} version {outcome.version} as [bold]challenger[/]. "
        "Promote it with `timpora promote`."
    )


@app.command()
def promote(
    force: Annotated[
        bool, typer.Option(help="Promote even if the comparison or bias check refuses.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why a forced promotion is justified (recorded).")
    ] = None,
) -> None:
    """Make the challenger the champion unless the evidence shows it worse than the champion.

    Worse: the whole interval of challenger - champion (same hold-out) lies below -delta, or a fairness
    check blocks it. Exit 4 when not promoted.
    """
    from models.mlflow_store import NoModelError
    from training.model_registry import promote as promote_challenger
    from training.workflow import decision_settings

    tracking = _tracking()
    if force and not (reason and reason.strip()):
        _fail('--force needs --reason "..." (it is recorded with the promotion)', 2)
    try:
        result = promote_challenger(
            tracking, settings=decision_settings(settings().training), force=force, reason=reason
        )
    except NoModelError as exc:
        _fail(str(exc))
    if result.decision is not None:
        _say(result.decision.render())
    if not result.promoted:
        err_console.print(
            "challenger not promoted: " + "; ".join(result.reasons), highlight=False, markup=False
        )
        raise typer.Exit(EXIT_NOT_PROMOTED)
    console.print(f"Champion is now version {result.version} (was {result.previous or 'none'}).")


@app.command()
def retrain(
    data: Annotated[Path, typer.Argument(help="Data set directory (with the newly ingested outcomes).")],
    force: Annotated[
        bool, typer.Option(help="Promote even if the comparison or the bias check refuses.")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why a forced promotion is right (recorded).")] = None,
) -> None:
    """Train a challenger on all data now available, compare it with the champion on the same hold-out,
    and promote it unless the evidence shows harm (or --force --reason). Exit 3 when not registered,
    4 when not promoted."""
    from features.loading import DataContractError
    from training.retrain import retrain as retrain_challenger
    from training.train import TrainOptions

    if force and not (reason and reason.strip()):
        _fail("--force needs --reason (it is recorded on the model version)", 2)
    tracking = _tracking()
    try:
        outcome = retrain_challenger(
            data, tracking, TrainOptions(defaults=settings().training), force=force, reason=reason
        )
    except DataContractError as exc:
        err_console.print(exc.report.render(), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        _fail(str(exc))
    training = outcome.training
    _say(training.registration.render())
    if outcome.promotion is not None and outcome.promotion.decision is not None:
        _say(outcome.promotion.decision.render())
    console.print(f"Split: {training.result.split.describe()}", highlight=False, markup=False)
    champion = training.champion_version
    console.print(
        f"Challenger run {training.run_id} vs champion "
        + (f"v{champion}, on the same hold-out:" if champion else "(none yet):"),
        highlight=False,
        markup=False,
    )
    console.print(
        outcome.comparison.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-"),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(
        f"Bias flags: challenger {len(training.bias_flags)}, champion {len(training.champion_bias_flags)}, "
        f"new or worse {len(outcome.new_bias_flags)}"
        + "".join(f"\n  new or worse: {f.text}" for f in outcome.new_bias_flags[:5])
        + "".join(f"\n  blocks promotion: {b}" for b in training.fairness_blocks),
        highlight=False,
        markup=False,
    )
    if training.version is None:
        console.print("Not registered: " + training.registration.sentence, highlight=False, markup=False)
        raise typer.Exit(EXIT_NOT_REGISTERED)
    promotion = outcome.promotion
    if promotion is None or not promotion.promoted:
        why = "; ".join(promotion.reasons) if promotion else "no promotion attempted"
        console.print(
            f"Registered v{training.version} as challenger; not promoted: {why}",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(EXIT_NOT_PROMOTED)
    console.print(
        f"Champion is now version {promotion.version} (was {promotion.previous or 'none'}). "
        "`timpora rollback` restores the previous one.",
        highlight=False,
        markup=False,
    )


@app.command("simulate-loop")
def simulate_loop(
    out: Annotated[
        Path, typer.Option(help="Directory for the loop's worlds, registries, tables and plot.")
    ] = Path("var/loop"),
    persons: Annotated[int, typer.Option(min=1000, help="Persons in the simulated world.")] = 20_000,
    months: Annotated[
        int, typer.Option(min=1, max=24, help="Months the loop runs (the last months of the world).")
    ] = 12,
    capacity: Annotated[
        int | None,
        typer.Option(
            min=1, help="Inspections per month (K). Default: the office's non-tip inspections per month."
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="rule, model, model-uniform, model-boundary or random; repeatable. Default: all five."
        ),
    ] = None,
    exploration_share: Annotated[
        float, typer.Option(help="Share of the list's slots drawn for exploration (model-uniform/-boundary).")
    ] = 0.1,
    seed: Annotated[
        list[int] | None,
        typer.Option(help="World seed, repeatable (one world per seed, shared by every policy). Default: 7."),
    ] = None,
    no_retrain: Annotated[bool, typer.Option("--no-retrain", help="Keep the first model all along.")] = False,
    no_tips: Annotated[
        bool, typer.Option("--no-tips", help="Drop the office's tip follow-ups after the loop starts.")
    ] = False,
    false_tips_on: Annotated[
        str | None,
        typer.Option(help="Nationality (ISO alpha-3) the public files false tips about (a biased world)."),
    ] = None,
) -> None:
    """The closed loop: each month list, inspect, ingest the outcomes, retrain, promote; paired over seeds."""
    from simulator.loop import POLICIES, LoopConfig, render_result, run_loop

    try:
        config = LoopConfig(
            persons=persons,
            months=months,
            capacity=capacity,
            policies=tuple(policy or POLICIES),
            seeds=tuple(seed or (7,)),
            exploration_share=exploration_share,
            retrain=not no_retrain,
            keep_tips=not no_tips,
            false_tip_nationality=false_tips_on,
        )
    except ValueError as exc:
        _fail(str(exc), 2)
    _tracking()  # quiet MLflow
    try:
        result = run_loop(config, out, progress=lambda text: err_console.print(text, highlight=False))
    except ValueError as exc:
        _fail(str(exc))
    console.print(render_result(result), highlight=False, markup=False, soft_wrap=True)
    console.print(f"Wrote {out}/loop_*.csv and loop_episodes.png", highlight=False, markup=False)


@app.command()
def rollback() -> None:
    """Restore the previous champion."""
    from models.mlflow_store import NoModelError
    from training.model_registry import rollback as rollback_champion

    try:
        result = rollback_champion(_tracking())
    except NoModelError as exc:
        _fail(str(exc))
    console.print(f"Champion is now version {result.version} (rolled back from {result.previous}).")


@app.command()
def models() -> None:
    """List registered model versions, their aliases, flags and the deciding evidence (precision at the
    operational capacity: estimate [95% interval] (source)); every metric is in the MLflow run."""
    from training.model_registry import list_versions

    table = list_versions(_tracking())
    if table.empty:
        console.print("No registered models yet: run `timpora train DIR`.")
        return
    shown = table.assign(created=table["created"].astype(str).str[:16])
    evidence = ["vs_random", "vs_office_rule", "vs_champion"]
    columns = ["version", "aliases", "created", "bias_flags"] + [c for c in evidence if c in shown]
    console.print(
        shown[columns].to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@app.command()
def rank(
    data: Annotated[Path, typer.Argument(help="Data set directory in the data contract's shape.")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date YYYY-MM-DD to rank cases as of. Default: latest date.")
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            min=0,
            help="How many cases to list, with reasons. 0 = every case: reasons cost about 2 ms per case "
            "(TreeSHAP on 2 cores), so 100,000 cases take over 3 minutes.",
        ),
    ] = 50,
    district: Annotated[
        str | None, typer.Option(help="Only cases in this district code (or code prefix).")
    ] = None,
    permit_type: Annotated[
        list[str] | None, typer.Option("--permit-type", help="Only cases on this permit type; repeatable.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the list as CSV to this file.")] = None,
    model_version: Annotated[
        str | None, typer.Option(help="A registered version to use instead of the champion.")
    ] = None,
) -> None:
    """Rank the cases as of a date with the champion: rank, person, score, top reasons, model version."""
    from features.timeline import build_timeline
    from models.scoring import ranked_list

    model, version, tables, date = _model_data_and_date(data, as_of, model_version)
    listed = ranked_list(model, version, build_timeline(tables), date, top, district, permit_type)
    columns = [
        "list_rank",
        "person_id",
        "score",
        "rank",
        "district",
        "permit_type",
        "reasons_en",
        "model_version",
    ]
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        listed.to_csv(out, index=False)
    shown = listed[columns].head(20)
    console.print(
        f"Ranked cases as of {date} (model version {version}); showing {len(shown)} of {len(listed)}:"
    )
    console.print(
        shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if out:
        console.print(f"Wrote {len(listed):,} rows to {out}")


@app.command()
def drift(
    data: Annotated[Path, typer.Argument(help="Data set directory in the data contract's shape.")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date YYYY-MM-DD whose cases to compare. Default: latest date."),
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="A registered version to use instead of the champion.")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="How many features to list, largest shift first.")] = 15,
) -> None:
    """Population stability (PSI) of each feature and of the score: the cases as of a date against the
    model's training cases, recomputed from the same data set."""
    from features.timeline import build_timeline
    from models.drift import drift_report

    model, version, tables, date = _model_data_and_date(data, as_of, model_version)
    try:
        report = drift_report(model, build_timeline(tables), date, settings=settings().drift)
    except ValueError as exc:
        _fail(str(exc))
    s = report.summary
    moderate, large = settings().drift.psi_moderate, settings().drift.psi_large
    lines = [
        f"Drift of model version {version}: {report.describe()}",
        f"PSI levels: stable < {moderate:g} <= moderate < {large:g} <= large (lower is better)",
        report.features.head(top).to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        f"Score PSI: {s.score_psi:.3f}. Overall: {s.level.value}.",
    ]
    warning = report.warning(settings().drift.warn_level)
    if warning:
        lines.append(f"Warning: {warning}")
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


app.add_typer(keys_app, name="keys", help="API keys for the service: create, list, revoke, demo.")
app.add_typer(audit_app, name="audit", help="The service's audit log of scoring requests.")
app.command("lists")(cli_lists.lists)
app.command("assign")(cli_lists.assign)
app.command("outcomes-template")(cli_lists.outcomes_template)


@app.command()
def serve(
    data: Annotated[
        Path | None,
        typer.Option(help="Data set directory to serve. Default: TIMPORA_DATA, else <home>/demo."),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on. Default: settings (loopback, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on. Default: settings (3000).")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Serve this registered version instead of the champion.")
    ] = None,
) -> None:
    """Start the scoring API and the supervisor page (BentoML) on HOST:PORT; Ctrl+C stops it."""
    import os

    import serving
    from training.model_registry import list_versions

    config = settings()
    host = host or config.serving.host
    port = port or config.serving.port
    directory = (data or config.data_dir).resolve()
    if not directory.is_dir():
        _fail(f"no data set at {directory}: run `make run` or `timpora simulate --out {directory}` first")
    versions = list_versions(_tracking())
    if model_version is None and not versions["aliases"].astype(str).str.contains("champion").any():
        _fail("no champion model: train and promote one first (`timpora train DIR`, `timpora promote`)")
    if model_version is not None and int(model_version) not in set(versions["version"].astype(int)):
        _fail(f"no registered version {model_version} (see `timpora models`)")
    # The service loads its own settings from the environment: hand it the resolved paths.
    tracking = config.tracking
    env = {
        **os.environ,
        "TIMPORA_DATA": str(directory),
        "TIMPORA_HOME": str(config.home_dir),
        "TIMPORA_KEYS_FILE": str(config.keys_path.resolve()),
        "TIMPORA_AUDIT_LOG": str(config.audit_path.resolve()),
        "TIMPORA_TRACKING_URI": tracking.tracking_uri,
        "TIMPORA_ARTIFACT_ROOT": str(tracking.artifact_root),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    env.setdefault("BENTOML_HOME", str(config.bentoml_home))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep, not spin on a shared core
    if model_version is not None:
        env["TIMPORA_MODEL_VERSION"] = model_version
    base = f"http://{host}:{port}"
    console.print(
        f"Serving {directory} with model {'v' + model_version if model_version else 'champion'}.\n"
        f"  Supervisor page: {base}/ui/\n  API (OpenAPI):   {base}/  ({base}/docs.json)\n"
        "  Keys: `timpora keys create --role system|supervisor|analyst`;"
        " calls send 'Authorization: Bearer <key>'.",
        highlight=False,
        markup=False,
    )
    sys.stdout.flush()
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:InspectionPriority"]
    command += [
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(Path(serving.__file__).resolve().parents[1]),
    ]
    os.execvpe(command[0], command, env)
