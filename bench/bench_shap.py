"""Benchmark: reasons throughput, native TreeSHAP vs the shap package, and whether they agree.

    python bench/bench_shap.py --rows 2000

Cases: a seeded sample of --rows cases as of the last date of --data (fewer if it
has fewer). The model: the one bench_rank.py trains and saves (default
var/bench/model-100000; train it with bench_rank.py first). Each method runs
--repeats times; the record keeps the median and the best.
- native: `booster.predict(matrix, pred_contrib=True)` (what `RiskModel.contributions` calls);
- shap: `shap.TreeExplainer(booster).shap_values(matrix)` (explainer built once, timed apart).
Agreement: max |native - shap| over the feature columns, and |bias - expected_value|.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import before_measurement, peak_rss_mib, save

from features.loading import load_valid_tables
from features.pipeline import build_features
from models.ranker import RiskModel, feature_matrix

VAR = Path(__file__).parent.parent / "var" / "bench"


def clock(function, repeats: int) -> tuple[list[float], object]:  # type: ignore[no-untyped-def]
    seconds, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = function()
        seconds.append(time.perf_counter() - start)
    return seconds, out


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--data", type=Path, default=VAR / "100000", help="data set to take cases from")
    parser.add_argument("--model", type=Path, default=VAR / "model-100000", help="RiskModel directory")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import shap

    model = RiskModel.load(args.model)
    tables = load_valid_tables(args.data)
    last = tables.last_date()
    assert last is not None
    features = build_features(tables, [last])
    sample = features.sample(min(args.rows, len(features)), random_state=7)
    matrix = feature_matrix(sample, model.feature_names)
    booster = model.booster
    dump = booster.dump_model()
    leaves = [tree["num_leaves"] for tree in dump["tree_info"]]

    record: dict[str, object] = {
        "model": str(args.model),
        "trees": booster.num_trees(),
        "mean_leaves": round(float(np.mean(leaves)), 1),
        "features": len(model.feature_names),
        "rows": len(matrix),
        "repeats": args.repeats,
        "shap_version": shap.__version__,
        **before_measurement(),
    }
    native_s, native = clock(lambda: booster.predict(matrix, pred_contrib=True), args.repeats)
    start = time.perf_counter()
    explainer = shap.TreeExplainer(booster)
    record["shap_explainer_build_s"] = round(time.perf_counter() - start, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap warns that LightGBM binary output is in log-odds
        shap_s, values = clock(lambda: explainer.shap_values(matrix), args.repeats)
    native = np.asarray(native)
    values = np.asarray(values[1] if isinstance(values, list) else values)
    expected = np.ravel(explainer.expected_value)[-1]
    for name, seconds in (("native", native_s), ("shap", shap_s)):
        record[f"{name}_s_median"] = round(statistics.median(seconds), 4)
        record[f"{name}_rows_per_s"] = round(len(matrix) / statistics.median(seconds))
        record[f"{name}_rows_per_s_best"] = round(len(matrix) / min(seconds))
    record["shap_shape"] = list(values.shape)
    record["max_abs_diff"] = float(np.max(np.abs(native[:, :-1] - values)))
    record["bias_abs_diff"] = float(np.max(np.abs(native[:, -1] - expected)))
    margin = booster.predict(matrix, raw_score=True)
    record["native_sum_vs_margin_max_abs"] = float(np.max(np.abs(native.sum(axis=1) - margin)))
    record["peak_rss_mib"] = round(peak_rss_mib(), 1)
    save("shap", record)


if __name__ == "__main__":
    main()
