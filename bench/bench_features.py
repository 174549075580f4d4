"""Benchmark: load + validate a data set, then build features at 1 or N monthly as-of dates.

Run it in a fresh process per measurement so peak memory is this job's alone:
    python bench/bench_features.py --data var/bench-100k --dates 1
    python bench/bench_features.py --data var/bench-100k --dates 12
Simulate the data set first (bench/bench_simulate.py or `timpora simulate`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import save, timed

from features.loading import load_valid_tables
from features.pipeline import build_features


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", type=Path, required=True, help="data set directory")
    parser.add_argument("--dates", type=int, default=1, help="monthly as-of dates, ending at the last date")
    args = parser.parse_args()

    record: dict[str, object] = {"data": str(args.data), "dates": args.dates}
    with timed(record, "load_validate"):  # type: ignore[arg-type]
        tables = load_valid_tables(args.data)
    last = tables.last_date()
    assert last is not None
    as_of = [last - pd.DateOffset(months=i) for i in range(args.dates)][::-1]
    record["persons"] = len(tables.persons)
    record["rows"] = sum(len(frame) for _, frame in tables.items())
    with timed(record, "features"):  # type: ignore[arg-type]
        matrix = build_features(tables, as_of, progress=True)
    record["cases"] = len(matrix)
    record["features"] = matrix.shape[1]
    save("features", record)


if __name__ == "__main__":
    main()
