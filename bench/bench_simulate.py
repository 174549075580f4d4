"""Benchmark: simulate a world and write it as parquet; wall time and peak memory.

    python bench/bench_simulate.py --persons 100000
    python bench/bench_simulate.py --persons 100000 --out var/bench/100000

Without --out the data set goes to a temporary directory that is removed after.
The requirement: 100,000 persons over the default 4.5 years in under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import before_measurement, peak_rss_mib, save, timed

from features.tables import write_tables, write_truth
from simulator.world import WorldConfig, simulate_world


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--persons", type=int, default=100_000, help="number of persons to simulate")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--out", type=Path, default=None, help="data set directory (default: a temporary one)"
    )
    args = parser.parse_args()

    config = WorldConfig(persons=args.persons, seed=args.seed)
    state = before_measurement()
    times: dict[str, float] = {}
    with timed(times, "simulate"):
        world = simulate_world(config)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out if args.out is not None else Path(tmp)
        with timed(times, "write_parquet"):
            write_tables(world.tables, out, "parquet")
            write_truth(world.truth, out, "parquet")
    total = round(times["simulate_s"] + times["write_parquet_s"], 2)
    peak = round(peak_rss_mib(), 1)
    rows = sum(len(frame) for _, frame in world.tables.items())
    print(
        f"simulate {times['simulate_s']} s + write {times['write_parquet_s']} s = {total} s, "
        f"peak RSS {peak} MiB"
    )
    record = {
        "persons": args.persons,
        "seed": args.seed,
        "rows": rows,
        **times,
        "total_s": total,
        "peak_rss_mib": peak,
        **state,
    }
    save("simulate", record)


if __name__ == "__main__":
    main()
