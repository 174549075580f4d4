"""The closed loop on a simulated world, honestly: rank, inspect, bring the outcomes back, retrain.

The runner wires the two sides together: the world side (`loop.world`: the
truth, what an inspection finds) and the office side (`loop.office`: choose a
list, ingest the outcomes, retrain, promote, never seeing the truth).

For each seed, one world: the office inspects until the loop starts; from then
on each policy picks the month's K inspections itself, on its own copy of the
world, where its findings have the simulator's consequences (removal,
correction) and the office's later inspections never happened. The office
still follows up partner agencies' tips (kept, assessed on the policy's world,
reported apart: a list cannot know of a tip to come). Every month the outcomes
go through the real `ingest`, the records with the month's removals reach the
office's data set, and (model policies) the real `retrain` decides, from the
data alone, whether the challenger takes over; the truth is computed beside
each decision as a check, never deciding (`loop.evaluation`). Policies: see
`loop.office`.

What is counted: distinct violation episodes found (a person's overlapping or
touching violation intervals are one episode, found once however often it is
re-found), all findings, repeats, and days from an episode's start to its first
finding. At the end every policy retrains once more, and the models the
policies end up with are compared on the truth, on the same date and the same
cases, at the operational capacity (the office's inspections per horizon).
Summaries, CSVs and the plot: `loop.report`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from features.tables import write_truth
from features.timeline import Timeline
from loop.evaluation import data_truth, rule_truth_precision, truth_beside, truth_precision
from loop.office import (
    MODEL_POLICIES,
    POLICIES,
    RANDOM,
    Office,
    decision_row,
    exploration_design,
)
from loop.report import (
    FINAL_METRICS,
    LoopResult,
    paired_differences,
    render_result,
    summarise,
    totals,
    write_results,
)
from loop.world import (
    LoopState,
    LoopWorld,
    count_findings,
    month_frame,
    person_codes,
    prepare_loop_world,
    state_tables,
    state_truth_frame,
    to_date,
    visit_month,
)
from models.listing import ExplorationDesign
from models.ranker import RiskModel
from simulator.world import WorldConfig
from training.fit import FitConfig
from training.retrain import RetrainOutcome
from training.settings import TrainingSettings
from training.train import ObjectiveChoice

__all__ = [
    "POLICIES",
    "LoopConfig",
    "LoopResult",
    "paired_differences",
    "render_result",
    "run_loop",
    "run_policy",
    "run_seed",
    "summarise",
    "totals",
]

_WORLD = WorldConfig()  # the defaults of a simulated world


@dataclass(frozen=True)
class LoopConfig:
    """What the loop runs: the world, the months, the capacity, the policies and the seeds.

    The world's defaults are `WorldConfig`'s (one world per seed), the horizon and
    every training default `training`'s: an edge passes its loaded settings.
    """

    persons: int = _WORLD.persons
    months: int = 12
    capacity: int | None = None  # inspections per month; None: the office's (non-tip) rate before the loop
    policies: tuple[str, ...] = POLICIES
    seeds: tuple[int, ...] = (_WORLD.seed,)
    exploration_share: float = 0.1
    start: dt.date = _WORLD.start
    end: dt.date = _WORLD.end
    retrain: bool = True
    keep_tips: bool = True
    false_tip_nationality: str | None = _WORLD.false_tip_nationality
    objective: ObjectiveChoice = "binary"  # the model configuration, chosen once for every retrain
    fit: FitConfig | None = None  # LightGBM settings of the first model; later retrains reuse its rounds
    workers: int = 1  # seeds run in parallel processes (each seed is independent)
    training: TrainingSettings = field(default_factory=TrainingSettings)

    def __post_init__(self) -> None:
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown:
            raise ValueError(f"unknown policy {unknown[0]!r}: choose from {', '.join(POLICIES)}")
        if not self.seeds:
            raise ValueError("the loop needs at least one seed")
        if not 0.0 < self.exploration_share < 1.0:
            raise ValueError(f"the exploration share must be within (0, 1), got {self.exploration_share}")

    def world(self, seed: int) -> WorldConfig:
        return dataclasses.replace(
            _WORLD,
            persons=self.persons,
            seed=seed,
            start=self.start,
            end=self.end,
            false_tip_nationality=self.false_tip_nationality,
        )

    def design(self, policy: str) -> ExplorationDesign:
        """The exploration design of a model policy's lists."""
        return exploration_design(policy, self.exploration_share)

    @property
    def horizon_days(self) -> int:
        return self.training.horizon_days

    @property
    def horizon_months(self) -> int:
        """The label horizon in months: the operational capacity is this many months of inspections."""
        return max(1, round(self.horizon_days / 30))


@dataclass
class PolicyRun:
    """What one policy did in one world: its inspections (with outcomes) and its monthly decisions."""

    policy: str
    seed: int
    data: Path  # the office's data set
    inspections: pd.DataFrame = field(default_factory=pd.DataFrame)
    months: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    final_model: RiskModel | None = None
    final_version: str | None = None
    final_timeline: Timeline | None = None  # of the office's data set at the end

    def final_world(self) -> tuple[Timeline, pd.DataFrame]:
        """The timeline and the truth of the policy's data set at the end (after its last month)."""
        if self.final_timeline is None:
            raise RuntimeError(f"the {self.policy} policy has not run to the end")
        return self.final_timeline, data_truth(self.data)


def _deliver(office: Office, world: LoopWorld, state: LoopState, *, first: bool) -> None:
    """The policy's world reaches the office: the records with its removals; its truth beside (`_truth/`)."""
    office.receive_records(state_tables(world, state, world.office_frame()), first=first)
    write_truth(state_truth_frame(world, state), office.data, "parquet")


def run_policy(world: LoopWorld, config: LoopConfig, policy: str, seed: int, k: int, out: Path) -> PolicyRun:
    """One policy through every month of one world."""
    root = out / f"seed-{seed}" / policy
    if root.exists():
        shutil.rmtree(root)
    state = LoopState.start(world, [seed, zlib.crc32(policy.encode())])
    office = Office(root, policy, config.design(policy), config.training, config.objective, config.fit)
    _deliver(office, world, state, first=True)
    horizon = config.horizon_days
    k_op = config.horizon_months * k
    run = PolicyRun(policy, seed, office.data)

    def decided(
        outcome: RetrainOutcome, champion: tuple[RiskModel, str] | None, as_of: dt.date
    ) -> dict[str, Any]:
        return decision_row(outcome, champion[1] if champion else None) | truth_beside(
            outcome,
            champion[0] if champion else None,
            office.timeline(),
            state_truth_frame(world, state),
            as_of,
            k_op,
            horizon,
        )

    if policy in MODEL_POLICIES:
        # Not registered (thin evidence): the office rule is used until a retrain registers one.
        first = office.retrain(world.start, truth=data_truth(office.data))
        office.keep_rounds(first)
        run.decisions.append(
            {"seed": seed, "policy": policy, "month": 0, "decided_as_of": world.start.isoformat()}
            | decided(first, None, world.start)
        )
    frames = []
    for m, month in enumerate(world.months):
        as_of = to_date(month[0])
        chosen = office.choose(as_of, k, seed * 1000 + m)  # list seeds: the same for every policy of the seed
        done, list_ids = visit_month(
            world,
            state,
            person_codes(world, chosen.person_id),
            chosen.trigger,
            chosen.propensity,
            chosen.list_id,
            month,
            config.keep_tips,
        )
        frame = month_frame(world, done, list_ids, f"{policy}-{seed}-{m:02d}")
        office.ingest_month(frame, m + 1, today=to_date(month[1]))
        _deliver(office, world, state, first=False)  # the month's removals reach the records
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
            champion = office.champion()
            outcome = office.retrain(next_as_of, truth=data_truth(office.data))
            run.decisions.append(
                {**row, "decided_as_of": next_as_of.isoformat(), **decided(outcome, champion, next_as_of)}
            )
            if last:
                run.final_model, run.final_version = office.final_model(outcome)
        run.months.append(row)
    run.final_timeline = office.timeline()
    run.inspections = pd.concat(frames, ignore_index=True)
    count_findings(world, state, run.inspections, run.months)
    return run


def run_seed(
    config: LoopConfig, seed: int, out: Path, progress: Callable[[str], None] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every policy on one world; then the final models compared on the same date and cases.

    Returns (months, decisions, final models) of this seed.
    """
    world = prepare_loop_world(config.world(seed), config.months, config.horizon_days)
    k = config.capacity or max(1, round(world.office_per_month()))
    runs = []
    for policy in config.policies:
        if progress:
            progress(f"seed {seed}: {policy} ({config.months} months, {k} inspections a month)")
        runs.append(run_policy(world, config, policy, seed, k, out))
    finals = _final_models(world, runs, seed, config.horizon_months * k, config.horizon_days)
    months = pd.DataFrame([row for run in runs for row in run.months])
    decisions = pd.DataFrame([row for run in runs for row in run.decisions])
    return months, decisions, finals


def _seed_job(config: LoopConfig, seed: int, out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return run_seed(
        config, seed, out, lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)
    )


def _final_models(
    world: LoopWorld, runs: list[PolicyRun], seed: int, k_op: int, horizon: int
) -> pd.DataFrame:
    """Truth precision at the operational capacity of each policy's final model, on the final date.

    `common` scores every model on the same cases (the random policy's world, the
    one least shaped by a targeting policy, or else the first policy's); `own`
    on the policy's own world. The office rule is scored beside them.
    """
    final = world.final
    names = [r.policy for r in runs]
    reference = runs[names.index(RANDOM if RANDOM in names else names[0])]
    ref_timeline, ref_truth = reference.final_world()
    rows = []
    for run in runs:
        own_timeline, own_truth = run.final_world()
        rows.append(
            {
                "seed": seed,
                "policy": run.policy,
                "final_date": final.isoformat(),
                "k": k_op,
                "model_version": run.final_version,
                "common_world": reference.policy,
                "truth_precision_common": truth_precision(
                    run.final_model, ref_timeline, ref_truth, final, k_op, horizon
                ),
                "truth_precision_own": truth_precision(
                    run.final_model, own_timeline, own_truth, final, k_op, horizon
                ),
                "rule_truth_precision_common": rule_truth_precision(
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
