"""Benchmark: the training job with default options; features+labels apart from fitting.

    python bench/bench_train.py --data var/bench/100000
    python bench/bench_train.py --data var/bench/1000000 --stop-after 900

Phases, each timed with the peak RSS so far:
- load_validate: `load_valid_tables`;
- case_sets: `build_case_sets` (timeline, features on 12 training + 3 validation
  dates + the test date, labels);
- fit: `train_model(tables, options, split=split, cases=cases)` given that split
  and those case sets (the LightGBM candidates, logistic baseline, test scores).
  No MLflow, no evaluation or SHAP.
With --stop-after N the process dumps every thread's stack to stderr and exits
after N seconds, so a run that is too slow says where it was.
"""

from __future__ import annotations

import argparse
import faulthandler
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import before_measurement, peak_rss_mib, profiled, save, timed

from features.loading import load_valid_tables
from training.train import TrainOptions, build_case_sets, split_for, train_model


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", type=Path, required=True, help="data set directory")
    parser.add_argument("--stop-after", type=float, default=0, help="seconds; 0 = no limit")
    parser.add_argument("--profile", default=None, help="cProfile the fit step; report name")
    args = parser.parse_args()
    if args.stop_after > 0:
        faulthandler.dump_traceback_later(args.stop_after, exit=True)

    record: dict[str, object] = {"data": str(args.data), **before_measurement()}
    times: dict[str, float] = {}
    options = TrainOptions()
    with timed(times, "load_validate"):
        tables = load_valid_tables(args.data)
    record["persons"] = len(tables.persons)
    split = split_for(tables, options)
    record["split"] = split.describe()
    with timed(times, "case_sets"):
        cases = build_case_sets(tables, split)
    print(f"case sets: {len(cases.features):,} cases in {times['case_sets_s']} s", flush=True)
    with profiled(args.profile), timed(times, "fit"):
        result = train_model(tables, options, split=split, cases=cases)
    record.update(times)
    record["train_total_s"] = round(times["case_sets_s"] + times["fit_s"], 2)
    record["peak_rss_mib"] = round(peak_rss_mib(), 1)
    record["cases"] = len(cases.features)
    record["counts"] = result.counts
    record["candidates"] = [
        {
            "objective": c.objective,
            "trees": c.model.booster.num_trees(),
            "validation_precision": round(float(c.validation_score), 4),
        }
        for c in result.candidates
    ]
    record["profiled"] = bool(args.profile)
    save("train", record)


if __name__ == "__main__":
    main()
