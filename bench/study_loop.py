"""Study: the honest closed loop, 12 months, several seeds, five policies (`make study`).

    nice -n 10 python bench/study_loop.py                  # 3 seeds, 20,000 persons
    nice -n 10 python bench/study_loop.py --persons 10000 --seeds 7 8 9

Every policy (office rule, model without exploration, with uniform exploration,
with boundary exploration, random) runs on the same world per seed; the model
policies retrain monthly through ingest -> retrain -> promote, deciding without
the truth. Results go to bench/results/loop/ (CSVs, the plot, the rendered
tables in study.txt; a 10,000-person run in persons-10000/); the worlds and
registries to --work (not committed).
Not part of the test suite: it takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, save

from loop.run import POLICIES, LoopConfig, render_result, run_loop
from training.fit import FitConfig


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    # 20,000 persons, 3 seeds in parallel: about 17 minutes on 2 cores (10,000: 18 min under load).
    parser.add_argument("--persons", type=int, default=LoopConfig.persons, help="persons per world")
    parser.add_argument("--months", type=int, default=LoopConfig.months, help="months the loop runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], help="one world per seed")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), help="policies to compare")
    parser.add_argument("--capacity", type=int, default=None, help="inspections a month (default: office)")
    parser.add_argument("--false-tips-on", default=None, help="nationality of the false-tip variant")
    parser.add_argument("--workers", type=int, default=3, help="seeds run in parallel (niced processes)")
    parser.add_argument("--work", type=Path, default=Path("var/study-loop"), help="worlds and registries")
    parser.add_argument("--out", type=Path, default=RESULTS / "loop", help="where the results go")
    args = parser.parse_args()

    config = LoopConfig(
        persons=args.persons,
        months=args.months,
        capacity=args.capacity,
        policies=tuple(args.policies),
        seeds=tuple(args.seeds),
        false_tip_nationality=args.false_tips_on,
        # Chosen once: a faster learning rate than the default (fewer rounds), and every monthly
        # retrain reuses the first model's number of rounds (see loop.office.Office.keep_rounds).
        fit=FitConfig(learning_rate=0.1, max_rounds=300, early_stopping_rounds=20),
        workers=args.workers,
    )
    started = time.perf_counter()
    result = run_loop(config, args.work, progress=lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}"))
    elapsed = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work.resolve()
    for path in work.glob("loop_*"):
        shutil.copy2(path, args.out / path.name)
    text = render_result(result)
    header = (
        f"Closed-loop study: {args.persons:,} persons, {args.months} months, seeds {args.seeds}, "
        f"policies {', '.join(args.policies)}; {elapsed / 60:.1f} min on this machine.\n"
    )
    (args.out / "study.txt").write_text(header + text + "\n")
    print(header + text)
    save(
        "study_loop",
        {
            "persons": args.persons,
            "months": args.months,
            "seeds": args.seeds,
            "policies": args.policies,
            "wall_s": round(elapsed, 1),
        },
    )


if __name__ == "__main__":
    main()
