"""Benchmark: rank every case of a data set on one date with a model trained on another.

    python bench/bench_rank.py --data var/bench/1000000 --model-data var/bench/100000

The model: `train_model` with default options on --model-data, saved with
`RiskModel.save` to --model (default var/bench/model-<persons of model-data>);
when that directory has no model yet it is trained first in a child process, so
this process's peak memory is ranking's alone. Phases on --data, as of its last date:
- load_validate, timeline (`build_timeline`, shared by every call below);
- score_cases: features + scores + order for every case;
- reasons_top50: `with_reasons` for the first 50 rows of that table;
- ranked_list_top50: `ranked_list(..., top=50)` end to end (it scores every case again).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import before_measurement, peak_rss_mib, save, timed

from features.loading import load_valid_tables
from features.timeline import build_timeline
from models.ranker import META_FILE, RiskModel
from models.scoring import ranked_list, score_cases, with_reasons
from training.train import TrainOptions, train_model

VAR = Path(__file__).parent.parent / "var" / "bench"


def train_and_save(data: Path, model_dir: Path) -> None:
    tables = load_valid_tables(data)
    result = train_model(tables, TrainOptions())
    result.model.info["trained_on"] = str(data)
    result.model.save(model_dir)
    print(f"model trained on {data} ({result.model.booster.num_trees()} trees) saved to {model_dir}")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", type=Path, required=True, help="data set to rank")
    parser.add_argument("--model-data", type=Path, default=VAR / "100000", help="data set to train on")
    parser.add_argument("--model", type=Path, default=None, help="model directory")
    parser.add_argument("--top", type=int, default=50, help="list length (reasons only for these)")
    parser.add_argument("--train-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model_dir = args.model or VAR / f"model-{args.model_data.name}"
    if args.train_only:
        train_and_save(args.model_data, model_dir)
        return
    if not (model_dir / META_FILE).exists():
        cmd = [sys.executable, __file__, "--data", str(args.data), "--model-data", str(args.model_data)]
        subprocess.run([*cmd, "--model", str(model_dir), "--train-only"], check=True)
    model = RiskModel.load(model_dir)

    record: dict[str, object] = {
        "data": str(args.data),
        "model": str(model_dir),
        "trees": model.booster.num_trees(),
        "top": args.top,
        **before_measurement(),
    }
    times: dict[str, float] = {}
    with timed(times, "load_validate"):
        tables = load_valid_tables(args.data)
    last = tables.last_date()
    assert last is not None
    as_of = last.date()
    record["persons"] = len(tables.persons)
    record["as_of"] = str(as_of)
    with timed(times, "timeline"):
        timeline = build_timeline(tables)
    with timed(times, "score_cases"):
        scored = score_cases(model, "bench", timeline, as_of)
    with timed(times, f"reasons_top{args.top}"):
        listed = with_reasons(model, scored, scored.table.head(args.top))
    with timed(times, f"ranked_list_top{args.top}"):
        ranked = ranked_list(model, "bench", timeline, as_of, top=args.top)
    assert list(ranked["person_id"]) == list(listed.index), "ranked_list and score_cases disagree"
    record.update(times)
    record["cases"] = len(scored.table)
    record["cases_per_s_score"] = round(len(scored.table) / max(times["score_cases_s"], 1e-9))
    record["peak_rss_mib"] = round(peak_rss_mib(), 1)
    save("rank", record)


if __name__ == "__main__":
    main()
