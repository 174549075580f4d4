"""Benchmark: load + validate a data set, then build features at 1 or N monthly as-of dates.

Run it in a fresh process per measurement so peak memory is this job's alone:
    python bench/bench_features.py --data var/bench/100000 --dates 1
    python bench/bench_features.py --data var/bench/100000 --dates 12
    python bench/bench_features.py --data var/bench/1000000 --dates 1 --profile features-1m
Simulate the data set first (bench/bench_simulate.py or `timpora simulate`).

`build_features` is `features_from_timeline(build_timeline(tables), ...)`: the two
steps are timed apart (`timeline_s`, `snapshots_s`) and `features_s` is their sum.
The aim: 1M persons, one date, features under 60 s and 6 GiB peak.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import before_measurement, peak_rss_mib, profiled, save, timed

from features.loading import load_valid_tables
from features.pipeline import features_from_timeline
from features.timeline import build_timeline


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", type=Path, required=True, help="data set directory")
    parser.add_argument("--dates", type=int, default=1, help="monthly as-of dates, ending at the last date")
    parser.add_argument("--profile", default=None, help="cProfile the feature step; report name")
    args = parser.parse_args()

    record: dict[str, object] = {"data": str(args.data), "dates": args.dates, **before_measurement()}
    times: dict[str, float] = {}
    with timed(times, "load_validate"):
        tables = load_valid_tables(args.data)
    last = tables.last_date()
    assert last is not None
    as_of = [last - pd.DateOffset(months=i) for i in range(args.dates)][::-1]
    record["persons"] = len(tables.persons)
    record["rows"] = sum(len(frame) for _, frame in tables.items())
    with profiled(args.profile):
        with timed(times, "timeline"):
            timeline = build_timeline(tables)
        with timed(times, "snapshots"):
            matrix = features_from_timeline(timeline, as_of, progress=True)
    record.update(times)
    record["features_s"] = round(times["timeline_s"] + times["snapshots_s"], 2)
    record["peak_rss_mib"] = round(peak_rss_mib(), 1)
    record["cases"] = len(matrix)
    record["features"] = matrix.shape[1]
    record["matrix_mib"] = round(matrix.memory_usage(deep=True).sum() / 2**20, 1)
    record["profiled"] = bool(args.profile)
    save("features", record)


if __name__ == "__main__":
    main()
