"""Benchmark of model quality: precision at the main capacity against the baselines, per seed.

    python bench/bench_quality.py --seed 7
    python bench/bench_quality.py --seeds 7,8,9 --table   # print the table of saved records

For a seed: simulate --persons persons over the default period, write the world
(tables and `_truth/`) to var/bench/quality-<seed>/, load it back through
`load_valid_tables`, `train_model` with default options, and `evaluate_result`
with truth labels. The record keeps precision@<main capacity> for every scorer
(model, office_rule, logistic, random) in every view (truth, labelled,
random_sample), with the number of labelled cases in the list behind each.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, before_measurement, peak_rss_mib, save, timed

from features.loading import load_valid_tables
from features.tables import write_tables, write_truth
from simulator.world import WorldConfig, simulate_world
from training.evaluate import truth_labels
from training.train import TrainOptions, evaluate_result, train_model
from training.truth import load_truth

VAR = Path(__file__).parent.parent / "var" / "bench"
SCORERS = ("model", "office_rule", "logistic", "random")
VIEWS = ("truth", "labelled", "random_sample")


def measure(seed: int, persons: int) -> None:
    options = TrainOptions()
    k = options.defaults.main_capacity
    record: dict[str, object] = {"seed": seed, "persons": persons, "capacity": k, **before_measurement()}
    times: dict[str, float] = {}
    out = VAR / f"quality-{seed}"
    with timed(times, "simulate_write"):
        world = simulate_world(WorldConfig(persons=persons, seed=seed))
        write_tables(world.tables, out, "parquet")
        write_truth(world.truth, out, "parquet")
    with timed(times, "train"):
        tables = load_valid_tables(out)
        result = train_model(tables, options)
    truth_frame = load_truth(out)
    assert truth_frame is not None
    truth = truth_labels(truth_frame, result.test.labels.index, result.split.horizon_days)
    with timed(times, "evaluate"):
        result = evaluate_result(result, truth, options.defaults)
    table = result.evaluation.set_index(["view", "scorer"])
    precision: dict[str, dict[str, float]] = {}
    labelled: dict[str, dict[str, float]] = {}
    for view in VIEWS:
        precision[view] = {s: round(float(table.loc[(view, s), f"precision@{k}"]), 4) for s in SCORERS}
        labelled[view] = {s: float(table.loc[(view, s), f"labelled@{k}"]) for s in SCORERS}
    record.update(times)
    record["split"] = result.split.describe()
    record["counts"] = result.counts
    record["test_truth_positive_share"] = round(float(truth.mean()), 4)
    record["chosen"] = {"objective": result.model.objective, "weighted": result.model.info.get("weighted")}
    record["precision"] = precision
    record["labelled_in_list"] = labelled
    low, high = f"precision@{k}_low", f"precision@{k}_high"
    record["random_sample_model_interval"] = [
        round(float(table.loc[("random_sample", "model"), low]), 3),
        round(float(table.loc[("random_sample", "model"), high]), 3),
    ]
    record["peak_rss_mib"] = round(peak_rss_mib(), 1)
    save("quality", record)


def print_table(seeds: list[int]) -> None:
    """The latest saved record per seed as a Markdown table."""
    latest: dict[int, dict[str, object]] = {}
    for line in (RESULTS / "quality.jsonl").read_text().splitlines():
        row = json.loads(line)
        latest[int(row["seed"])] = row
    print("| seed | view | " + " | ".join(SCORERS) + " |")
    print("|---|---|" + "---|" * len(SCORERS))
    for seed in seeds:
        row = latest.get(seed)
        if row is None:
            continue
        for view in VIEWS:
            p = row["precision"][view]  # type: ignore[index]
            n = row["labelled_in_list"][view]  # type: ignore[index]
            cells = [f"{p[s]:.3f} (n={int(n[s])})" for s in SCORERS]
            print(f"| {seed} | {view} | " + " | ".join(cells) + " |")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seeds", default="7,8,9", help="for --table")
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--table", action="store_true", help="print saved results; measure nothing")
    args = parser.parse_args()
    if args.table:
        print_table([int(s) for s in args.seeds.split(",")])
    else:
        measure(args.seed, args.persons)


if __name__ == "__main__":
    main()
