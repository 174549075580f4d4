"""`timpora train`, `promote`, `retrain`, `rollback`, `models`, `rank` and `drift`: the model's life.

Wiring only: training, the registry and the model runtime are imported inside
the commands so that `--help` stays fast.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from timpora.cli_common import (
    EXIT_NOT_PROMOTED,
    EXIT_NOT_REGISTERED,
    EXIT_USAGE,
    console,
    data_errors,
    default_as_of,
    fail,
    load_data,
    parse_date,
    say,
    settings,
    tracking,
)

if TYPE_CHECKING:
    from features.tables import Tables
    from models.mlflow_store import TrackingConfig
    from models.ranker import RiskModel


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
    if_changed: Annotated[
        bool,
        typer.Option(
            "--if-changed",
            help="Train only if the data set differs from the one the champion was trained on.",
        ),
    ] = False,
) -> None:
    """Train, evaluate against baselines, audit for bias, log to MLflow and register a challenger.

    Registered unless the evidence does not show the model beats a random list, or shows it below the
    office rule by more than delta. Exit 3 when not registered.
    """
    from dataclasses import replace

    from training.bias import count_flags
    from training.train import TrainOptions
    from training.truth import load_truth
    from training.workflow import run_training, training_table

    if objective not in ("binary", "lambdarank", "both"):
        fail(f"--objective must be binary, lambdarank or both, got {objective!r}", EXIT_USAGE)
    store = tracking()
    if experiment:
        store = replace(store, experiment=experiment)
    if if_changed and (unchanged := _champion_on_same_data(data, store)):
        say(unchanged)
        return
    options = TrainOptions(
        objective=objective,  # type: ignore[arg-type]
        cutoff=parse_date(as_of, "--as-of") if as_of else None,
        horizon_days=horizon,
        defaults=settings().training,
        dataset=settings().dataset,
    )
    with data_errors():
        # A simulation's hidden truth, if the data set has one: printed beside the decision only.
        outcome = run_training(data, options, store, truth=load_truth(data))
    say(outcome.registration.render())
    console.print(f"Split: {outcome.result.split.describe()}")
    say(training_table(outcome, settings().training.main_capacity).to_string(index=False, float_format=_f3))
    console.print(f"Proxy check: features predict nationality with AUC {outcome.proxy_auc:.3f}")
    flags = outcome.bias_flags
    say(f"Bias flags: {count_flags(flags)}" + "".join(f"\n  {f.text}" for f in flags[:5]))
    if len(flags) > 5:
        console.print(f"  ... and {len(flags) - 5} more in bias_audit.csv")
    import mlflow

    artifacts = mlflow.MlflowClient(store.tracking_uri).get_run(outcome.run_id).info.artifact_uri
    console.print(f"MLflow run {outcome.run_id} ({store.tracking_uri})")
    console.print(
        f"Report and model card: {artifacts.removeprefix('file://')}/evaluation_report.md, model_card.md"
    )
    if outcome.version is None:
        say("Not registered: " + outcome.registration.sentence)
        raise typer.Exit(EXIT_NOT_REGISTERED)
    console.print(
        f"Registered {store.model_name} version {outcome.version} as [bold]challenger[/]. "
        "Promote it with `timpora promote`."
    )


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
    from models.mlflow_store import RegistryError
    from training.model_registry import promote as promote_challenger
    from training.workflow import decision_settings

    store = tracking()
    if force and not (reason and reason.strip()):
        fail('--force needs --reason "..." (it is recorded with the promotion)', EXIT_USAGE)
    try:
        result = promote_challenger(
            store, settings=decision_settings(settings().training), force=force, reason=reason
        )
    except RegistryError as exc:  # nothing to promote, or the registry stayed locked
        fail(str(exc))
    if result.decision is not None:
        say(result.decision.render())
    if not result.promoted:
        say("challenger not promoted: " + "; ".join(result.reasons), err=True)
        raise typer.Exit(EXIT_NOT_PROMOTED)
    console.print(f"Champion is now version {result.version} (was {result.previous or 'none'}).")


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
    from training.retrain import retrain as retrain_challenger
    from training.train import TrainOptions
    from training.truth import load_truth

    if force and not (reason and reason.strip()):
        fail("--force needs --reason (it is recorded on the model version)", EXIT_USAGE)
    store = tracking()
    with data_errors():
        outcome = retrain_challenger(
            data,
            store,
            TrainOptions(defaults=settings().training, dataset=settings().dataset),
            force=force,
            reason=reason,
            truth=load_truth(data),  # a simulation's truth, printed beside the decision only
        )
    training = outcome.training
    say(training.registration.render())
    if outcome.promotion is not None and outcome.promotion.decision is not None:
        say(outcome.promotion.decision.render())
    say(f"Split: {training.result.split.describe()}")
    champion = training.champion_version
    say(
        f"Challenger run {training.run_id} vs champion "
        + (f"v{champion}, on the same hold-out:" if champion else "(none yet):")
    )
    say(outcome.comparison.to_string(index=False, float_format=_f3, na_rep="-"))
    say(
        f"Bias flags: challenger {len(training.bias_flags)}, champion {len(training.champion_bias_flags)}, "
        f"new or worse {len(outcome.new_bias_flags)}"
        + "".join(f"\n  new or worse: {f.text}" for f in outcome.new_bias_flags[:5])
        + "".join(f"\n  blocks promotion: {b}" for b in training.fairness_blocks)
    )
    if training.version is None:
        say("Not registered: " + training.registration.sentence)
        raise typer.Exit(EXIT_NOT_REGISTERED)
    promotion = outcome.promotion
    if promotion is None or not promotion.promoted:
        why = "; ".join(promotion.reasons) if promotion else "no promotion attempted"
        say(f"Registered v{training.version} as challenger; not promoted: {why}")
        raise typer.Exit(EXIT_NOT_PROMOTED)
    say(
        f"Champion is now version {promotion.version} (was {promotion.previous or 'none'}). "
        "`timpora rollback` restores the previous one."
    )


def rollback() -> None:
    """Restore the previous champion."""
    from models.mlflow_store import RegistryError
    from training.model_registry import rollback as rollback_champion

    try:
        result = rollback_champion(tracking())
    except RegistryError as exc:  # nothing to roll back to, or the registry stayed locked
        fail(str(exc))
    console.print(f"Champion is now version {result.version} (rolled back from {result.previous}).")


def models() -> None:
    """List registered model versions, their aliases, flags and the deciding evidence (precision at the
    operational capacity: estimate [95% interval] (source)); every metric is in the MLflow run."""
    from models.mlflow_store import RegistryBusyError
    from training.model_registry import list_versions

    try:
        table = list_versions(tracking())
    except RegistryBusyError as exc:
        fail(str(exc))
    if table.empty:
        console.print("No registered models yet: run `timpora train DIR`.")
        return
    shown = table.assign(created=table["created"].astype(str).str[:16])
    evidence = ["vs_random", "vs_office_rule", "vs_champion"]
    columns = ["version", "aliases", "created", "bias_flags"] + [c for c in evidence if c in shown]
    say(shown[columns].to_string(index=False, float_format=_f3))


def rank(
    data: Annotated[Path, typer.Argument(help="Data set directory in the data contract's shape.")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date YYYY-MM-DD to rank cases as of. Default: known-through date."),
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
        str | None,
        typer.Option(help="Only cases in this district: a code, a code prefix, or a name (districts table)."),
    ] = None,
    permit_type: Annotated[
        list[str] | None, typer.Option("--permit-type", help="Only cases on this permit type; repeatable.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the list as CSV to this file.")] = None,
    model_version: Annotated[
        str | None, typer.Option(help="A registered version to use instead of the champion.")
    ] = None,
) -> None:
    """Rank the cases as of a date with the champion: rank, person, score, top reasons, model version.

    An unknown district or permit type exits 2 naming close valid values (the API's 400)."""
    from features.filters import KnownFilters, UnknownFilterError
    from features.timeline import build_timeline
    from models.scoring import ranked_list

    model, version, tables, date = _model_data_and_date(data, as_of, model_version)
    timeline = build_timeline(tables)
    try:  # the API's rule (serving.engine.inspection_list)
        checked = KnownFilters.of(tables.districts, timeline.districts).check(district, permit_type)
    except UnknownFilterError as exc:
        fail(exc.message, EXIT_USAGE)
    listed = ranked_list(model, version, timeline, date, top, checked.district, checked.permit_types)
    if listed.empty:
        say(checked.no_case_sentence(date))
        return
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
    say(shown.to_string(index=False, float_format=_f3))
    if out:
        console.print(f"Wrote {len(listed):,} rows to {out}")


def drift(
    data: Annotated[Path, typer.Argument(help="Data set directory in the data contract's shape.")],
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Date YYYY-MM-DD whose cases to compare. Default: known-through date."),
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
    levels = settings().drift
    with data_errors():
        report = drift_report(model, build_timeline(tables), date, settings=levels)
    s = report.summary
    lines = [
        f"Drift of model version {version}: {report.describe()}",
        f"PSI levels: stable < {levels.psi_moderate:g} <= moderate < {levels.psi_large:g} <= large "
        "(lower is better)",
        report.features.head(top).to_string(index=False, float_format=_f3),
        f"Score PSI: {s.score_psi:.3f}. Overall: {s.level.value}.",
    ]
    warning = report.warning(levels.warn_level)
    if warning:
        lines.append(f"Warning: {warning}")
    for line in lines:
        say(line)


def _champion_on_same_data(data: Path, store: TrackingConfig) -> str | None:
    """A sentence when the champion was trained on this very data set (same content hash), else None."""
    from models.mlflow_store import RegistryError
    from training.model_registry import champion_fingerprint
    from training.workflow import fingerprint

    try:
        champion = champion_fingerprint(store)
    except RegistryError as exc:  # the registry stayed locked: one line, not a traceback
        fail(str(exc))
    if champion is None or not data.is_dir():
        return None
    version, recorded = champion
    if fingerprint(data) != recorded:
        return None
    return f"Not trained: champion v{version} was trained on this data set as it is (fingerprint {recorded})."


def _model_data_and_date(
    data: Path, as_of: str | None, model_version: str | None
) -> tuple[RiskModel, str, Tables, dt.date]:
    """The champion (or a pinned version), the validated data set, and the date (default: known through)."""
    from models.mlflow_store import RegistryError, load_risk_model

    try:
        model, version = load_risk_model(tracking(), alias="champion", version=model_version)
    except RegistryError as exc:  # no such model, or the registry stayed locked
        fail(str(exc))
    tables = load_data(data)
    date = parse_date(as_of, "--as-of") if as_of else default_as_of(tables)
    if refusal := tables.as_of_refusal(date):  # the API's rule (serving.engine.resolve_date)
        fail(f"--as-of: {refusal}", EXIT_USAGE)
    return model, version, tables, date


def _f3(value: float) -> str:
    """Three decimals: the tables' float format."""
    return f"{value:.3f}"
