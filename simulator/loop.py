"""The closed loop on a simulated world: rank, inspect, ingest the outcomes, retrain, month after month.

The world is simulated once; the office's own inspections after the loop's
start are removed, and each policy then chooses the K inspections of every
month itself:
- `model`: the registry's champion (the real scoring path), with an exploration
  share drawn at random from the rest (`models.listing`), then the month's
  outcomes go through the real `ingest`, and the real `retrain` decides whether
  a new champion takes over;
- `rule`: the office rule of `training.baselines` (overstay now, reports, expiry);
- `random`: K cases drawn uniformly.
An inspection finds a violation that is going on at the visit (the hidden
truth) with the simulator's detection rate per violation type. The loop never
changes the rest of the world (removals after a finding are not simulated), so
the policies are compared on the same cases.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import VIOLATION_TYPE
from features.ingest import ingest
from features.loading import load_valid_tables
from features.pipeline import features_from_timeline
from features.tables import Tables, write_tables, write_truth
from features.timeline import build_timeline
from models.listing import EXPLORATION, draw_inspection_list
from models.scoring import score_cases
from simulator.outcomes import DETECTION, PRIORITY
from simulator.world import WorldConfig, simulate_world
from timpora.config import SETTINGS
from training.baselines import office_rule_scores
from training.registry import load_risk_model
from training.retrain import retrain
from training.tracking import TrackingConfig
from training.train import TrainOptions

POLICIES = ("model", "rule", "random")
STEP_DAYS = 30


@dataclass(frozen=True)
class LoopConfig:
    persons: int = 20_000
    months: int = 6
    capacity: int = 100
    policies: tuple[str, ...] = POLICIES
    exploration_shares: tuple[float, ...] = (0.1,)  # for the model policy; one run per share
    seed: int = 7
    start: dt.date = SETTINGS.simulation.start
    end: dt.date = SETTINGS.simulation.end
    retrain: bool = True


@dataclass(frozen=True)
class Variant:
    policy: str
    share: float

    @property
    def name(self) -> str:
        return f"model-explore{self.share:g}" if self.policy == "model" else self.policy


def variants(config: LoopConfig) -> list[Variant]:
    out = []
    for policy in config.policies:
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r}: choose from {', '.join(POLICIES)}")
        shares = config.exploration_shares if policy == "model" else (0.0,)
        out += [Variant(policy, share) for share in shares]
    return out


def prepare_world(config: LoopConfig, out: Path) -> tuple[Path, dt.date]:
    """Simulate once; keep the office's inspections only before the loop starts. Returns (dir, start)."""
    world = simulate_world(
        WorldConfig(persons=config.persons, seed=config.seed, start=config.start, end=config.end)
    )
    loop_start = config.end - dt.timedelta(days=STEP_DAYS * config.months)
    inspections = world.tables.inspections
    before = inspections[inspections["inspection_date"] <= pd.Timestamp(loop_start)]
    tables: Tables = world.tables.replace(inspections=before.reset_index(drop=True))
    base = out / "world"
    if base.exists():
        shutil.rmtree(base)
    write_tables(tables, base, "parquet")
    write_truth(world.truth, base, "parquet")
    return base, loop_start


def _truth(base: Path) -> pd.DataFrame:
    truth = pd.read_parquet(base / "_truth" / "violations.parquet")
    truth["code"] = truth["violation_type"].map({name: i for i, name in enumerate(VIOLATION_TYPE)})
    truth["start_date"] = pd.to_datetime(truth["start_date"])
    truth["end_date"] = pd.to_datetime(truth["end_date"]).fillna(pd.Timestamp("2262-01-01"))
    return truth


def choose(
    variant: Variant, tables_dir: Path, tracking: TrackingConfig, as_of: dt.date, k: int, seed: int
) -> pd.DataFrame:
    """The month's K cases: person_id, trigger, selection_propensity."""
    timeline = build_timeline(load_valid_tables(tables_dir))
    if variant.policy == "model":
        model, version = load_risk_model(tracking)
        ranked = score_cases(model, version, timeline, as_of).table
        draw = draw_inspection_list(ranked, k, variant.share, seed)
        explored = draw.rows["selection"].to_numpy() == EXPLORATION
        return pd.DataFrame(
            {
                "person_id": draw.rows.index.astype(str),
                "trigger": np.where(explored, "RANDOM", "TARGETED"),
                "selection_propensity": np.where(explored, draw.rows["propensity"].to_numpy(), np.nan),
            }
        )
    features = features_from_timeline(timeline, [as_of]).droplevel("as_of")
    ids = features.index.to_numpy(dtype=str)
    if variant.policy == "rule":
        order = np.lexsort((ids, -office_rule_scores(features)))[:k]
        return pd.DataFrame({"person_id": ids[order], "trigger": "TARGETED", "selection_propensity": np.nan})
    picked = np.random.default_rng(seed).choice(len(ids), size=min(k, len(ids)), replace=False)
    return pd.DataFrame(
        {"person_id": ids[picked], "trigger": "RANDOM", "selection_propensity": min(k, len(ids)) / len(ids)}
    )


def inspect(chosen: pd.DataFrame, truth: pd.DataFrame, as_of: dt.date, tag: str, seed: int) -> pd.DataFrame:
    """Visit each chosen case in the month; find the highest-priority ongoing violation noticed."""
    rng = np.random.default_rng(seed)
    visits = chosen.reset_index(drop=True).copy()
    visits["inspection_date"] = pd.Timestamp(as_of) + pd.to_timedelta(
        rng.integers(1, STEP_DAYS + 1, len(visits)), "D"
    )
    visits["visit"] = np.arange(len(visits))
    pairs = visits.merge(truth, on="person_id", how="inner")
    ongoing = (pairs["start_date"] <= pairs["inspection_date"]) & (
        pairs["inspection_date"] <= pairs["end_date"]
    )
    noticed = rng.random(len(pairs)) < pairs["code"].map(DETECTION).to_numpy(dtype=float)
    pairs = pairs[ongoing & noticed].assign(priority=lambda f: f["code"].map(PRIORITY))
    best = pairs.sort_values(["visit", "priority"]).drop_duplicates("visit").set_index("visit")
    found = visits["visit"].isin(best.index).to_numpy()
    visits["violation_found"] = found
    visits["violation_type"] = visits["visit"].map(best["violation_type"])
    visits["action"] = np.where(found, "WARNING", "NONE")
    visits["days_to_detection"] = (
        visits["inspection_date"] - visits["visit"].map(best["start_date"])
    ).dt.days
    visits["inspection_id"] = [f"LOOP-{tag}-{i:05d}" for i in range(len(visits))]
    visits["sponsor_id"] = None
    return visits


INSPECTION_COLUMNS = [
    "inspection_id",
    "person_id",
    "sponsor_id",
    "inspection_date",
    "trigger",
    "violation_found",
    "violation_type",
    "action",
    "selection_propensity",
]


def run_variant(
    config: LoopConfig, variant: Variant, base: Path, loop_start: dt.date, out: Path
) -> pd.DataFrame:
    """One policy through every month: a row per month."""
    root = out / variant.name
    if root.exists():
        shutil.rmtree(root)
    data = root / "data"
    shutil.copytree(base, data)
    store = root / "mlflow"
    tracking = TrackingConfig(
        tracking_uri=f"sqlite:///{store.resolve()}/mlflow.db", artifact_root=store / "artifacts"
    )
    truth = _truth(base)
    horizon = SETTINGS.training.horizon_days
    if variant.policy == "model":
        retrain(data, tracking, TrainOptions(cutoff=loop_start - dt.timedelta(days=horizon)))
    rows = []
    for month in range(config.months):
        as_of = loop_start + dt.timedelta(days=STEP_DAYS * month)
        seed = config.seed * 1000 + month
        chosen = choose(variant, data, tracking, as_of, config.capacity, seed)
        visits = inspect(chosen, truth, as_of, f"{variant.name}-{month:02d}", seed)
        month_file = root / f"inspections-{month:02d}.csv"
        visits[INSPECTION_COLUMNS].to_csv(month_file, index=False)
        result = ingest(data, month_file, today=as_of + dt.timedelta(days=STEP_DAYS))
        if not result.written:
            raise RuntimeError(f"ingest refused month {month} of {variant.name}:\n{result.report.render()}")
        version = None
        if variant.policy == "model":
            version = load_risk_model(tracking)[1]
            if config.retrain and month < config.months - 1:
                cutoff = as_of + dt.timedelta(days=STEP_DAYS) - dt.timedelta(days=horizon)
                retrain(data, tracking, TrainOptions(cutoff=cutoff))
        found = visits["violation_found"].to_numpy()
        rows.append(
            {
                "policy": variant.name,
                "month": month + 1,
                "as_of": as_of.isoformat(),
                "inspections": len(visits),
                "found": int(found.sum()),
                "found_per_100": 100.0 * found.mean() if len(found) else 0.0,
                "days_to_detection": float(visits.loc[found, "days_to_detection"].mean())
                if found.any()
                else None,
                "exploration": int((visits["trigger"] == "RANDOM").sum()) if variant.policy == "model" else 0,
                "model_version": version,
            }
        )
    return pd.DataFrame(rows)


def selection_audit(base: Path, out: Path, names: Sequence[str]) -> pd.DataFrame:
    """Who was inspected, by nationality and sex, relative to who was in the country: ratio of shares."""
    persons = pd.read_parquet(base / "persons.parquet")
    rows = []
    for name in names:
        inspected = pd.concat(pd.read_csv(path) for path in sorted((out / name).glob("inspections-*.csv")))
        chosen = persons[persons["person_id"].isin(inspected["person_id"])]
        for attribute in ("nationality", "sex"):
            population = persons[attribute].value_counts(normalize=True)
            share = chosen[attribute].value_counts(normalize=True).reindex(population.index, fill_value=0.0)
            ratio = (share / population).rename("ratio")
            for group, value in ratio.items():
                rows.append({"policy": name, "attribute": attribute, "group": group, "ratio": float(value)})
    return pd.DataFrame(rows)


def run_loop(config: LoopConfig, out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every variant on the same world: (per-month results, selection audit)."""
    out = out.resolve()  # MLflow needs absolute artifact paths
    out.mkdir(parents=True, exist_ok=True)
    base, loop_start = prepare_world(config, out)
    chosen = variants(config)
    months = pd.concat([run_variant(config, v, base, loop_start, out) for v in chosen], ignore_index=True)
    audit = selection_audit(base, out, [v.name for v in chosen])
    months.to_csv(out / "loop_months.csv", index=False)
    audit.to_csv(out / "loop_selection.csv", index=False)
    totals(months).to_csv(out / "loop_totals.csv", index=False)
    plot_loop(months, out / "loop_found_per_100.png")
    return months, audit


def plot_loop(months: pd.DataFrame, path: Path) -> Path:
    """Violations found per 100 inspections by month, one line per policy (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for policy, rows in months.groupby("policy", sort=False):
        axis.plot(rows["month"], rows["found_per_100"], marker="o", label=str(policy))
    axis.set_xlabel("month of the loop")
    axis.set_ylabel("violations found per 100 inspections")
    axis.set_title("Closed loop on a simulated world")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def totals(months: pd.DataFrame) -> pd.DataFrame:
    """Per policy: inspections, violations found, found per 100 and mean days from start to detection."""
    grouped = months.groupby("policy", sort=False)
    out = grouped.agg(inspections=("inspections", "sum"), found=("found", "sum"))
    out["found_per_100"] = 100.0 * out["found"] / out["inspections"]
    weights = months.assign(weighted=months["days_to_detection"].fillna(0) * months["found"])
    out["days_to_detection"] = weights.groupby("policy", sort=False)["weighted"].sum() / out["found"].where(
        out["found"] > 0
    )
    return out.reset_index()
