"""Decisions in deployment mode against the truth, over simulator seeds and two world variants.

For each (variant, seed): simulate a world, write it WITHOUT `_truth/`, train and
register (the registration decision), then train a challenger that differs only by
seed and promote it (the promotion decision). Afterwards, and only then, the hidden
truth is read to say what each decision should have been: the truth precision
difference at the operational capacity, mean over the evaluation dates.

    .venv/bin/python bench/decisions_study.py [--seeds 11 12 13 14] [--persons 15000]

Writes bench/results/decisions/decisions.csv and decisions.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.loading import load_valid_tables  # noqa: E402
from features.tables import write_tables  # noqa: E402
from models.mlflow_store import TrackingConfig, load_risk_model, quiet_mlflow  # noqa: E402
from models.office_rule import office_rule_scores  # noqa: E402
from simulator.world import WorldConfig, simulate_world  # noqa: E402
from training.retrain import retrain  # noqa: E402
from training.settings import TrainingSettings  # noqa: E402
from training.train import TrainOptions  # noqa: E402
from training.workflow import gather_samples, truth_difference  # noqa: E402

VARIANTS = {"default": None, "false tips on CHN": "CHN"}
OUT = ROOT / "bench" / "results" / "decisions"


def _row(
    variant: str, seed: int, step: str, decided: bool, evidence: object, truth: float
) -> dict[str, object]:
    e = evidence
    return {
        "variant": variant,
        "seed": seed,
        "decision": step,
        "taken": "yes" if decided else "no",
        "comparison": getattr(e, "comparison", ""),
        "source": getattr(e, "source", ""),
        "estimate": getattr(e, "estimate", float("nan")),
        "low": getattr(e, "low", float("nan")),
        "high": getattr(e, "high", float("nan")),
        "n_effective": getattr(e, "n_effective", float("nan")),
        "sufficient": getattr(e, "sufficient", False),
        "truth_says": truth,
    }


def study_world(variant: str, nationality: str | None, seed: int, persons: int, root: Path) -> list[dict]:
    world = simulate_world(
        WorldConfig(
            persons=persons,
            seed=seed,
            start=dt.date(2022, 1, 1),
            end=dt.date(2025, 12, 31),
            false_tip_nationality=nationality,
        )
    )
    data = root / f"{seed}-{nationality or 'default'}"
    write_tables(world.tables, data, "parquet")  # deployment mode: no _truth/
    store = data.with_suffix(".mlflow")
    tracking = TrackingConfig(tracking_uri=f"sqlite:///{store}/mlflow.db", artifact_root=store / "artifacts")
    first = retrain(data, tracking)  # register, then promote (no champion yet)
    rows = []
    tables = load_valid_tables(data)
    h = first.training.result.split.horizon_days
    k = first.training.result.capacity
    _, labelled = gather_samples([], tables, first.training.result, h)
    model = first.training.result.model
    by_name = {e.comparison: e for e in first.training.registration.evidence}
    registered = first.training.version is not None
    for comparison, baseline in (("model - random", None), ("model - office rule", office_rule_scores)):
        truth = truth_difference(labelled, world.truth, h, model.score, baseline, k)
        rows.append(_row(variant, seed, f"register ({comparison})", registered, by_name[comparison], truth))
    if first.training.version is None:
        return rows
    reseeded = TrainOptions(defaults=TrainingSettings(seed=TrainingSettings.seed + 100))
    second = retrain(data, tracking, reseeded)
    champion, _ = load_risk_model(tracking, version=first.training.version)
    if second.training.version is None:
        rows.append(_row(variant, seed, "register seed-only challenger", False, None, float("nan")))
        return rows
    _, labelled = gather_samples([], tables, second.training.result, h)
    rows.append(
        _row(
            variant,
            seed,
            "promote seed-only challenger",
            second.promotion is not None and second.promotion.promoted,
            second.training.versus_champion,
            truth_difference(labelled, world.truth, h, second.training.result.model.score, champion.score, k),
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13, 14])
    parser.add_argument("--persons", type=int, default=15_000)
    args = parser.parse_args()
    quiet_mlflow()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant, nationality in VARIANTS.items():
            for seed in args.seeds:
                start = time.perf_counter()
                rows += study_world(variant, nationality, seed, args.persons, Path(tmp))
                print(f"{variant} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
        shutil.rmtree(tmp, ignore_errors=True)
    table = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "decisions.csv", index=False)
    shown = table.assign(
        interval=[
            f"{e:+.3f} [{lo:+.3f}, {hi:+.3f}]"
            for e, lo, hi in zip(table["estimate"], table["low"], table["high"], strict=True)
        ],
        truth_says=table["truth_says"].map(lambda v: f"{v:+.3f}"),
    )[
        [
            "variant",
            "seed",
            "decision",
            "taken",
            "source",
            "interval",
            "n_effective",
            "sufficient",
            "truth_says",
        ]
    ]
    header = "| " + " | ".join(shown.columns) + " |\n|" + "---|" * len(shown.columns) + "\n"
    body = "".join(
        "| " + " | ".join(f"{v:.0f}" if isinstance(v, float) else str(v) for v in row) + " |\n"
        for row in shown.itertuples(index=False)
    )
    (OUT / "decisions.md").write_text(header + body)
    print(shown.to_string(index=False))


if __name__ == "__main__":
    main()
