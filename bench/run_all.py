"""Run every benchmark at the sizes the issues ask for; results go to bench/results/*.jsonl.

Each measurement runs in its own process so that peak memory is its own.
Sizes: simulate 100k persons; features for 100k and 1M persons at 1 and 12 dates.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE.parent / "var" / "bench"


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated person counts")
    args = parser.parse_args()
    for persons in (int(p) for p in args.sizes.split(",")):
        out = DATA / f"{persons}"
        run(str(HERE / "bench_simulate.py"), "--persons", str(persons), "--out", str(out))
        for dates in (1, 12):
            run(str(HERE / "bench_features.py"), "--data", str(out), "--dates", str(dates))


if __name__ == "__main__":
    main()
