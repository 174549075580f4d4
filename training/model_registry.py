"""The model registry: gated registration, promotion by alias, rollback, and loading what serves.

A run's model becomes a registered version only when the registration decision
(`training.decisions`) let it; the new version gets the alias `challenger`.
`promote` moves `champion` to the challenger unless the evidence recorded at
training time (challenger - champion on the same hold-out, with its interval)
shows it worse by more than delta, or a fairness check blocks it; `rollback`
moves `champion` back. Aliases
only: no stages, never "latest". Every decision is written on the versions as
tags, so the registry is its own audit trail.
"""

from __future__ import annotations

import getpass
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException

from features.clock import utc_timestamp
from models.mlflow_store import (
    BIAS_FLAGS_TAG,
    CHALLENGER,
    CHAMPION,
    CHAMPION_BIAS_FLAGS_TAG,
    COMPARED_WITH_TAG,
    DECISION_TAG,
    FAIRNESS_BLOCKS_TAG,
    FORCED_AT_TAG,
    FORCED_BY_TAG,
    FORCED_OVER_TAG,
    FORCED_REASON_TAG,
    GATE_FAILURES_TAG,
    GATES_TAG,
    METRICS_TAG,
    PREVIOUS_CHAMPION_TAG,
    PROMOTED_AT_TAG,
    PROMOTED_BY_TAG,
    PROMOTION_DECISION_TAG,
    PROMOTION_REFUSED_TAG,
    REGISTERED_TAG,
    REGISTERED_VERSION_TAG,
    ROLLED_BACK_AT_TAG,
    ROLLED_BACK_BY_TAG,
    ROLLED_BACK_FROM_TAG,
    ROLLED_BACK_TO_TAG,
    VERSUS_CHAMPION_TAG,
    NoModelError,
    RegistryError,
    TrackingConfig,
    registered_aliases,
    retry_when_locked,
    store_exists,
    stored_flags,
    stored_summary,
    tracking_client,
    version_by_alias,
    version_record,
)
from training.decisions import (
    DEFAULT_DECISIONS,
    Decision,
    DecisionSettings,
    promotion_decision,
    promotion_from_tags,
)
from training.offpolicy import Evidence
from training.tracking import FINGERPRINT_PARAM, MODEL_ID_TAG, json_safe_metrics

_EPSILON = 1e-12  # float noise when a difference equals the tolerance


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
    decision: Decision | None = None  # the promotion decision with its evidence (None for rollback)


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
    decision: Decision,
    summary: dict[str, float],
    bias_flags: list[str],
    champion_version: str | None = None,
    champion_bias_flags: list[str] | None = None,
    versus_champion: Evidence | None = None,
    fairness_blocks: list[str] | None = None,
) -> ModelVersionInfo | None:
    """Register the run's model as the new `challenger` when the registration decision says go.

    `summary` holds the headline metrics. When a champion existed at training time,
    pass its version (`champion_version`), the challenger - champion evidence on
    this run's hold-out (`versus_champion`) and the fairness blocks: `promote`
    decides on those. A refused run is tagged `registered=false` with the decision
    and None is returned.
    """
    client = tracking_client(config)
    run = client.get_run(run_id)
    client.set_tag(run_id, DECISION_TAG, decision.to_json()[:7_900])
    if not decision.go:
        client.set_tag(run_id, REGISTERED_TAG, "false")
        client.set_tag(run_id, GATE_FAILURES_TAG, json.dumps(decision.objections)[:7_900])
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
        DECISION_TAG: decision.to_json(),
        FAIRNESS_BLOCKS_TAG: json.dumps(list(fairness_blocks or [])),
    }
    if champion_version is not None:
        tags[COMPARED_WITH_TAG] = str(champion_version)
        tags[CHAMPION_BIAS_FLAGS_TAG] = json.dumps(list(dict.fromkeys(champion_bias_flags or [])))
        if versus_champion is not None:
            tags[VERSUS_CHAMPION_TAG] = json.dumps(versus_champion.to_dict(), sort_keys=True)
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
    settings: DecisionSettings = DEFAULT_DECISIONS,
    force: bool = False,
    reason: str | None = None,
) -> PromotionResult:
    """Make the challenger the champion unless the evidence shows it worse, or a fairness check blocks it.

    Worse means the whole interval of challenger - champion (recorded at training
    time on the same hold-out) lies below -delta. A refusal is returned, not
    raised, and written on the challenger with its evidence. `force=True`
    overrides objections; it needs a reason, recorded with who and when. The
    champion replaced is kept in `previous_champion` for `rollback`. A registry that
    stays locked through a short retry raises RegistryBusyError; a promotion it
    interrupted is finished by the next call (tags first, the alias last).
    """
    if force and not (reason and reason.strip()):
        raise ValueError("a forced promotion needs a reason (it is recorded on the model version)")
    if not store_exists(config):
        raise NoModelError(f"no tracking store at {config.tracking_uri}: train and register a model first")
    return retry_when_locked(
        config, "promote the challenger", lambda: _promote(config, settings, force, reason)
    )


def _promote(
    config: TrackingConfig, settings: DecisionSettings, force: bool, reason: str | None
) -> PromotionResult:
    name = config.model_name
    client = tracking_client(config)
    challenger = version_by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise NoModelError(f"{name!r} has no {CHALLENGER}: train and register one first (timpora train)")
    champion = version_by_alias(client, name, CHAMPION)
    previous = None if champion is None else champion.number
    if champion is not None and champion.number == challenger.number:
        # An interrupted promotion: finish it.
        client.delete_registered_model_alias(name, CHALLENGER)
        return PromotionResult(False, challenger.number, previous, [f"v{previous} is already the champion"])
    decision = (
        promotion_decision(None, None, (), settings)
        if champion is None
        else promotion_from_tags(challenger.tags, champion.number, settings)
    )
    objections = decision.objections
    if not decision.go and not force:
        client.set_model_version_tag(name, challenger.number, PROMOTION_REFUSED_TAG, json.dumps(objections))
        client.set_model_version_tag(name, challenger.number, PROMOTION_DECISION_TAG, decision.to_json())
        return PromotionResult(False, challenger.number, previous, objections, decision)
    now, who = utc_timestamp(), _who()
    tags = {PROMOTED_AT_TAG: now, PROMOTED_BY_TAG: who, PROMOTION_DECISION_TAG: decision.to_json()}
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
    return PromotionResult(True, challenger.number, previous, objections, decision)


def rollback(config: TrackingConfig) -> PromotionResult:
    """Move `champion` back to the version it replaced (the current champion's `previous_champion`).

    RegistryBusyError when the registry stays locked through a short retry.
    """
    if not store_exists(config):
        raise NoModelError(f"no tracking store at {config.tracking_uri}: nothing to roll back")
    return retry_when_locked(config, "roll back the champion", lambda: _rollback(config))


def _rollback(config: TrackingConfig) -> PromotionResult:
    name = config.model_name
    client = tracking_client(config)
    champion = version_by_alias(client, name, CHAMPION)
    if champion is None:
        raise NoModelError(f"{name!r} has no {CHAMPION}: nothing to roll back")
    target = champion.tags.get(PREVIOUS_CHAMPION_TAG)
    if not target:
        raise NoModelError(
            f"champion v{champion.number} of {name!r} replaced no earlier champion: nothing to roll back to"
        )
    restored = version_record(client, name, target)
    now, who = utc_timestamp(), _who()
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
    "vs_random",
    "vs_office_rule",
    "vs_champion",
]


def champion_fingerprint(config: TrackingConfig) -> tuple[str, str] | None:
    """(champion version, the data fingerprint its training run recorded), or None without a champion."""
    if not store_exists(config):
        return None
    return retry_when_locked(config, "read the champion's data fingerprint", lambda: _fingerprint(config))


def _fingerprint(config: TrackingConfig) -> tuple[str, str] | None:
    client = tracking_client(config)
    try:
        champion = version_by_alias(client, config.model_name, CHAMPION)
    except NoModelError:
        return None
    if champion is None:
        return None
    run_id = client.get_model_version(config.model_name, champion.number).run_id
    recorded = client.get_run(run_id).data.params.get(FINGERPRINT_PARAM) if run_id else None
    return (champion.number, recorded) if recorded else None


def list_versions(config: TrackingConfig) -> pd.DataFrame:
    """Every registered version, newest first: aliases, creation time, run, gates, bias flags and
    the headline metrics recorded at registration (one column each). RegistryBusyError when the
    registry stays locked through a short retry."""
    if not store_exists(config):
        return pd.DataFrame(columns=_LIST_COLUMNS)
    return retry_when_locked(config, "list the registered versions", lambda: _list_versions(config))


def _list_versions(config: TrackingConfig) -> pd.DataFrame:
    client = tracking_client(config)
    try:
        aliases = registered_aliases(client, config.model_name)
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
                "bias_flags": len(
                    stored_flags(tags.get(BIAS_FLAGS_TAG))
                ),  # the texts are in the version's tag
                "compared_with": tags.get(COMPARED_WITH_TAG, ""),
                "previous_champion": tags.get(PREVIOUS_CHAMPION_TAG, ""),
                "forced_reason": tags.get(FORCED_REASON_TAG, ""),
                "rolled_back_from": tags.get(ROLLED_BACK_FROM_TAG, ""),
                **_evidence_columns(tags),
                **stored_summary(tags.get(METRICS_TAG)),
            }
        )
    if not rows:
        return pd.DataFrame(columns=_LIST_COLUMNS)
    return pd.DataFrame(rows).sort_values("version", ascending=False, ignore_index=True)


def _short(evidence: Evidence) -> str:
    if math.isnan(evidence.estimate):
        return "no evidence"
    where = "labelled, biased" if evidence.biased else evidence.source
    enough = "" if evidence.sufficient else ", insufficient"
    return f"{evidence.estimate:+.3f} [{evidence.low:+.3f}, {evidence.high:+.3f}] ({where}{enough})"


def _evidence_columns(tags: Mapping[str, str]) -> dict[str, str]:
    """The deciding evidence recorded on a version, one readable column per comparison."""
    out = {"vs_random": "", "vs_office_rule": "", "vs_champion": ""}
    if text := tags.get(DECISION_TAG):
        for evidence in Decision.from_json(text).evidence:
            column = {"model - random": "vs_random", "model - office rule": "vs_office_rule"}.get(
                evidence.comparison
            )
            if column:
                out[column] = _short(evidence)
    if text := tags.get(VERSUS_CHAMPION_TAG):
        out["vs_champion"] = _short(Evidence.from_dict(json.loads(text)))
    return out
