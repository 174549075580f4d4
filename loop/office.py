"""The loop's office side: choose the month's list, bring the outcomes back, retrain, promote.

An `Office` is what a supervision team has: its data set (the files, and held in
memory), its model registry, the real scoring path, `features.lists.commit_list`,
`features.ingest` and `training.retrain`. It knows persons by id only and never
sees the truth: nothing here imports the world side (`loop.world`), the simulator
or `training.truth`, or names the `_truth/` folder (tests/test_loop_layers.py).

Policies:
- `rule`: the office rule (`models.office_rule`), logged TARGETED;
- `model`, `model-uniform`, `model-boundary`: the registry champion through the
  real scoring path, its list drawn by `models.listing` with no exploration,
  uniform exploration or boundary exploration, committed with `commit_list` and
  logged as `LIST` rows with the list id and the exact propensity (1 for model
  picks, the stratum's probability for draws). While no model is registered
  (the first one refused on thin evidence), the office rule is used (`chooser`).
  The model configuration is chosen once: the first model's number of boosting
  rounds is reused by every later retrain (`keep_rounds`);
- `random`: K cases drawn uniformly from all cases (logged RANDOM with k / n).

The data set is held in memory: the records as the office received them, and
the inspections table as the ingest wrote it (that one file is read back after
each ingest). So choosing, and the loop's checks, never reload the whole data set.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.contract import INSPECTIONS, TRIGGER
from features.ingest import ingest
from features.lists import commit_list
from features.loading import final_dtypes, load_table_file
from features.pipeline import features_from_timeline
from features.tables import Tables, write_tables
from features.timeline import Timeline, build_timeline
from models.listing import ExplorationDesign, ListDraw, draw_inspection_list
from models.mlflow_store import NoModelError, TrackingConfig, load_risk_model, local_tracking
from models.office_rule import office_rule_scores
from models.ranker import RiskModel
from models.scoring import score_cases
from training.fit import FitConfig
from training.retrain import RetrainOutcome, retrain
from training.settings import TrainingSettings
from training.train import ObjectiveChoice, TrainOptions

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

RULE, MODEL, MODEL_UNIFORM, MODEL_BOUNDARY, RANDOM = (
    "rule",
    "model",
    "model-uniform",
    "model-boundary",
    "random",
)
POLICIES = (RULE, MODEL, MODEL_UNIFORM, MODEL_BOUNDARY, RANDOM)
MODEL_POLICIES = (MODEL, MODEL_UNIFORM, MODEL_BOUNDARY)
LIST_TRIGGER, RANDOM_TRIGGER, TARGETED_TRIGGER = (TRIGGER.index(t) for t in ("LIST", "RANDOM", "TARGETED"))


def exploration_design(policy: str, share: float) -> ExplorationDesign:
    """The exploration design of a policy's lists (none for `model`, `rule` and `random`)."""
    if policy == MODEL_UNIFORM:
        return ExplorationDesign.uniform(share)
    if policy == MODEL_BOUNDARY:
        return ExplorationDesign(kind="boundary", share=share)
    return ExplorationDesign.uniform(0.0)


def rule_order(features: pd.DataFrame) -> IntArray:
    """Positions of the cases in the office rule's order (ties broken by person id)."""
    ids = features.index.to_numpy(dtype=str)
    order: IntArray = np.lexsort((ids, -office_rule_scores(features)))
    return order


@dataclass(frozen=True)
class Choice:
    """A month's picks: persons (ids), their trigger and propensity, and the list they came from."""

    person_id: np.ndarray
    trigger: IntArray
    propensity: FloatArray
    list_id: str | None
    exploration: int
    chooser: str  # "model v<N>", "office rule" or "random"


class _Unknown:
    """The champion not looked up yet (None means: looked up, none registered)."""


_UNKNOWN = _Unknown()


class Office:
    """One policy's office: its data set under `root / "data"`, its registry under `root / "mlflow"`."""

    def __init__(
        self,
        root: Path,
        policy: str,
        design: ExplorationDesign,
        settings: TrainingSettings,
        objective: ObjectiveChoice = "binary",
        fit: FitConfig | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}: choose from {', '.join(POLICIES)}")
        self.root = root
        self.data = root / "data"
        self.tracking: TrackingConfig = local_tracking(root)
        self.policy = policy
        self.design = design
        self.settings = settings
        self.objective: ObjectiveChoice = objective
        self.fit = fit or FitConfig()
        self._records: Tables | None = None
        self._inspections: pd.DataFrame | None = None
        self._timeline: Timeline | None = None
        self._champion: tuple[RiskModel, str] | _Unknown | None = _UNKNOWN

    # ------------------------------------------------------------ the data set

    def receive_records(self, tables: Tables, *, first: bool) -> None:
        """Write the records the registers now hold into the data set, and hold them.

        The first delivery also holds the office's inspections before the loop;
        later ones leave the inspections table alone (the loop's go through `ingest`).
        """
        self.data.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.data.parent) as tmp:
            for path in write_tables(tables, Path(tmp), "parquet"):
                if path.stem != INSPECTIONS.name or first:
                    os.replace(path, self.data / path.name)
        self._records = tables
        if first:
            self._inspections = tables.inspections
        self._timeline = None

    def ingest_month(self, frame: pd.DataFrame, month: int, today: dt.date) -> None:
        """Bring a month's inspections into the data set through the real `ingest` (as a CSV file)."""
        month_file = self.root / f"inspections-{month:02d}.csv"
        frame.to_csv(month_file, index=False)
        result = ingest(self.data, month_file, today=today)
        if not result.ok or not result.written:
            raise RuntimeError(f"ingest refused month {month} of {self.policy}:\n{result.report.render()}")
        loaded = load_table_file(self.data / f"{INSPECTIONS.name}.parquet", INSPECTIONS)
        if loaded.frame is None or any(issue.severity == "error" for issue in loaded.issues):
            raise RuntimeError(
                f"the inspections table of {self.policy} cannot be read back after month {month}"
            )
        self._inspections = final_dtypes(loaded.frame)  # as loading the data set gives it
        self._timeline = None

    def tables(self) -> Tables:
        """The data set as the office holds it: what loading its directory gives."""
        if self._records is None or self._inspections is None:
            raise RuntimeError("the office has no data set yet: receive the records first")
        return replace(self._records, inspections=self._inspections)

    def timeline(self) -> Timeline:
        """The timeline of the data set as it is now (built once per change)."""
        if self._timeline is None:
            self._timeline = build_timeline(self.tables())
        return self._timeline

    # ------------------------------------------------------------ choosing

    def champion(self) -> tuple[RiskModel, str] | None:
        """The registry's champion and its version, or None while none is registered."""
        if isinstance(self._champion, _Unknown):
            try:
                self._champion = load_risk_model(self.tracking)
            except NoModelError:
                self._champion = None
        return self._champion

    def choose(self, as_of: dt.date, k: int, seed: int) -> Choice:
        """The month's K picks, as of `as_of` (only what the data set holds on that day)."""
        timeline = self.timeline()
        champion = self.champion() if self.policy in MODEL_POLICIES else None
        if champion is not None:
            model, version = champion
            ranked = score_cases(model, version, timeline, as_of).table
            draw = draw_inspection_list(ranked, k, self.design, seed)
            list_id = self._commit(draw, ranked, as_of=as_of, k=k, version=version)
            person = draw.rows.index.to_numpy(dtype=str)
            return Choice(
                person,
                np.full(len(person), LIST_TRIGGER, dtype=np.int64),
                draw.rows["propensity"].to_numpy(dtype=float),
                list_id,
                draw.n_exploration,
                f"model v{version}",
            )
        features = features_from_timeline(timeline, [as_of]).droplevel("as_of")
        ids = features.index.to_numpy(dtype=str)
        n = min(k, len(ids))
        if self.policy in (RULE, *MODEL_POLICIES):  # a model policy without a champion keeps the office rule
            top = ids[rule_order(features)[:n]]
            return Choice(top, np.full(n, TARGETED_TRIGGER), np.full(n, np.nan), None, 0, "office rule")
        picked = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
        propensity = np.full(n, n / max(len(ids), 1))
        return Choice(ids[picked], np.full(n, RANDOM_TRIGGER), propensity, None, 0, "random")

    def _commit(self, draw: ListDraw, ranked: pd.DataFrame, *, as_of: dt.date, k: int, version: str) -> str:
        """Commit the list with the data set (`features.lists`, what the estimators read); its id."""
        committed = commit_list(
            self.data,
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

    # ------------------------------------------------------------ retraining

    def retrain(self, as_of: dt.date, truth: pd.DataFrame | None = None) -> RetrainOutcome:
        """The real retrain as of a date (labels need a whole horizon: the cutoff is `as_of - H`).

        `truth` is the runner's check, handed to the retrain to print beside its decision; the
        office neither reads nor imports it, and no decision depends on it.
        """
        cutoff = as_of - dt.timedelta(days=self.settings.horizon_days)
        options = TrainOptions(defaults=self.settings, objective=self.objective, cutoff=cutoff, fit=self.fit)
        # The tables the office holds are what loading its folder gives (tests/test_loop.py): no reload.
        outcome = retrain(self.data, self.tracking, options, tables=self.tables(), truth=truth)
        self._champion = _UNKNOWN  # it may have been promoted
        return outcome

    def keep_rounds(self, first: RetrainOutcome) -> None:
        """Choose the configuration once: later retrains fit the first model's number of rounds."""
        rounds = int(first.training.result.model.info.get("best_iteration") or 0)
        if rounds > 0:
            self.fit = replace(self.fit, max_rounds=rounds, early_stopping_rounds=rounds)

    def final_model(self, last: RetrainOutcome) -> tuple[RiskModel, str | None]:
        """The model the office ends up with: a model policy's champion, else what its data would give."""
        champion = self.champion()
        if self.policy in MODEL_POLICIES and champion is not None:
            return champion
        return last.training.result.model, last.training.version  # registered or not


def decision_row(outcome: RetrainOutcome, champion_before: str | None) -> dict[str, Any]:
    """A retrain's decision and the evidence it was taken on (from the data alone).

    The truth the retrain printed beside its evidence is left to the runner (`loop.evaluation`).
    """
    training = outcome.training
    promotion = outcome.promotion
    row: dict[str, Any] = {
        "challenger": training.version,
        "registered": training.version is not None,
        "gate_failures": " | ".join(training.gate_failures),
        "promoted": bool(promotion.promoted) if promotion is not None else False,
        "reasons": " | ".join(promotion.reasons) if promotion is not None else "",
        "champion_before": champion_before,
    }
    row["registration"] = training.registration.sentence
    decision = promotion.decision if promotion is not None else None
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
            }
        )
        break  # the first is the one that decides (challenger - champion)
    return row
