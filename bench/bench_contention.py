"""Benchmark: LightGBM fitting when another process holds a core (2 cores shared).

    python bench/bench_contention.py --data var/bench/100000

Not part of run_all.py: it starts its own CPU burner. On the labelled training
cases of the default split it times --rounds boosting rounds (no early stopping)
with the project's parameters (`FitConfig().lightgbm_params()`), varying only
num_threads, first on the machine as it is, then with --burners busy child processes
(a Python loop, or LightGBM fits on 2 threads; ended by their pids) running alongside. Run it as
`OMP_WAIT_POLICY=passive python bench/bench_contention.py ...` to see the effect
of OpenMP's passive waiting.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import lightgbm as lgb

sys.path.insert(0, str(Path(__file__).parent))
from common import before_measurement, machine_state, save

from features.loading import load_valid_tables
from training.fit import FitConfig, _dataset, balanced
from training.train import TrainOptions, _labelled_cases, build_case_sets, split_for

# A pure-Python busy loop, or a LightGBM fit on 2 threads over and over (like another
# engineer's tests or training scripts on the same 2 cores).
BURNERS = {
    "loop": "while True: pass",
    "lightgbm": (
        "import lightgbm as lgb, numpy as np\n"
        "r = np.random.default_rng(0); x = r.random((20000, 40)); y = r.random(20000) < 0.2\n"
        "while True: lgb.train({'objective': 'binary', 'num_threads': 2, 'verbosity': -1},"
        " lgb.Dataset(x, y), 50)"
    ),
}


def fit_seconds(train_set: lgb.Dataset, threads: int, rounds: int) -> float:
    params = {**FitConfig().lightgbm_params(), "num_threads": threads}
    start = time.perf_counter()
    lgb.train(params, train_set, num_boost_round=rounds)
    return round(time.perf_counter() - start, 2)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", type=Path, required=True, help="data set directory")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--burners", type=int, default=1, help="busy processes to run alongside")
    parser.add_argument(
        "--burner-kind", choices=sorted(BURNERS), default="loop", help="what the busy processes run"
    )
    args = parser.parse_args()

    tables = load_valid_tables(args.data)
    split = split_for(tables, TrainOptions())
    cases = build_case_sets(tables, split)
    train = balanced(_labelled_cases(cases.on(split.train_dates)))
    train_set = _dataset(train, FitConfig())
    train_set.construct()
    record: dict[str, object] = {
        "data": str(args.data),
        "rows": len(train.label),
        "rounds": args.rounds,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "burners": args.burners,
        "burner_kind": args.burner_kind,
        **before_measurement(),
    }
    for threads in (2, 1):
        record[f"as_is_threads{threads}_s"] = fit_seconds(train_set, threads, args.rounds)
    burner = [sys.executable, "-c", BURNERS[args.burner_kind]]
    burners = [subprocess.Popen(burner) for _ in range(args.burners)]
    try:
        time.sleep(0.5)
        record["with_burner_state"] = machine_state()
        for threads in (2, 1):
            record[f"burner_threads{threads}_s"] = fit_seconds(train_set, threads, args.rounds)
    finally:
        for process in burners:
            process.kill()
            process.wait()
    save("contention", record)


if __name__ == "__main__":
    main()
