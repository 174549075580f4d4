"""Run every benchmark at the sizes the issues ask for; results go to bench/results/*.jsonl.

Each measurement runs in its own process so that peak memory is its own. For
each size (default 100k and 1M persons): simulate (data set under
var/bench/<persons>/), features at 1 and 12 monthly as-of dates, training with
default options (stopped after --train-limit seconds). Then: ranking every case of
the largest data set with a model trained on the 100k one (`bench_rank.py`),
reasons throughput on 2,000 cases (`bench_shap.py`), the HTTP service against
in-process predict on a 350k-person world (`bench_serve.py`, its own model and
worlds under var/bench/serve/), and model quality on 20k-person worlds of three
seeds (`bench_quality.py`).

Every record notes the load average and the other busy processes just before
it; --wait-quiet N waits up to N seconds for other processes to go quiet first
(2 cores are shared: LightGBM training slows down by orders of magnitude when
another process holds a core).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE.parent / "var" / "bench"


def run(*args: str, check: bool = True) -> int:
    print("+", " ".join(args), flush=True)
    return subprocess.run([sys.executable, *args], check=check).returncode


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated person counts")
    parser.add_argument("--seeds", default="7,8,9", help="simulator seeds of the quality benchmark")
    parser.add_argument("--train-limit", type=int, default=900, help="seconds; then training stops")
    parser.add_argument("--wait-quiet", type=int, default=0, help="seconds to wait for a quiet machine")
    parser.add_argument("--skip-simulate", action="store_true", help="reuse data sets already in var/bench")
    args = parser.parse_args()
    os.environ["BENCH_WAIT_QUIET_S"] = str(args.wait_quiet)
    sizes = [int(p) for p in args.sizes.split(",")]
    failed = []
    for persons in sizes:
        out = DATA / f"{persons}"
        if not (args.skip_simulate and out.exists()):
            run(str(HERE / "bench_simulate.py"), "--persons", str(persons), "--out", str(out))
            shutil.rmtree(DATA / f"model-{persons}", ignore_errors=True)  # trained on the old world
        for dates in (1, 12):
            run(str(HERE / "bench_features.py"), "--data", str(out), "--dates", str(dates))
        train = ["--data", str(out), "--stop-after", str(args.train_limit)]
        if run(str(HERE / "bench_train.py"), *train, check=False) != 0:
            failed.append(f"bench_train.py {persons} persons (stopped or failed; stack dump above)")
    model_data = DATA / "100000"
    if not model_data.exists():
        run(str(HERE / "bench_simulate.py"), "--persons", "100000", "--out", str(model_data))
    run(str(HERE / "bench_rank.py"), "--data", str(DATA / f"{max(sizes)}"), "--model-data", str(model_data))
    run(str(HERE / "bench_shap.py"), "--data", str(model_data), "--rows", "2000")
    run(str(HERE / "bench_serve.py"))
    seeds = args.seeds.split(",")
    for seed in seeds:
        run(str(HERE / "bench_quality.py"), "--seed", seed)
    run(str(HERE / "bench_quality.py"), "--table", "--seeds", ",".join(seeds))
    if failed:
        print("not finished:", *failed, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
