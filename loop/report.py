"""The loop's results: totals per seed and policy, means over seeds, paired differences, CSVs, plot, text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loop.office import RULE

T_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
FINAL_METRICS = ("truth_precision_common", "truth_precision_own")
METRICS = ("episodes_per_100", "episodes", "findings", "repeats", "repeat_share", "days_to_detection")


@dataclass(frozen=True)
class LoopResult:
    months: pd.DataFrame  # a row per seed, policy and month
    totals: pd.DataFrame  # a row per seed and policy
    summary: pd.DataFrame  # a row per policy: means over seeds with intervals
    paired: pd.DataFrame  # a row per pair of policies and metric
    decisions: pd.DataFrame  # a row per retrain: decision, evidence, the truth beside it
    final_models: pd.DataFrame  # a row per seed and policy: truth precision of the model it ends up with
    final_paired: pd.DataFrame  # paired differences of that truth precision between policies


def totals(months: pd.DataFrame) -> pd.DataFrame:
    """Per seed and policy: the sums, distinct episodes per 100 inspections, repeats, days to detection."""
    sums = months.groupby(["seed", "policy"], sort=False)[
        [
            "inspections",
            "findings",
            "new_episodes",
            "repeats",
            "days_to_detection_sum",
            "tip_inspections",
            "tip_findings",
            "tip_new_episodes",
        ]
    ].sum()
    out = sums.rename(columns={"new_episodes": "episodes", "tip_new_episodes": "tip_episodes"})
    out["episodes_per_100"] = 100.0 * out["episodes"] / out["inspections"]
    out["findings_per_100"] = 100.0 * out["findings"] / out["inspections"]
    out["repeat_share"] = out["repeats"] / out["findings"].where(out["findings"] > 0)
    out["days_to_detection"] = out["days_to_detection_sum"] / out["episodes"].where(out["episodes"] > 0)
    return out.drop(columns="days_to_detection_sum").reset_index()


def summarise(per_seed: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """Per policy: the mean over seeds of each metric with a 95% t-interval (seeds as replicates)."""
    rows = []
    for policy, part in per_seed.groupby("policy", sort=False):
        row: dict[str, Any] = {"policy": policy, "seeds": len(part)}
        for metric in metrics:
            mean, low, high = _t_interval(part[metric].to_numpy(dtype=float))
            row.update({metric: mean, f"{metric}_low": low, f"{metric}_high": high})
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(per_seed: pd.DataFrame, metrics: Sequence[str] = METRICS) -> pd.DataFrame:
    """For every pair of policies: the mean over seeds of (a - b) on the same world, with a 95% t-interval."""
    policies = list(dict.fromkeys(per_seed["policy"]))
    wide = per_seed.pivot(index="seed", columns="policy")
    rows = []
    for i, a in enumerate(policies):
        for b in policies[i + 1 :]:
            for metric in metrics:
                diff = (wide[(metric, a)] - wide[(metric, b)]).dropna().to_numpy(dtype=float)
                mean, low, high = _t_interval(diff)
                rows.append(
                    {
                        "a": a,
                        "b": b,
                        "metric": metric,
                        "difference": mean,
                        "low": low,
                        "high": high,
                        "seeds": len(diff),
                        "per_seed": " ".join(f"{v:+.2f}" for v in diff),
                    }
                )
    columns = ["a", "b", "metric", "difference", "low", "high", "seeds", "per_seed"]
    return pd.DataFrame(rows, columns=columns)


def _t_interval(values: np.ndarray) -> tuple[float, float, float]:
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = T_95.get(len(values) - 1, 1.96) * float(values.std(ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def write_results(result: LoopResult, out: Path) -> None:
    """The loop's CSVs and its plot into `out`."""
    result.months.to_csv(out / "loop_months.csv", index=False)
    result.totals.to_csv(out / "loop_totals.csv", index=False)
    result.summary.to_csv(out / "loop_summary.csv", index=False)
    result.paired.to_csv(out / "loop_paired.csv", index=False)
    result.decisions.to_csv(out / "loop_decisions.csv", index=False)
    result.final_models.to_csv(out / "loop_final_models.csv", index=False)
    result.final_paired.to_csv(out / "loop_final_paired.csv", index=False)
    plot_loop(result.summary, result.paired, out / "loop_episodes.png")


def plot_loop(summary: pd.DataFrame, paired: pd.DataFrame, path: Path) -> Path:
    """Distinct episodes per 100 inspections per policy, and differences with the rule, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    y = np.arange(len(summary))
    mean = summary["episodes_per_100"].to_numpy(dtype=float)
    low = np.nan_to_num(mean - summary["episodes_per_100_low"].to_numpy(dtype=float))
    high = np.nan_to_num(summary["episodes_per_100_high"].to_numpy(dtype=float) - mean)
    left.errorbar(mean, y, xerr=[low, high], fmt="o", capsize=4)
    left.set_yticks(y, summary["policy"])
    left.set_xlabel("distinct violation episodes found per 100 inspections")
    left.set_xlim(left=0)
    left.grid(alpha=0.3)
    left.set_title("Closed loop: mean over seeds, 95% interval")
    rule = paired[(paired["metric"] == "episodes_per_100") & ((paired["a"] == RULE) | (paired["b"] == RULE))]
    if len(rule):
        sign = np.where(rule["a"] == RULE, -1.0, 1.0)  # other - rule
        other = np.where(rule["a"] == RULE, rule["b"], rule["a"])
        d = sign * rule["difference"].to_numpy(dtype=float)
        lo = sign * rule["low"].to_numpy(dtype=float)
        hi = sign * rule["high"].to_numpy(dtype=float)
        yy = np.arange(len(rule))
        right.errorbar(
            d,
            yy,
            xerr=[np.nan_to_num(d - np.minimum(lo, hi)), np.nan_to_num(np.maximum(lo, hi) - d)],
            fmt="o",
            capsize=4,
        )
        right.axvline(0, color="grey", lw=1)
        right.set_yticks(yy, [f"{o} - rule" for o in other])
        right.set_xlabel("paired difference, episodes per 100 (same worlds)")
        right.grid(alpha=0.3)
        right.set_title("Against the office rule")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def render_result(result: LoopResult) -> str:
    """The loop's tables as text: per policy with intervals, paired differences, decisions, final models."""
    fmt = lambda v: f"{v:.2f}"  # noqa: E731
    summary = result.summary
    lines = ["Per policy (mean over seeds, 95% t-interval over seeds):"]
    for _, row in summary.iterrows():
        lines.append(
            f"  {row['policy']:<15} episodes/100 {row['episodes_per_100']:.1f} "
            f"[{row['episodes_per_100_low']:.1f}, {row['episodes_per_100_high']:.1f}]  "
            f"episodes {row['episodes']:.1f}  findings {row['findings']:.1f}  repeats {row['repeats']:.1f} "
            f"(share {row['repeat_share']:.2f})  days to detection {row['days_to_detection']:.0f}"
        )
    lines.append("Totals per seed:")
    lines.append(result.totals.to_string(index=False, float_format=fmt))
    main = result.paired[result.paired["metric"].isin(["episodes_per_100", "findings", "days_to_detection"])]
    lines.append("Paired differences a - b (same worlds), 95% t-interval over seeds:")
    lines.append(main.to_string(index=False, float_format=fmt))
    if len(result.decisions):
        columns = [
            c
            for c in (
                "seed",
                "policy",
                "decided_as_of",
                "challenger",
                "registered",
                "promoted",
                "reasons",
                "truth_challenger",
                "truth_champion",
            )
            if c in result.decisions
        ]
        evidence = [str(c) for c in result.decisions.columns if str(c).startswith("evidence")]
        lines.append("Monthly decisions (from the data) and the truth beside them (a check, never deciding):")
        lines.append(result.decisions[columns + evidence].to_string(index=False, float_format=fmt))
    lines.append("Models the policies end up with: truth precision at the operational capacity, final date:")
    lines.append(result.final_models.to_string(index=False, float_format=fmt))
    lines.append("Their paired differences a - b (same worlds), 95% t-interval over seeds:")
    lines.append(result.final_paired.to_string(index=False, float_format=fmt))
    return "\n".join(lines)
