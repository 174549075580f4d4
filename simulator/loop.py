"""The closed loop on a simulated world, honestly: rank, inspect, bring the outcomes back, retrain.

For each seed, one world (`simulator.loop_world`): the office inspects until
the loop starts; from then on each policy picks the month's K inspections
itself, on its own copy of the world, where its findings have the simulator's
consequences (removal, correction) and the office's later inspections never
happened. The office still follows up partner agencies' tips (kept, assessed on
the policy's world, reported apart: a list cannot know of a tip to come).

Policies (the same world and the same list seeds per seed, so differences are paired):
- `rule`: the office rule of `training.baselines` (logged TARGETED);
- `model`, `model-uniform`, `model-boundary`: the registry champion through the
  real scoring path, its list drawn by `models.listing` with no exploration,
  uniform exploration or boundary exploration, committed with
  `features.lists.commit_list` and logged as `LIST` rows with the list id and
  the exact propensity (1 for model picks, the stratum's probability for draws);
  every month the outcomes go through the real `ingest`, and the real `retrain`
  decides, from the data alone, whether the challenger takes over (the truth
  is computed beside each decision as a check, never deciding). While no model
  is registered (the first one refused on thin evidence), the policy uses the
  office rule (column `chooser`). The model configuration is chosen once: the
  first model's number of boosting rounds is reused by every monthly retrain;
- `random`: K cases drawn uniformly from all cases (logged RANDOM with k / n).

What is counted: distinct violation episodes found (a person's overlapping or
touching violation intervals are one episode, found once however often it is
re-found), all findings, repeats, and days from an episode's start to its first
finding. At the end every policy retrains once more, and the models the
policies end up with are compared on the truth, on the same date and the same
cases, at the operational capacity (the office's inspections per horizon).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.contract import TRIGGER
from features.ingest import ingest
from features.lists import commit_list
from features.loading import load_valid_tables
from features.pipeline import features_from_timeline
from features.tables import write_tables, write_truth
from features.timeline import Timeline, build_timeline
from models.listing import ExplorationDesign, ListDraw, draw_inspection_list
from models.mlflow_store import NoModelError, TrackingConfig, load_risk_model
from models.office_rule import office_rule_scores
from models.ranker import RiskModel
from models.scoring import score_cases
from simulator.loop_world import (
    Episodes,
    LoopState,
    LoopWorld,
    episodes,
    inspect_month,
    month_tips,
    prepare_loop_world,
    state_tables,
    state_truth,
    state_truth_frame,
    to_date,
    visit_days,
)
from simulator.outcomes import Inspections
from simulator.period import IntArray
from simulator.selection import Picks
from simulator.world import WorldConfig
from training.fit import FitConfig
from training.retrain import RetrainOutcome, retrain
from training.settings import TrainingSettings
from training.train import ObjectiveChoice, TrainOptions
from training.truth import truth_labels

RULE, MODEL, MODEL_UNIFORM, MODEL_BOUNDARY, RANDOM = (
    "rule",
    "model",
    "model-uniform",
    "model-boundary",
    "random",
)
POLICIES = (RULE, MODEL, MODEL_UNIFORM, MODEL_BOUNDARY, RANDOM)
MODEL_POLICIES = (MODEL, MODEL_UNIFORM, MODEL_BOUNDARY)
LIST_TRIGGER, RANDOM_TRIGGER, TARGETED_TRIGGER, TIP_TRIGGER = (
    TRIGGER.index(t) for t in ("LIST", "RANDOM", "TARGETED", "TIP")
)
HORIZON_MONTHS = 3  # the label horizon in months: the operational capacity is 3 months of inspections
T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


@dataclass(frozen=True)
class LoopConfig:
    """What the loop runs: the world, the months, the capacity, the policies and the seeds."""

    persons: int = 20_000
    months: int = 12
    capacity: int | None = None  # inspections per month; None: the office's (non-tip) rate before the loop
    policies: tuple[str, ...] = POLICIES
    seeds: tuple[int, ...] = (7,)
    exploration_share: float = 0.1
    start: dt.date = WorldConfig.start
    end: dt.date = WorldConfig.end
    retrain: bool = True
    keep_tips: bool = True
    false_tip_nationality: str | None = None
    objective: ObjectiveChoice = "binary"  # the model configuration, chosen once for every retrain
    fit: FitConfig | None = None  # LightGBM settings of the first model; later retrains reuse its rounds
    workers: int = 1  # seeds run in parallel processes (each seed is independent)

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown policy {unknown[0]!r}: choose from {', '.join(POLICIES)}")
        if not self.seeds:
            raise ValueError("the loop needs at least one seed")
        if not 0.0 < self.exploration_share < 1.0:
            raise ValueError(f"the exploration share must be within (0, 1), got {self.exploration_share}")

    def world(self, seed: int) -> WorldConfig:
        return WorldConfig(
            persons=self.persons,
            seed=seed,
            start=self.start,
            end=self.end,
            false_tip_nationality=self.false_tip_nationality,
        )

    def design(self, policy: str) -> ExplorationDesign:
        """The exploration design of a model policy's lists."""
        if policy == MODEL_UNIFORM:
            return ExplorationDesign.uniform(self.exploration_share)
        if policy == MODEL_BOUNDARY:
            return ExplorationDesign(kind="boundary", share=self.exploration_share)
        return ExplorationDesign.uniform(0.0)


@dataclass(frozen=True)
class Chosen:
    """A month's picks: persons (codes), their trigger and propensity, and the list they came from."""

    person: IntArray
    trigger: IntArray
    propensity: np.ndarray
    list_id: str | None
    exploration: int
    chooser: str  # "model v<N>", "office rule" or "random"


@dataclass
class PolicyRun:
    """What one policy did in one world: its inspections (with outcomes) and its monthly decisions."""

    policy: str
    seed: int
    inspections: pd.DataFrame = field(default_factory=pd.DataFrame)
    months: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    final_model: RiskModel | None = None
    final_version: str | None = None


# ---------------------------------------------------------------- the data set a policy sees


def _tracking(root: Path) -> TrackingConfig:
    store = root / "mlflow"
    return TrackingConfig(
        tracking_uri=f"sqlite:///{store.resolve()}/mlflow.db", artifact_root=store / "artifacts"
    )


def _write_world(world: LoopWorld, state: LoopState, data: Path, *, first: bool) -> None:
    """Write the policy's world into `data`: the records with its removals applied, and its truth.

    The first write also holds the office's inspections before the loop; later
    writes leave the inspections table alone (the loop's go through `ingest`).
    """
    tables = state_tables(world, state, world.office_frame())
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data.parent) as tmp:
        for path in write_tables(tables, Path(tmp), "parquet"):
            if path.stem != "inspections" or first:
                os.replace(path, data / path.name)
    write_truth(state_truth_frame(world, state), data, "parquet")


def _person_codes(world: LoopWorld, ids: Sequence[str] | np.ndarray) -> IntArray:
    codes = pd.Index(world.drawn.person_ids).get_indexer(pd.Index(np.asarray(ids, dtype=str)))
    if (codes < 0).any():
        raise RuntimeError("a listed person is not in the simulated world")
    return codes.astype(np.int64)


# ---------------------------------------------------------------- choosing


def _commit(data: Path, draw: ListDraw, ranked: pd.DataFrame, *, as_of: dt.date, k: int, version: str) -> str:
    """Commit the list with the data set (`features.lists`, what the estimators read) and return its id."""
    committed = commit_list(
        data,
        draw,
        as_of=as_of,
        scope={},
        k=k,
        model_version=version,
        design=draw.design,
        seed=draw.seed,
        ranked=ranked,
    )
    return committed.list_id


def choose(
    world: LoopWorld,
    config: LoopConfig,
    policy: str,
    timeline: Timeline,
    data: Path,
    tracking: TrackingConfig,
    as_of: dt.date,
    k: int,
    seed: int,
) -> Chosen:
    """The month's K picks of a policy, as of `as_of` (only what the data set holds on that day)."""
    champion = _champion(tracking) if policy in MODEL_POLICIES else None
    if champion is not None:
        model, version = champion
        ranked = score_cases(model, version, timeline, as_of).table
        draw = draw_inspection_list(ranked, k, config.design(policy), seed)
        list_id = _commit(data, draw, ranked, as_of=as_of, k=k, version=version)
        person = _person_codes(world, draw.rows.index.to_numpy(dtype=str))
        trigger = np.full(len(person), LIST_TRIGGER, dtype=np.int64)
        return Chosen(
            person,
            trigger,
            draw.rows["propensity"].to_numpy(dtype=float),
            list_id,
            draw.n_exploration,
            f"model v{version}",
        )
    features = features_from_timeline(timeline, [as_of]).droplevel("as_of")
    ids = features.index.to_numpy(dtype=str)
    n = min(k, len(ids))
    if policy in (RULE, *MODEL_POLICIES):  # a model policy without a champion keeps the office rule
        order = np.lexsort((ids, -office_rule_scores(features)))[:n]
        person = _person_codes(world, ids[order])
        return Chosen(person, np.full(n, TARGETED_TRIGGER), np.full(n, np.nan), None, 0, "office rule")
    picked = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    person = _person_codes(world, ids[picked])
    return Chosen(person, np.full(n, RANDOM_TRIGGER), np.full(n, n / max(len(ids), 1)), None, 0, "random")


# ---------------------------------------------------------------- one month, one policy


def _month_frame(world: LoopWorld, done: Inspections, list_ids: np.ndarray, tag: str) -> pd.DataFrame:
    """The month's inspections in the contract's columns, with `list_id` on LIST rows."""
    from simulator.inspections import inspections_frame

    frame = inspections_frame(done, world.drawn.person_ids, world.drawn.sponsor_ids)
    frame["inspection_id"] = [f"LOOP-{tag}-{i:05d}" for i in range(len(frame))]
    frame["list_id"] = list_ids
    return frame


def _dedupe(picks: Picks) -> IntArray:
    """Positions of the first pick of each (person, day): a list visit and a tip the same day are one."""
    key = picks.person * np.int64(2**32) + picks.day
    _, first = np.unique(key, return_index=True)
    return np.sort(first)


def _month(
    world: LoopWorld,
    state: LoopState,
    chosen: Chosen,
    month: tuple[int, int],
    keep_tips: bool,
) -> tuple[Inspections, np.ndarray]:
    """Visit the picks (and the month's tips), assess on the policy's world, apply consequences."""
    days = visit_days(state, month, len(chosen.person))
    parts_person, parts_day = [chosen.person], [days]
    trigger, propensity = [chosen.trigger], [chosen.propensity]
    list_ids = [np.full(len(chosen.person), chosen.list_id, dtype=object)]
    if keep_tips:
        tips = month_tips(world, state, month)
        parts_person.append(tips.person)
        parts_day.append(tips.day)
        trigger.append(np.full(len(tips), TIP_TRIGGER, dtype=np.int64))
        propensity.append(np.full(len(tips), np.nan))
        list_ids.append(np.full(len(tips), None, dtype=object))
    person, day = np.concatenate(parts_person), np.concatenate(parts_day)
    picks = Picks(person, day, np.full(len(person), -1, dtype=np.int64))
    first = _dedupe(picks)
    picks = Picks(person[first], day[first], picks.sponsor[first])
    done = inspect_month(
        world, state, picks, np.concatenate(trigger)[first], np.concatenate(propensity)[first], month
    )
    return done, np.concatenate(list_ids)[first]


def _truth_precision(
    model: RiskModel | None, timeline: Timeline, truth: pd.DataFrame, as_of: dt.date, k: int, horizon: int
) -> float:
    """Share of a model's top k as of `as_of` in violation in (as_of, as_of + H] by the truth."""
    if model is None:
        return math.nan
    ranked = score_cases(model, "check", timeline, as_of).table
    top = ranked.sort_values("rank").head(k)
    cases = pd.MultiIndex.from_arrays(
        [top.index.astype(str), pd.DatetimeIndex([pd.Timestamp(as_of)] * len(top))],
        names=["person_id", "as_of"],
    )
    return float(truth_labels(truth, cases, horizon).mean()) if len(top) else math.nan


def _rule_truth_precision(
    timeline: Timeline, truth: pd.DataFrame, as_of: dt.date, k: int, horizon: int
) -> float:
    features = features_from_timeline(timeline, [as_of]).droplevel("as_of")
    ids = features.index.to_numpy(dtype=str)
    order = np.lexsort((ids, -office_rule_scores(features)))[:k]
    cases = pd.MultiIndex.from_arrays(
        [ids[order], pd.DatetimeIndex([pd.Timestamp(as_of)] * len(order))], names=["person_id", "as_of"]
    )
    return float(truth_labels(truth, cases, horizon).mean()) if len(order) else math.nan


def _decision(
    outcome: RetrainOutcome,
    champion: tuple[RiskModel, str] | None,
    timeline: Timeline,
    truth: pd.DataFrame,
    as_of: dt.date,
    k_op: int,
    horizon: int,
) -> dict[str, Any]:
    """The retrain's decision and its evidence (from the data), with the truth beside it (a check only)."""
    training = outcome.training
    promotion = outcome.promotion
    row: dict[str, Any] = {
        "challenger": training.version,
        "registered": training.version is not None,
        "gate_failures": " | ".join(training.gate_failures),
        "promoted": bool(promotion.promoted) if promotion is not None else False,
        "reasons": " | ".join(promotion.reasons) if promotion is not None else "",
        "champion_before": champion[1] if champion else None,
    }
    row.update(_evidence(outcome))
    challenger_model = training.result.model
    row["truth_challenger"] = _truth_precision(challenger_model, timeline, truth, as_of, k_op, horizon)
    row["truth_champion"] = _truth_precision(
        champion[0] if champion else None, timeline, truth, as_of, k_op, horizon
    )
    row["truth_says"] = (
        "challenger better"
        if row["truth_challenger"] > row["truth_champion"]
        else "champion better or equal"
        if champion
        else "no champion"
    )
    return row


def _evidence(outcome: RetrainOutcome) -> dict[str, Any]:
    """The deciding evidence of a retrain: the sentences, and the challenger - champion estimate."""
    row: dict[str, Any] = {}
    row["registration"] = outcome.training.registration.sentence
    decision = outcome.promotion.decision if outcome.promotion is not None else None
    if decision is None:
        return row
    row["decision"] = decision.sentence
    for evidence in decision.evidence:
        row.update(
            {
                "evidence_comparison": evidence.comparison,
                "evidence_source": evidence.source,
                "evidence_estimator": evidence.estimator,
                "evidence_estimate": evidence.estimate,
                "evidence_low": evidence.low,
                "evidence_high": evidence.high,
                "evidence_n_effective": evidence.n_effective,
                "evidence_sufficient": evidence.sufficient,
                "evidence_truth": evidence.truth,
            }
        )
        break  # the first is the one that decides (challenger - champion)
    return row


def _champion(tracking: TrackingConfig) -> tuple[RiskModel, str] | None:
    try:
        return load_risk_model(tracking)
    except NoModelError:
        return None


def run_policy(world: LoopWorld, config: LoopConfig, policy: str, seed: int, k: int, out: Path) -> PolicyRun:
    """One policy through every month of one world."""
    root = out / f"seed-{seed}" / policy
    if root.exists():
        shutil.rmtree(root)
    data = root / "data"
    state = LoopState.start(world, [seed, zlib.crc32(policy.encode())])
    _write_world(world, state, data, first=True)
    tracking = _tracking(root)
    horizon = TrainingSettings.horizon_days
    k_op = HORIZON_MONTHS * k
    fit = config.fit or FitConfig()
    options = lambda cutoff: TrainOptions(objective=config.objective, cutoff=cutoff, fit=fit)  # noqa: E731
    run = PolicyRun(policy, seed)
    if policy in MODEL_POLICIES:
        # Not registered (thin evidence): the office rule is used until a retrain registers one.
        first = retrain(data, tracking, options(world.start - dt.timedelta(days=horizon)))
        # The configuration is chosen once: later retrains fit the first model's number of rounds.
        rounds = int(first.training.result.model.info.get("best_iteration") or 0)
        if rounds > 0:
            fit = replace(fit, max_rounds=rounds, early_stopping_rounds=rounds)
        run.decisions.append(
            {"seed": seed, "policy": policy, "month": 0, "decided_as_of": world.start.isoformat()}
            | _decision(
                first,
                None,
                build_timeline(load_valid_tables(data)),
                state_truth_frame(world, state),
                world.start,
                k_op,
                horizon,
            )
        )
    frames = []
    timeline: Timeline | None = None  # of the data as it is now (rebuilt after each write)
    for m, month in enumerate(world.months):
        as_of = to_date(month[0])
        list_seed = seed * 1000 + m  # the same for every policy of the seed
        if timeline is None:
            timeline = build_timeline(load_valid_tables(data))
        chosen = choose(world, config, policy, timeline, data, tracking, as_of, k, list_seed)
        done, list_ids = _month(world, state, chosen, month, config.keep_tips)
        frame = _month_frame(world, done, list_ids, f"{policy}-{seed}-{m:02d}")
        month_file = root / f"inspections-{m + 1:02d}.csv"
        frame.to_csv(month_file, index=False)
        result = ingest(data, month_file, today=to_date(month[1]))
        if not result.ok or not result.written:
            raise RuntimeError(f"ingest refused month {m + 1} of {policy}:\n{result.report.render()}")
        _write_world(world, state, data, first=False)  # the month's removals reach the records
        timeline = None
        frames.append(frame.assign(month=m + 1))
        row: dict[str, Any] = {
            "seed": seed,
            "policy": policy,
            "month": m + 1,
            "as_of": as_of.isoformat(),
            "capacity": k,
            "chooser": chosen.chooser,
            "exploration": chosen.exploration,
            "list_id": chosen.list_id,
        }
        last = m == len(world.months) - 1
        if (policy in MODEL_POLICIES and config.retrain) or last:
            next_as_of = to_date(month[1] + 1)
            champion = _champion(tracking)
            outcome = retrain(data, tracking, options(next_as_of - dt.timedelta(days=horizon)))
            timeline = build_timeline(load_valid_tables(data))
            truth = state_truth_frame(world, state)
            decision = _decision(outcome, champion, timeline, truth, next_as_of, k_op, horizon)
            run.decisions.append({**row, "decided_as_of": next_as_of.isoformat(), **decision})
            if last:
                after = _champion(tracking)
                if policy in MODEL_POLICIES and after is not None:
                    run.final_model, run.final_version = after
                else:  # the model this policy's data would give, registered or not
                    run.final_model = outcome.training.result.model
                    run.final_version = outcome.training.version
        run.months.append(row)
    run.inspections = pd.concat(frames, ignore_index=True)
    _count(world, state, run)
    return run


# ---------------------------------------------------------------- counting


def _count(world: LoopWorld, state: LoopState, run: PolicyRun) -> None:
    """Per month: inspections, findings, new episodes and repeats, for the policy's picks and tips apart."""
    found = episodes(state_truth(world, state))
    frame = run.inspections
    frame["episode"] = _episode_of(world, found, frame)
    frame["episode_start"] = np.where(
        frame["episode"].to_numpy() >= 0, found.start[np.maximum(frame["episode"].to_numpy(), 0)], -1
    )
    frame["tip"] = frame["trigger"].to_numpy() == "TIP"
    by_month = {row["month"]: row for row in run.months}
    for tip, prefix in ((False, ""), (True, "tip_")):
        part = frame[frame["tip"] == tip].sort_values(["inspection_date", "inspection_id"])
        hits = part[part["violation_found"].astype(bool)]
        first = ~hits["episode"].duplicated()
        days = (hits["inspection_date"] - pd.to_datetime(to_date(0))).dt.days - hits["episode_start"]
        for month, rows in part.groupby("month"):
            m_hits = hits["month"] == month
            by_month[int(str(month))].update(
                {
                    f"{prefix}inspections": len(rows),
                    f"{prefix}findings": int(m_hits.sum()),
                    f"{prefix}new_episodes": int((m_hits & first).sum()),
                    f"{prefix}repeats": int((m_hits & ~first).sum()),
                    f"{prefix}days_to_detection_sum": float(days[m_hits & first].sum()),
                }
            )
    for row in run.months:
        for prefix in ("", "tip_"):
            for name in ("inspections", "findings", "new_episodes", "repeats", "days_to_detection_sum"):
                row.setdefault(f"{prefix}{name}", 0)


def _episode_of(world: LoopWorld, found: Episodes, frame: pd.DataFrame) -> IntArray:
    person = _person_codes(world, frame["person_id"].to_numpy(dtype=str))
    dates = pd.to_datetime(frame["inspection_date"]).to_numpy(dtype="datetime64[D]")
    day: IntArray = dates.astype(np.int64)
    episode = found.of(person, day)
    hit = frame["violation_found"].to_numpy(dtype=bool)
    if (episode[hit] < 0).any():
        raise RuntimeError("a finding lies outside every violation episode of the truth")
    return np.where(hit, episode, -1)


def totals(months: pd.DataFrame) -> pd.DataFrame:
    """Per seed and policy: the sums, distinct episodes per 100 inspections, repeats, days to detection."""
    sums = months.groupby(["seed", "policy"], sort=False)[
        [
            "inspections",
            "findings",
            "new_episodes",
            "repeats",
            "days_to_detection_sum",
            "tip_inspections",
            "tip_findings",
            "tip_new_episodes",
        ]
    ].sum()
    out = sums.rename(columns={"new_episodes": "episodes", "tip_new_episodes": "tip_episodes"})
    out["episodes_per_100"] = 100.0 * out["episodes"] / out["inspections"]
    out["findings_per_100"] = 100.0 * out["findings"] / out["inspections"]
    out["repeat_share"] = out["repeats"] / out["findings"].where(out["findings"] > 0)
    out["days_to_detection"] = out["days_to_detection_sum"] / out["episodes"].where(out["episodes"] > 0)
    return out.drop(columns="days_to_detection_sum").reset_index()


FINAL_METRICS = ("truth_precision_common", "truth_precision_own")
METRICS = ("episodes_per_100", "episodes", "findings", "repeats", "repeat_share", "days_to_detection")


def summarise(per_seed: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per policy: the mean over seeds of each metric with a 95% t-interval (seeds as replicates)."""
    rows = []
    for policy, part in per_seed.groupby("policy", sort=False):
        row: dict[str, Any] = {"policy": policy, "seeds": len(part)}
        for metric in metrics:
            mean, low, high = _t_interval(part[metric].to_numpy(dtype=float))
            row.update({metric: mean, f"{metric}_low": low, f"{metric}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(per_seed: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """For every pair of policies: the mean over seeds of (a - b) on the same world, with a 95% t-interval."""
    policies = list(dict.fromkeys(per_seed["policy"]))
    wide = per_seed.pivot(index="seed", columns="policy")
    rows = []
    for i, a in enumerate(policies):
        for b in policies[i + 1 :]:
            for metric in metrics:
                diff = (wide[(metric, a)] - wide[(metric, b)]).dropna().to_numpy(dtype=float)
                mean, low, high = _t_interval(diff)
                rows.append(
                    {
                        "a": a,
                        "b": b,
                        "metric": metric,
                        "difference": mean,
                        "low": low,
                        "high": high,
                        "seeds": len(diff),
                        "per_seed": " ".join(f"{v:+.2f}" for v in diff),
                    }
                )
    columns = ["a", "b", "metric", "difference", "low", "high", "seeds", "per_seed"]
    return pd.DataFrame(rows, columns=columns)


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = T_95.get(len(values) - 1, 1.96) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


# ---------------------------------------------------------------- the study


@dataclass(frozen=True)
class LoopResult:
    months: pd.DataFrame  # a row per seed, policy and month
    totals: pd.DataFrame  # a row per seed and policy
    summary: pd.DataFrame  # a row per policy: means over seeds with intervals
    paired: pd.DataFrame  # a row per pair of policies and metric
    decisions: pd.DataFrame  # a row per retrain: decision, evidence, the truth beside it
    final_models: pd.DataFrame  # a row per seed and policy: truth precision of the model it ends up with
    final_paired: pd.DataFrame  # paired differences of that truth precision between policies


def run_seed(
    config: LoopConfig, seed: int, out: Path, progress: Callable[[str], None] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every policy on one world; then the final models compared on the same date and cases.

    Returns (months, decisions, final models) of this seed.
    """
    horizon = TrainingSettings.horizon_days
    world = prepare_loop_world(config.world(seed), config.months, horizon)
    k = config.capacity or max(1, round(world.office_per_month()))
    runs = []
    for policy in config.policies:
        if progress:
            progress(f"seed {seed}: {policy} ({config.months} months, {k} inspections a month)")
        runs.append(run_policy(world, config, policy, seed, k, out))
    finals = _final_models(world, runs, seed, HORIZON_MONTHS * k, out, horizon)
    months = pd.DataFrame([row for run in runs for row in run.months])
    decisions = pd.DataFrame([row for run in runs for row in run.decisions])
    return months, decisions, finals


def _seed_job(config: LoopConfig, seed: int, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return run_seed(
        config, seed, out, lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)
    )


def _final_models(
    world: LoopWorld, runs: list[PolicyRun], seed: int, k_op: int, out: Path, horizon: int
) -> pd.DataFrame:
    """Truth precision at the operational capacity of each policy's final model, on the final date.

    `common` scores every model on the same cases (the random policy's world, the
    one least shaped by a targeting policy, or else the first policy's); `own`
    on the policy's own world. The office rule is scored beside them.
    """
    final = world.final
    names = [r.policy for r in runs]
    reference = RANDOM if RANDOM in names else names[0]
    ref_data = out / f"seed-{seed}" / reference / "data"
    ref_timeline = build_timeline(load_valid_tables(ref_data))
    ref_truth = pd.read_parquet(ref_data / "_truth" / "violations.parquet")
    rows = []
    for run in runs:
        data = out / f"seed-{seed}" / run.policy / "data"
        own_timeline = build_timeline(load_valid_tables(data))
        own_truth = pd.read_parquet(data / "_truth" / "violations.parquet")
        rows.append(
            {
                "seed": seed,
                "policy": run.policy,
                "final_date": final.isoformat(),
                "k": k_op,
                "model_version": run.final_version,
                "common_world": reference,
                "truth_precision_common": _truth_precision(
                    run.final_model, ref_timeline, ref_truth, final, k_op, horizon
                ),
                "truth_precision_own": _truth_precision(
                    run.final_model, own_timeline, own_truth, final, k_op, horizon
                ),
                "rule_truth_precision_common": _rule_truth_precision(
                    ref_timeline, ref_truth, final, k_op, horizon
                ),
            }
        )
    return pd.DataFrame(rows)


def run_loop(config: LoopConfig, out: Path, progress: Callable[[str], None] | None = None) -> LoopResult:
    """Every policy on the world of every seed; results written to `out` (CSVs and a plot)."""
    out = out.resolve()  # MLflow needs absolute artifact paths
    out.mkdir(parents=True, exist_ok=True)
    if config.workers > 1 and len(config.seeds) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(config.workers, len(config.seeds))) as pool:
            parts = list(
                pool.map(_seed_job, [config] * len(config.seeds), config.seeds, [out] * len(config.seeds))
            )
    else:
        parts = [run_seed(config, seed, out, progress) for seed in config.seeds]
    months = pd.concat([p[0] for p in parts], ignore_index=True)
    finals = pd.concat([p[2] for p in parts], ignore_index=True)
    per_seed = totals(months)
    result = LoopResult(
        months=months,
        totals=per_seed,
        summary=summarise(per_seed),
        paired=paired_differences(per_seed),
        decisions=pd.concat([p[1] for p in parts], ignore_index=True),
        final_models=finals,
        final_paired=paired_differences(finals, FINAL_METRICS),
    )
    write_results(result, out)
    return result


def write_results(result: LoopResult, out: Path) -> None:
    """The loop's CSVs and its plot into `out`."""
    result.months.to_csv(out / "loop_months.csv", index=False)
    result.totals.to_csv(out / "loop_totals.csv", index=False)
    result.summary.to_csv(out / "loop_summary.csv", index=False)
    result.paired.to_csv(out / "loop_paired.csv", index=False)
    result.decisions.to_csv(out / "loop_decisions.csv", index=False)
    result.final_models.to_csv(out / "loop_final_models.csv", index=False)
    result.final_paired.to_csv(out / "loop_final_paired.csv", index=False)
    plot_loop(result.summary, result.paired, out / "loop_episodes.png")


def plot_loop(summary: pd.DataFrame, paired: pd.DataFrame, path: Path) -> Path:
    """Distinct episodes per 100 inspections per policy, and differences with the rule, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    y = np.arange(len(summary))
    mean = summary["episodes_per_100"].to_numpy(dtype=float)
    low = np.nan_to_num(mean - summary["episodes_per_100_low"].to_numpy(dtype=float))
    high = np.nan_to_num(summary["episodes_per_100_high"].to_numpy(dtype=float) - mean)
    left.errorbar(mean, y, xerr=[low, high], fmt="o", capsize=4)
    left.set_yticks(y, summary["policy"])
    left.set_xlabel("distinct violation episodes found per 100 inspections")
    left.set_xlim(left=0)
    left.grid(alpha=0.3)
    left.set_title("Closed loop: mean over seeds, 95% interval")
    rule = paired[(paired["metric"] == "episodes_per_100") & ((paired["a"] == RULE) | (paired["b"] == RULE))]
    if len(rule):
        sign = np.where(rule["a"] == RULE, -1.0, 1.0)  # other - rule
        other = np.where(rule["a"] == RULE, rule["b"], rule["a"])
        d = sign * rule["difference"].to_numpy(dtype=float)
        lo = sign * rule["low"].to_numpy(dtype=float)
        hi = sign * rule["high"].to_numpy(dtype=float)
        yy = np.arange(len(rule))
        right.errorbar(
            d,
            yy,
            xerr=[np.nan_to_num(d - np.minimum(lo, hi)), np.nan_to_num(np.maximum(lo, hi) - d)],
            fmt="o",
            capsize=4,
        )
        right.axvline(0, color="grey", lw=1)
        right.set_yticks(yy, [f"{o} - rule" for o in other])
        right.set_xlabel("paired difference, episodes per 100 (same worlds)")
        right.grid(alpha=0.3)
        right.set_title("Against the office rule")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def render_result(result: LoopResult) -> str:
    """The loop's tables as text: per policy with intervals, paired differences, decisions, final models."""
    fmt = lambda v: f"{v:.2f}"  # noqa: E731
    summary = result.summary
    lines = ["Per policy (mean over seeds, 95% t-interval over seeds):"]
    for _, row in summary.iterrows():
        lines.append(
            f"  {row['policy']:<15} episodes/100 {row['episodes_per_100']:.1f} "
            f"[{row['episodes_per_100_low']:.1f}, {row['episodes_per_100_high']:.1f}]  "
            f"episodes {row['episodes']:.1f}  findings {row['findings']:.1f}  repeats {row['repeats']:.1f} "
            f"(share {row['repeat_share']:.2f})  days to detection {row['days_to_detection']:.0f}"
        )
    lines.append("Totals per seed:")
    lines.append(result.totals.to_string(index=False, float_format=fmt))
    main = result.paired[result.paired["metric"].isin(["episodes_per_100", "findings", "days_to_detection"])]
    lines.append("Paired differences a - b (same worlds), 95% t-interval over seeds:")
    lines.append(main.to_string(index=False, float_format=fmt))
    if len(result.decisions):
        columns = [
            c
            for c in (
                "seed",
                "policy",
                "decided_as_of",
                "challenger",
                "registered",
                "promoted",
                "reasons",
                "truth_challenger",
                "truth_champion",
            )
            if c in result.decisions
        ]
        evidence = [str(c) for c in result.decisions.columns if str(c).startswith("evidence")]
        lines.append("Monthly decisions (from the data) and the truth beside them (a check, never deciding):")
        lines.append(result.decisions[columns + evidence].to_string(index=False, float_format=fmt))
    lines.append("Models the policies end up with: truth precision at the operational capacity, final date:")
    lines.append(result.final_models.to_string(index=False, float_format=fmt))
    lines.append("Their paired differences a - b (same worlds), 95% t-interval over seeds:")
    lines.append(result.final_paired.to_string(index=False, float_format=fmt))
    return "\n".join(lines)
