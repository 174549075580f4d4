"""The model card (Markdown): what the model is for, what it was trained on, how good and how fair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import pandas as pd

from features.catalog import FAMILY_LABELS, FEATURES, Family
from features.contract import CONTRACT_VERSION
from models.ranker import RiskModel


class CardFlag(Protocol):
    """What the card reads of a bias flag (training.bias.Flag): its view, biased or not, its sentence."""

    @property
    def view(self) -> str: ...

    @property
    def biased(self) -> bool: ...

    @property
    def text(self) -> str: ...


def _flag_lines(flags: Sequence[CardFlag]) -> str:
    """Flags from unbiased evidence first, then the selection-biased ones (reported, never blocking)."""
    if not flags:
        return "No flags."
    unbiased = [flag for flag in flags if not flag.biased]
    biased = [flag for flag in flags if flag.biased]
    lines = [f"{len(flags)} flag(s), of which {len(biased)} on the selection-biased labelled view."]
    lines += [f"- {flag.text}" for flag in unbiased]
    if biased:
        lines += ["", "Labelled view (selection-biased: reported, never blocks):"]
        lines += [f"- {flag.text}" for flag in biased]
    return "\n".join(lines)


def model_card(
    model: RiskModel,
    *,
    split_description: str,
    headline: pd.DataFrame,
    bias_flags: Sequence[CardFlag],
    proxy_auc: float,
    counts: Mapping[str, int],
    main_k: str,
    bias_bounds: tuple[float, float],
) -> str:
    """A model card in Markdown for one trained model (registered versions carry it as an artefact);
    `main_k` and `bias_bounds`: the training settings' main capacity and bias band."""
    families = "\n".join(
        f"- **{FAMILY_LABELS[family][0]}** ({FAMILY_LABELS[family][1]}): "
        + ", ".join(f"`{f.name}`" for f in FEATURES if f.family == family)
        for family in Family
    )
    metrics = headline.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    flags = _flag_lines(bias_flags)
    low, high = bias_bounds
    return f"""# Model card: Timpora inspection-priority model

## Intended use
Orders the supervision team's inspection work: which foreign nationals to visit first, with
reasons. **It never decides an outcome.** A score is an estimate that an inspection within
{model.horizon_days} days would find a violation; inspectors and supervisors decide what happens.
Not for: deciding deportations, fines, visa or permit applications, or any action about a person.

## Model
- LightGBM, objective `{model.objective}`, {model.info.get("best_iteration")} trees,
  {"weighted" if model.info.get("weighted") else "unweighted"} by inverse inspection propensity;
  scores calibrated to probabilities on the validation fold (Platt).
- Data contract version {model.contract_version} (code: {CONTRACT_VERSION}).
- Label horizon {model.horizon_days} days.
- Data window: {split_description}.
- Case counts: {", ".join(f"{k} {v:,}" for k, v in counts.items())}.

## Features ({len(model.feature_names)}, by family; allow-listed)
{families}

Protected attributes (nationality, sex, birth year and anything derived from them) are not
features; they are used only by the bias audit below.

## Metrics on the test fold, against baselines (main capacity {main_k})
```
{metrics}
```
The *labelled* view is biased toward cases past policy chose to inspect; *random_sample* (RANDOM
inspections only) is unbiased but small; *truth* exists only for simulated data.

## Bias audit (top {main_k} list)
Each group is compared with the rest of the population. A flag is raised only when the ratio is
significantly outside [{low:g}, {high:g}] (false discovery rate controlled over each view's groups); its
interval is adjusted for the selection of flags. Error rates on the labelled view are biased by
whoever chose the inspections: they are shown, marked, and never block a promotion.
Proxy check: the features predict nationality with macro AUC {proxy_auc:.3f}.

{flags}

## Limits
- Trained on outcomes of past inspections, which were not random: what was never inspected is
  under-represented even after propensity weighting.
- A high score can come from data quality problems (missing exit records, late address reports).
  Check the reasons before visiting.
- Performance drifts as behaviour and policy change; retrain and re-audit regularly.
"""
