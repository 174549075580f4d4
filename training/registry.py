"""The model registry: gated registration, promotion by alias, rollback, and loading what serves.

A run's model becomes a registered version only when its evaluation passed the
gates; the new version gets the alias `challenger`. `promote` moves `champion`
to the challenger when it is not worse than the current champion on the same
hold-out and raises no new bias flag; `rollback` moves `champion` back. Aliases
only: no stages, never "latest". Every decision is written on the versions as
tags, so the registry is its own audit trail.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from models.pyfunc import RiskModelPyfunc
from models.ranker import RiskModel
from training.metrics import Direction, metric_direction
from training.tracking import MODEL_ID_TAG, TrackingConfig, json_safe_metrics, store_exists, tracking_client

CHAMPION = "champion"
CHALLENGER = "challenger"
DEFAULT_METRIC = "precision@5%"

# Run tags
REGISTERED_TAG = "registered"
REGISTERED_VERSION_TAG = "registered_version"
GATE_FAILURES_TAG = "gate_failures"
# Model version tags
METRICS_TAG = "metrics"  # JSON: the headline summary, `model/<metric>`, `champion/<metric>`, ...
BIAS_FLAGS_TAG = "bias_flags"  # JSON list: this version's flags on its hold-out
CHAMPION_BIAS_FLAGS_TAG = "champion_bias_flags"  # JSON list: the champion's flags on the same hold-out
COMPARED_WITH_TAG = "compared_with"  # the champion version evaluated on this version's hold-out
GATES_TAG = "gates"
PREVIOUS_CHAMPION_TAG = "previous_champion"
PROMOTED_AT_TAG = "promoted_at"
PROMOTED_BY_TAG = "promoted_by"
PROMOTION_REFUSED_TAG = "promotion_refused"
FORCED_REASON_TAG = "forced_reason"
FORCED_BY_TAG = "forced_by"
FORCED_AT_TAG = "forced_at"
FORCED_OVER_TAG = "forced_over"  # JSON list: the objections a forced promotion overrode
ROLLED_BACK_FROM_TAG = "rolled_back_from"
ROLLED_BACK_TO_TAG = "rolled_back_to"
ROLLED_BACK_AT_TAG = "rolled_back_at"
ROLLED_BACK_BY_TAG = "rolled_back_by"

_EPSILON = 1e-12  # float noise when a difference equals the tolerance


class RegistryError(RuntimeError):
    """A registry operation that cannot go ahead."""


class NoModelError(RegistryError):
    """Nothing registered under the name, or no version behind the alias or number asked for."""


@dataclass(frozen=True)
class Gates:
    """What a run must show before it is registered: the model beats each baseline on `metric`.

    `tolerance` is how far behind a baseline the model may be and still pass;
    0 means it must strictly beat it.
    """

    metric: str = DEFAULT_METRIC
    must_beat: tuple[str, ...] = ("office_rule", "random")
    tolerance: float = 0.0


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered version of the model."""

    name: str
    version: str
    run_id: str
    source: str
    aliases: tuple[str, ...] = ()


@dataclass
class PromotionResult:
    """Outcome of a promotion or rollback: the version now concerned, the champion before, and why."""

    promoted: bool
    version: str | None
    previous: str | None
    reasons: list[str] = field(default_factory=list)


def _is_nan(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _improvement(new: float, old: float, metric: str) -> float:
    """How much better `new` is than `old`, in the metric's own direction."""
    return new - old if metric_direction(metric) == Direction.HIGHER_IS_BETTER else old - new


def check_gates(metrics: Mapping[str, float], gates: Gates) -> list[str]:
    """The gates a run fails, described; empty when it may be registered.

    `metrics` holds `model/<metric>` and `<baseline>/<metric>` for each baseline.
    A missing or NaN value fails: a gate that cannot be checked is not passed.
    """
    model_key = f"model/{gates.metric}"
    value = metrics.get(model_key)
    if value is None or math.isnan(value):
        return [f"{model_key} is {'missing' if value is None else 'NaN'}: nothing shows the model works"]
    failures = []
    for baseline in gates.must_beat:
        key = f"{baseline}/{gates.metric}"
        reference = metrics.get(key)
        if reference is None or math.isnan(reference):
            failures.append(f"{key} is {'missing' if reference is None else 'NaN'}: cannot compare")
        elif not _improvement(value, reference, gates.metric) > -gates.tolerance:
            failures.append(
                f"{model_key} = {value:.4f} does not beat {key} = {reference:.4f}"
                + (f" (tolerance {gates.tolerance:g})" if gates.tolerance else "")
            )
    return failures


def _flags(text: str | None) -> list[str]:
    return [str(flag) for flag in json.loads(text)] if text else []


def _summary(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    return {k: (math.nan if v is None else float(v)) for k, v in json.loads(text).items()}


def promotion_objections(
    challenger_tags: Mapping[str, str], champion_version: str, *, metric: str, tolerance: float
) -> list[str]:
    """Why a challenger (given its version tags) should not replace the champion; empty if it may.

    The comparison is valid only on the same hold-out: the challenger's summary
    must hold `champion/<metric>` from evaluating this very champion version.
    """
    objections = []
    summary = _summary(challenger_tags.get(METRICS_TAG))
    new = summary.get(f"model/{metric}")
    old = summary.get(f"champion/{metric}")
    compared_with = challenger_tags.get(COMPARED_WITH_TAG)
    if compared_with is None or old is None:
        objections.append(
            f"not evaluated against champion v{champion_version} on its hold-out "
            f"(needs champion/{metric} and the compared_with tag): retrain with the champion in place"
        )
    elif compared_with != champion_version:
        objections.append(
            f"evaluated against v{compared_with}, but the champion is now v{champion_version}: retrain"
        )
    elif _is_nan(new) or _is_nan(old):
        objections.append(f"model/{metric} = {new} and champion/{metric} = {old}: cannot compare")
    else:
        assert new is not None  # for the type checker; _is_nan covers None
        shortfall = -_improvement(new, old, metric)
        if shortfall > tolerance + _EPSILON:
            objections.append(
                f"{metric} {new:.4f} against champion v{champion_version} {old:.4f} on the same hold-out: "
                f"worse by {shortfall:.4f}, beyond the tolerance {tolerance:g}"
            )
    champion_flags = set(_flags(challenger_tags.get(CHAMPION_BIAS_FLAGS_TAG)))
    new_flags = [flag for flag in _flags(challenger_tags.get(BIAS_FLAGS_TAG)) if flag not in champion_flags]
    if new_flags:
        objections.append(f"new bias flag(s), not raised for the champion: {', '.join(new_flags)}")
    return objections


@dataclass(frozen=True)
class _Version:
    """What the registry functions read of a model version (MLflow returns the number as int or str)."""

    number: str
    tags: dict[str, str]


def _aliases(client: mlflow.MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version number of the registered model; NoModelError when nothing is registered."""
    try:
        return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NoModelError(f"no model registered as {name!r}: train and register one first") from error
        raise


def _version(client: mlflow.MlflowClient, name: str, version: str) -> _Version:
    try:
        found = client.get_model_version(name, version)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NoModelError(f"{name!r} has no version {version}") from error
        raise
    return _Version(number=str(found.version), tags=dict(found.tags))


def _by_alias(client: mlflow.MlflowClient, name: str, alias: str) -> _Version | None:
    version = _aliases(client, name).get(alias)
    return None if version is None else _version(client, name, version)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _who() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name, e.g. a container without a passwd entry
        return "unknown"


def _set_version_tags(client: mlflow.MlflowClient, name: str, version: str, tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def register_run(
    config: TrackingConfig,
    run_id: str,
    *,
    gate_failures: list[str],
    summary: dict[str, float],
    bias_flags: list[str],
    champion_version: str | None = None,
    champion_bias_flags: list[str] | None = None,
) -> ModelVersionInfo | None:
    """Register the run's model as the new `challenger`, only if it passed every gate.

    `summary` holds the headline metrics; when a champion existed at training
    time, pass the version evaluated on this run's hold-out (`champion_version`),
    its metrics as `champion/<metric>` in `summary` and its bias flags there
    (`champion_bias_flags`): `promote` compares on those. A run that failed a
    gate is tagged `registered=false` with the failures and None is returned.
    """
    client = tracking_client(config)
    run = client.get_run(run_id)
    if gate_failures:
        client.set_tag(run_id, REGISTERED_TAG, "false")
        client.set_tag(run_id, GATE_FAILURES_TAG, json.dumps(gate_failures))
        return None
    model_id = run.data.tags.get(MODEL_ID_TAG)
    if not model_id:
        raise RegistryError(f"run {run_id} has no logged Timpora model (tag {MODEL_ID_TAG} missing)")
    try:
        client.create_registered_model(
            config.model_name, description="Timpora risk ranker: calibrated probability of a finding."
        )
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    tags = {
        METRICS_TAG: json.dumps(json_safe_metrics(summary), sort_keys=True),
        BIAS_FLAGS_TAG: json.dumps(list(dict.fromkeys(bias_flags))),
        GATES_TAG: "passed",
    }
    if champion_version is not None:
        tags[COMPARED_WITH_TAG] = str(champion_version)
        tags[CHAMPION_BIAS_FLAGS_TAG] = json.dumps(list(dict.fromkeys(champion_bias_flags or [])))
    created = client.create_model_version(
        config.model_name, source=f"models:/{model_id}", run_id=run_id, tags=tags, model_id=model_id
    )
    version = str(created.version)
    client.set_registered_model_alias(config.model_name, CHALLENGER, version)
    client.set_tag(run_id, REGISTERED_TAG, "true")
    client.set_tag(run_id, REGISTERED_VERSION_TAG, version)
    return ModelVersionInfo(
        name=config.model_name,
        version=version,
        run_id=run_id,
        source=created.source or f"models:/{model_id}",
        aliases=(CHALLENGER,),
    )


def promote(
    config: TrackingConfig,
    *,
    tolerance: float = 0.02,
    force: bool = False,
    reason: str | None = None,
    metric: str = DEFAULT_METRIC,
) -> PromotionResult:
    """Make the challenger the champion, unless it is worse than the champion or raises a new bias flag.

    Worse means behind the champion on `metric` by more than `tolerance`, on the
    challenger's hold-out. A refusal is returned, not raised, and written on the
    challenger. `force=True` overrides objections; it needs a reason, recorded
    with who and when. The champion replaced is kept in `previous_champion` for
    `rollback`.
    """
    if force and not (reason and reason.strip()):
        raise ValueError("a forced promotion needs a reason (it is recorded on the model version)")
    name = config.model_name
    if not store_exists(config):
        raise NoModelError(f"no tracking store at {config.tracking_uri}: train and register a model first")
    client = tracking_client(config)
    challenger = _by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise NoModelError(f"{name!r} has no {CHALLENGER}: register a run that passes the gates first")
    champion = _by_alias(client, name, CHAMPION)
    previous = None if champion is None else champion.number
    if champion is not None and champion.number == challenger.number:
        # An interrupted promotion: finish it.
        client.delete_registered_model_alias(name, CHALLENGER)
        return PromotionResult(False, challenger.number, previous, [f"v{previous} is already the champion"])
    objections = (
        []
        if champion is None
        else promotion_objections(challenger.tags, champion.number, metric=metric, tolerance=tolerance)
    )
    if objections and not force:
        client.set_model_version_tag(name, challenger.number, PROMOTION_REFUSED_TAG, json.dumps(objections))
        return PromotionResult(False, challenger.number, previous, objections)
    now, who = _now(), _who()
    tags = {PROMOTED_AT_TAG: now, PROMOTED_BY_TAG: who}
    if previous is not None:
        tags[PREVIOUS_CHAMPION_TAG] = previous
    if force:
        assert reason is not None  # checked above
        tags |= {
            FORCED_REASON_TAG: reason.strip(),
            FORCED_BY_TAG: who,
            FORCED_AT_TAG: now,
            FORCED_OVER_TAG: json.dumps(objections),
        }
    _set_version_tags(client, name, challenger.number, tags)
    # Tags first, then the alias: an interruption leaves the old champion serving.
    client.set_registered_model_alias(name, CHAMPION, challenger.number)
    client.delete_registered_model_alias(name, CHALLENGER)
    return PromotionResult(True, challenger.number, previous, objections)


def rollback(config: TrackingConfig) -> PromotionResult:
    """Move `champion` back to the version it replaced (the current champion's `previous_champion`)."""
    name = config.model_name
    if not store_exists(config):
        raise NoModelError(f"no tracking store at {config.tracking_uri}: nothing to roll back")
    client = tracking_client(config)
    champion = _by_alias(client, name, CHAMPION)
    if champion is None:
        raise NoModelError(f"{name!r} has no {CHAMPION}: nothing to roll back")
    target = champion.tags.get(PREVIOUS_CHAMPION_TAG)
    if not target:
        raise NoModelError(
            f"champion v{champion.number} of {name!r} replaced no earlier champion: nothing to roll back to"
        )
    restored = _version(client, name, target)
    now, who = _now(), _who()
    _set_version_tags(
        client,
        name,
        restored.number,
        {ROLLED_BACK_FROM_TAG: champion.number, ROLLED_BACK_AT_TAG: now, ROLLED_BACK_BY_TAG: who},
    )
    client.set_model_version_tag(name, champion.number, ROLLED_BACK_TO_TAG, restored.number)
    client.set_registered_model_alias(name, CHAMPION, restored.number)
    return PromotionResult(
        True, restored.number, champion.number, [f"rolled back from v{champion.number} to v{restored.number}"]
    )


_LIST_COLUMNS = [
    "version",
    "aliases",
    "created",
    "run_id",
    "gates",
    "bias_flags",
    "compared_with",
    "previous_champion",
    "forced_reason",
    "rolled_back_from",
]


def list_versions(config: TrackingConfig) -> pd.DataFrame:
    """Every registered version, newest first: aliases, creation time, run, gates, bias flags and
    the headline metrics recorded at registration (one column each)."""
    if not store_exists(config):
        return pd.DataFrame(columns=_LIST_COLUMNS)
    client = tracking_client(config)
    try:
        aliases = _aliases(client, config.model_name)
    except NoModelError:
        return pd.DataFrame(columns=_LIST_COLUMNS)
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    escaped = config.model_name.replace("'", "\\'")
    rows = []
    for mv in client.search_model_versions(f"name = '{escaped}'"):
        tags = mv.tags
        rows.append(
            {
                "version": int(mv.version),
                "aliases": ", ".join(sorted(by_version.get(str(mv.version), []))),
                "created": pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC"),
                "run_id": mv.run_id,
                "gates": tags.get(GATES_TAG, ""),
                "bias_flags": len(_flags(tags.get(BIAS_FLAGS_TAG))),  # the texts are in the version's tag
                "compared_with": tags.get(COMPARED_WITH_TAG, ""),
                "previous_champion": tags.get(PREVIOUS_CHAMPION_TAG, ""),
                "forced_reason": tags.get(FORCED_REASON_TAG, ""),
                "rolled_back_from": tags.get(ROLLED_BACK_FROM_TAG, ""),
                **_summary(tags.get(METRICS_TAG)),
            }
        )
    if not rows:
        return pd.DataFrame(columns=_LIST_COLUMNS)
    return pd.DataFrame(rows).sort_values("version", ascending=False, ignore_index=True)


@dataclass(frozen=True)
class VersionDetails:
    """What a service shows about the version it serves: its aliases, headline metrics and bias flags."""

    version: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]
    bias_flags: list[str]


def version_details(config: TrackingConfig, version: str) -> VersionDetails:
    """The aliases, recorded headline metrics and bias flags of a registered version."""
    client = tracking_client(config)
    found = _version(client, config.model_name, str(version))
    aliases = sorted(a for a, number in _aliases(client, config.model_name).items() if number == found.number)
    return VersionDetails(
        version=found.number,
        aliases=tuple(aliases),
        metrics={k: v for k, v in _summary(found.tags.get(METRICS_TAG)).items() if not math.isnan(v)},
        bias_flags=_flags(found.tags.get(BIAS_FLAGS_TAG)),
    )


def load_risk_model(
    config: TrackingConfig, alias: str = CHAMPION, version: str | None = None
) -> tuple[RiskModel, str]:
    """The RiskModel behind an alias (or a pinned version number) and that version.

    Loads `models:/<name>/<version>` after resolving the alias once, so the
    version returned is the one loaded even if the alias moves meanwhile.
    """
    name = config.model_name
    if not store_exists(config):
        raise NoModelError(f"no tracking store at {config.tracking_uri}: train and register a model first")
    client = tracking_client(config)
    if version is None:
        found = _by_alias(client, name, alias)
        if found is None:
            raise NoModelError(f"{name!r} has no version with alias {alias!r}")
    else:
        found = _version(client, name, str(version))
    python_model = mlflow.pyfunc.load_model(f"models:/{name}/{found.number}").unwrap_python_model()
    if not isinstance(python_model, RiskModelPyfunc):
        raise RegistryError(f"{name} v{found.number} is not a Timpora RiskModel pyfunc")
    return python_model.risk_model, found.number
