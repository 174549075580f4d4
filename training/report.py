"""The human-readable evaluation report (Markdown with PNG plots) and the files of a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from training.plots import plot_calibration, plot_family_importance, plot_precision_recall, plot_shap_summary
from training.train import TrainingResult

HEADLINE = ("precision@50", "precision@{main}", "recall@{main}", "ndcg@{main}", "pr_auc", "roc_auc", "brier")


def _markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else format(value, floatfmt)
        return str(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def headline_table(evaluation: pd.DataFrame, main_k: str) -> pd.DataFrame:
    columns = [c.format(main=main_k) for c in HEADLINE]
    present = [c for c in columns if c in evaluation.columns]
    extra = [
        c
        for c in (f"labelled@{main_k}", f"precision@{main_k}_low", f"precision@{main_k}_high")
        if c in evaluation
    ]
    return evaluation[["view", "scorer", *present, *extra]]


def write_run_files(
    result: TrainingResult,
    bias: pd.DataFrame,
    bias_flags: list[str],
    proxy: float,
    main_k: str,
    out_dir: Path,
    *,
    bias_bounds: tuple[float, float],
) -> list[Path]:
    """Write the report, its plots and the tables of a run into out_dir (`bias_bounds`: the band a
    ratio may lie in without being a disparity, as the audit used it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = result.test.labels["label"]
    plots = [
        plot_precision_recall(
            {
                k: v
                for k, v in result.test_scores.items()
                if k in ("model", "office_rule", "logistic", "random")
            },
            labels,
            out_dir / "precision_recall.png",
        ),
        plot_calibration(result.test_scores["model"], labels, out_dir / "calibration.png"),
        plot_shap_summary(
            result.contributions,
            result.test.features.loc[result.contributions.index],
            out_dir / "shap_summary.png",
        ),
        plot_family_importance(result.importance, out_dir / "importance_by_family.png"),
    ]
    result.evaluation.to_csv(out_dir / "evaluation.csv", index=False)
    bias.to_csv(out_dir / "bias_audit.csv", index=False)
    result.importance.to_csv(out_dir / "shap_importance.csv", index=False)
    model = result.model
    low, high = bias_bounds
    lines = [
        "# Timpora evaluation report",
        "",
        f"Split: {result.split.describe()}.",
        f"Chosen model: objective `{model.objective}`, unweighted (logged propensities serve evaluation "
        f"only), {model.info.get('best_iteration')} trees.",
        "",
        f"## Candidates (labelled precision at the operational capacity k = {result.capacity}, "
        "mean over the validation dates)",
        "",
        _markdown_table(
            pd.DataFrame(
                [
                    {
                        "objective": c.objective,
                        f"precision@{result.capacity}": c.validation_score,
                    }
                    for c in result.candidates
                ]
            )
        ),
        "",
        "## Test fold: model and baselines",
        "",
        "Views: *labelled* = every inspected test case (biased toward past targeting); "
        "*random_sample* = RANDOM inspections only (unbiased, small: see the interval); "
        "*labelled_without_tips* = the same without TIP-triggered inspections (a list made on the "
        "as-of date cannot know of a tip that comes later); "
        "*truth* = every case against the simulator's hidden truth (simulated data only).",
        "",
        _markdown_table(headline_table(result.evaluation, main_k)),
        "",
        "Counts: " + ", ".join(f"{k} {v:,}" for k, v in result.counts.items()) + ".",
        "",
        "![precision-recall](precision_recall.png) ![calibration](calibration.png)",
        "",
        "## What drives the ranking (mean |SHAP|, test sample)",
        "",
        _markdown_table(result.importance.head(15)),
        "",
        "![shap summary](shap_summary.png) ![by family](importance_by_family.png)",
        "",
        f"## Bias audit (top {main_k} list)",
        "",
        f"Proxy check: features predict nationality with macro AUC {proxy:.3f} (0.5 = no information).",
        "",
        f"Flags (disparity outside [{low:g}, {high:g}]): "
        + ("; ".join(bias_flags) if bias_flags else "none."),
        "",
        "Tested keys (every row, untested ones included, is in `bias_audit.csv`):",
        "",
        _markdown_table(bias[bias["tested"]] if "tested" in bias.columns else bias),
        "",
    ]
    report = out_dir / "evaluation_report.md"
    report.write_text("\n".join(lines))
    return [report, *plots]
