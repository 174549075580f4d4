"""Off-policy estimates of what a list would find, from inspections whose selection probability is known.

Only inspected cases have outcomes, and most inspections were chosen by the
office's own rule (or by the model in service), so the precision of a list on
"the labelled cases" favours whatever chose them. Two kinds of inspection are a
probability sample instead (principle 5):

- the picks of a committed Timpora list: every eligible case of the list had a
  known inclusion probability (1 for the model's picks, the stratum's exact
  probability for exploration draws, 0 nowhere else with a uniform layer);
- RANDOM inspections: uniform over the cases of their day.

A `Sample` is one such design: its eligible cases, their inclusion
probabilities, which were observed (inspected) and what was found. For any
scorer, the hits of its top k in a sample are estimated by

- Horvitz-Thompson: sum over observed top-k cases of y / p;
- self-normalised (Hajek): the weighted hit rate of the observed top-k cases;
- doubly robust: sum over the top k of m + sum over observed top-k cases of
  (y - m) / p, with m an outcome model that is never the scorer being judged
  (fitted on other, earlier cases).

Precision is hits / k; a pooled estimate is the mean over samples. Paired
differences (challenger - champion, model - office rule) use the same observed
cases for both scorers; intervals come from a bootstrap over samples when there
are at least `min_clusters`, else over persons (Poisson weights, stratified by
sample). Pure functions: no I/O, no MLflow, no truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from models.order import rank_order
from training.settings import TrainingSettings

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Estimator = Literal["ht", "sn", "dr"]
ESTIMATOR_NAMES: dict[str, str] = {
    "ht": "Horvitz-Thompson",
    "sn": "self-normalised",
    "dr": "doubly robust",
    "labelled": "labelled precision",
}


@dataclass(frozen=True)
class EvidenceSettings:
    """When evidence is enough to act on, and how intervals are drawn."""

    min_ess: float = TrainingSettings.min_ess  # ESS of a compared top k below which evidence is insufficient
    max_width: float = TrainingSettings.max_interval_width  # a wider interval (precision) is insufficient
    confidence: float = 0.95
    bootstrap: int = TrainingSettings.bootstrap_draws
    min_clusters: int = 20  # bootstrap over samples (lists) from this many, else over persons
    min_support: float = 0.95  # share of a top k that could have been inspected (p > 0)
    seed: int = TrainingSettings.seed


@dataclass(frozen=True)
class Sample:
    """One probability sample of outcomes: a committed list, or the RANDOM inspections of one horizon.

    Arrays are aligned by position over the sample's eligible cases. `inclusion` is
    the probability that the design inspected the case (already multiplied by the
    stratum's visit rate where picks were not visited); `outcome` is the prediction
    of an outcome model for the doubly robust estimator (None: zeros).
    """

    name: str
    k: int
    person_id: npt.NDArray[np.str_]
    inclusion: FloatArray
    observed: BoolArray
    found: BoolArray
    outcome: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.person_id)
        for label, values in (
            ("inclusion", self.inclusion),
            ("observed", self.observed),
            ("found", self.found),
        ):
            if len(values) != n:
                raise ValueError(f"sample {self.name}: {label} has {len(values)} values for {n} cases")
        if self.outcome is not None and len(self.outcome) != n:
            raise ValueError(f"sample {self.name}: outcome has {len(self.outcome)} values for {n} cases")
        if np.any(self.observed & ~(self.inclusion > 0)):
            raise ValueError(f"sample {self.name}: an observed case has inclusion probability 0")
        if np.any((self.inclusion < 0) | (self.inclusion > 1)):
            raise ValueError(f"sample {self.name}: inclusion probabilities must lie in [0, 1]")
        if np.any(self.found & ~self.observed):
            raise ValueError(f"sample {self.name}: a finding on a case that was not observed")
        if self.k < 1:
            raise ValueError(f"sample {self.name}: k must be at least 1")

    @property
    def size(self) -> int:
        return len(self.person_id)

    @property
    def capacity(self) -> int:
        return min(self.k, self.size)

    @property
    def weight(self) -> FloatArray:
        """1 / p for observed cases, 0 elsewhere."""
        out = np.zeros(self.size)
        np.divide(1.0, self.inclusion, out=out, where=self.observed)
        return out

    @property
    def m(self) -> FloatArray:
        return np.zeros(self.size) if self.outcome is None else np.asarray(self.outcome, dtype=np.float64)


def membership(scores: FloatArray | None, sample: Sample) -> FloatArray:
    """Each case's share of a list of k: 1 or 0 for a scorer's top k; k / n for a uniformly random list
    (its expected membership, so a random list is judged by its expected value, without draw noise)."""
    if scores is None:
        return np.full(sample.size, sample.capacity / max(sample.size, 1))
    return top_k(np.asarray(scores, dtype=np.float64), sample).astype(np.float64)


def top_k(scores: FloatArray, sample: Sample) -> BoolArray:
    """Which of the sample's cases a scorer's top k holds (ties broken by person id)."""
    if len(scores) != sample.size:
        raise ValueError(f"sample {sample.name}: {len(scores)} scores for {sample.size} cases")
    listed = np.zeros(sample.size, dtype=bool)
    listed[rank_order(scores, sample.person_id)[: sample.capacity]] = True
    return listed


@dataclass(frozen=True)
class PolicyValue:
    """Estimated precision of one scorer's top k, pooled over samples."""

    ht: float
    sn: float
    dr: float
    n_effective: float  # Kish effective sample size of the observed top-k cases
    observed: int  # observed cases in the top k (all samples)
    support: float  # share of the top k with inclusion probability > 0


def _terms(sample: Sample, listed: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per case: the HT and DR contributions to the hits of `listed`, divided by k."""
    w, y, m = sample.weight, sample.found.astype(np.float64), sample.m
    ht = listed * w * y / sample.capacity
    dr = listed * (m + w * (y - m)) / sample.capacity
    return ht, dr


def _kish(weights: FloatArray) -> float:
    total = float(weights.sum())
    squares = float((weights**2).sum())
    return total * total / squares if squares > 0 else 0.0


def policy_value(samples: Sequence[Sample], scores: Sequence[FloatArray | None] | None) -> PolicyValue:
    """Horvitz-Thompson, self-normalised and doubly robust precision of a scorer's top k.

    `scores` None (or a None entry) stands for a uniformly random list of k (its expected value).
    """
    per_sample: Sequence[FloatArray | None] = [None] * len(samples) if scores is None else scores
    _check_pairs(samples, per_sample)
    ht, sn, dr, weights, support = [], [], [], [], []
    for sample, values in zip(samples, per_sample, strict=True):
        listed = membership(values, sample)
        h, d = _terms(sample, listed)
        ht.append(h.sum())
        dr.append(d.sum())
        inside = (listed > 0) & sample.observed
        w, y = sample.weight[inside], sample.found[inside]
        share = listed[inside]
        sn.append(float((share * w * y).sum() / (share * w).sum()) if w.sum() > 0 else math.nan)
        weights.append(w)
        support.append(sample.inclusion[listed > 0] > 0)
    all_weights = np.concatenate(weights) if weights else np.empty(0)
    supported = np.concatenate(support) if support else np.empty(0, dtype=bool)
    return PolicyValue(
        ht=float(np.mean(ht)) if ht else math.nan,
        sn=float(np.nanmean(sn)) if sn and not np.all(np.isnan(sn)) else math.nan,
        dr=float(np.mean(dr)) if dr else math.nan,
        n_effective=_kish(all_weights),
        observed=len(all_weights),
        support=float(supported.mean()) if len(supported) else math.nan,
    )


def _check_pairs(samples: Sequence[Sample], *score_sets: Sequence[FloatArray | None]) -> None:
    for scores in score_sets:
        if len(scores) != len(samples):
            raise ValueError(f"{len(scores)} score arrays for {len(samples)} samples")


_CLUSTER_NOUNS = {"off-policy": "samples", "randomised": "lists"}


@dataclass(frozen=True)
class Evidence:
    """A paired comparison of two scorers' top k: estimate, interval, effective n and whether it suffices."""

    comparison: str  # e.g. "challenger - champion"
    source: str  # "off-policy" or "labelled view"
    estimator: str  # the estimator that decides (see ESTIMATOR_NAMES)
    estimate: float
    low: float
    high: float
    n_effective: float
    n_clusters: int  # samples (lists, RANDOM horizons) or as-of dates behind the estimate
    bootstrap_over: str  # "samples" or "persons"
    k: int  # capacity compared (the largest k of the samples)
    sufficient: bool
    biased: bool  # the labelled view: biased toward the policy that chose the inspections
    note: str = ""  # why insufficient, or the known bias
    values: dict[str, float] = field(default_factory=dict)  # each scorer's estimates, per estimator
    truth: float | None = None  # the simulated truth's difference, a check printed beside, never deciding

    @property
    def width(self) -> float:
        return self.high - self.low

    def describe(self) -> str:
        """One line: estimator, estimate, interval, effective n, and sufficiency."""
        if math.isnan(self.estimate):
            text = f"{self.comparison}: no estimate ({self.source}: {self.note or 'no evidence'})"
        else:
            text = (
                f"{self.comparison} = {self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}] "
                f"({ESTIMATOR_NAMES.get(self.estimator, self.estimator)}, {self.source}, "
                f"effective n {self.n_effective:.0f}, {self.n_clusters} "
                f"{_CLUSTER_NOUNS.get(self.source, 'dates')}, k {self.k}, "
                f"bootstrap over {self.bootstrap_over})"
            )
            if not self.sufficient:
                text += f"; insufficient evidence: {self.note}"
            elif self.biased:
                text += f"; {self.note}"
        if self.truth is not None and not math.isnan(self.truth):
            text += f"; the simulated truth says {self.truth:+.3f} (a check, not used to decide)"
        return text

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("estimate", "low", "high", "n_effective", "truth"):
            if isinstance(out[key], float) and not math.isfinite(out[key]):
                out[key] = None
        out["values"] = {k: (v if math.isfinite(v) else None) for k, v in self.values.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        values = dict(data)
        for key in ("estimate", "low", "high", "n_effective"):
            values[key] = math.nan if values.get(key) is None else float(values[key])
        values["values"] = {k: (math.nan if v is None else float(v)) for k, v in values["values"].items()}
        return cls(**values)


def _percentile_interval(replicates: FloatArray, confidence: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def _poisson_replicates(z: FloatArray, draws: int, rng: np.random.Generator, chunk: int = 200) -> FloatArray:
    """Bootstrap replicates of sum(z) with Poisson(1) weights per unit (vectorised, in chunks)."""
    out = np.empty(draws)
    for start in range(0, draws, chunk):
        stop = min(start + chunk, draws)
        weights = rng.poisson(1.0, size=(stop - start, len(z)))
        out[start:stop] = weights @ z
    return out


def paired_difference(
    samples: Sequence[Sample],
    scores_a: Sequence[FloatArray],
    scores_b: Sequence[FloatArray] | None,
    comparison: str,
    settings: EvidenceSettings = EvidenceSettings(),
    estimator: Estimator = "dr",
) -> Evidence:
    """Precision of a's top k minus b's, on the same samples, with a bootstrap interval.

    The deciding estimator is doubly robust by default (Horvitz-Thompson when no
    sample carries an outcome model). Both scorers' HT, SN and DR values are kept
    in `values`. Evidence is insufficient when the smaller effective n of the two
    top k is below `min_ess`, the interval is wider than `max_width`, or more
    than 1 - `min_support` of a top k could never have been inspected.
    """
    b_scores: Sequence[FloatArray | None] = [None] * len(samples) if scores_b is None else scores_b
    _check_pairs(samples, scores_a, b_scores)
    if not samples:
        return _no_evidence(comparison, "off-policy", "no inspection with a known selection probability")
    if estimator == "dr" and all(s.outcome is None for s in samples):
        estimator = "ht"
    a_value = policy_value(samples, scores_a)
    b_value = policy_value(samples, b_scores)
    per_sample, units = [], []
    for sample, a, b in zip(samples, scores_a, b_scores, strict=True):
        in_a = membership(a, sample)
        in_b = membership(b, sample)
        ht_a, dr_a = _terms(sample, in_a)
        ht_b, dr_b = _terms(sample, in_b)
        z = (dr_a - dr_b) if estimator == "dr" else (ht_a - ht_b)
        differ = in_a != in_b
        per_sample.append(float(z.sum()))
        units.append(z[differ] / len(samples))
    estimate = float(np.mean(per_sample))
    rng = np.random.default_rng(settings.seed)
    if len(samples) >= settings.min_clusters:
        over = "samples"
        d = np.asarray(per_sample)
        picks = rng.integers(0, len(d), size=(settings.bootstrap, len(d)))
        replicates = d[picks].mean(axis=1)
    else:
        over = "persons"
        replicates = _poisson_replicates(np.concatenate(units), settings.bootstrap, rng)
    low, high = _percentile_interval(replicates, settings.confidence)
    n_effective = min(a_value.n_effective, b_value.n_effective)
    support = min(a_value.support, b_value.support)
    reasons = []
    if n_effective < settings.min_ess:
        reasons.append(f"effective n {n_effective:.0f} < {settings.min_ess:g}")
    if not high - low <= settings.max_width:
        reasons.append(f"interval width {high - low:.3f} > {settings.max_width:g}")
    if not support >= settings.min_support:
        reasons.append(f"only {support:.0%} of a top k could have been inspected")
    values = {
        f"{side}/{name}": getattr(value, name)
        for side, value in (("a", a_value), ("b", b_value))
        for name in ("ht", "sn", "dr")
    }
    return Evidence(
        comparison=comparison,
        source="off-policy",
        estimator=estimator,
        estimate=estimate,
        low=low,
        high=high,
        n_effective=n_effective,
        n_clusters=len(samples),
        bootstrap_over=over,
        k=max(s.capacity for s in samples),
        sufficient=not reasons,
        biased=False,
        note="; ".join(reasons),
        values=values,
    )


def _no_evidence(comparison: str, source: str, note: str) -> Evidence:
    return Evidence(
        comparison=comparison,
        source=source,
        estimator="none",
        estimate=math.nan,
        low=math.nan,
        high=math.nan,
        n_effective=0.0,
        n_clusters=0,
        bootstrap_over="none",
        k=0,
        sufficient=False,
        biased=source != "off-policy",
        note=note,
    )


LABELLED_BIAS = (
    "labelled view: biased toward the policy that chose the inspections (mostly the office rule "
    "or the model in service)"
)


def labelled_difference(
    labels: Sequence[pd.Series],
    person_ids: Sequence[npt.NDArray[np.str_]],
    scores_a: Sequence[FloatArray],
    scores_b: Sequence[FloatArray] | None,
    k: int,
    comparison: str,
    settings: EvidenceSettings = EvidenceSettings(),
) -> Evidence:
    """Labelled precision of a's top k minus b's, pooled over as-of dates (a diagnostic, marked biased).

    `labels` per date: boolean with NA for cases not inspected. Precision pools the
    labelled cases of the top k over dates; the interval is a person bootstrap.
    `scores_b` None stands for a uniformly random list: its expected labelled
    precision is the hit rate of all labelled cases.
    """
    if not labels:
        return _no_evidence(comparison, "labelled view", "no as-of date")
    b_scores: Sequence[FloatArray | None] = [None] * len(labels) if scores_b is None else scores_b
    rows_a, rows_b, hits = [], [], []
    for label, ids, a, b in zip(labels, person_ids, scores_a, b_scores, strict=True):
        values = pd.Series(label).astype("boolean")
        labelled = ~values.isna().to_numpy()
        positive = values.fillna(False).to_numpy(dtype=bool)
        n = min(k, len(ids))
        in_a = np.zeros(len(ids), dtype=bool)
        in_a[rank_order(np.asarray(a, dtype=np.float64), ids)[:n]] = True
        if b is None:
            in_b = np.ones(len(ids), dtype=bool)  # every labelled case, equally likely on a random list
        else:
            in_b = np.zeros(len(ids), dtype=bool)
            in_b[rank_order(np.asarray(b, dtype=np.float64), ids)[:n]] = True
        keep = labelled & (in_a | in_b)
        rows_a.append(in_a[keep])
        rows_b.append(in_b[keep])
        hits.append(positive[keep])
    a_in, b_in, y = (np.concatenate(x).astype(np.float64) for x in (rows_a, rows_b, hits))
    n_a, n_b = a_in.sum(), b_in.sum()
    if n_a == 0 or n_b == 0:
        return _no_evidence(comparison, "labelled view", "no labelled case in a top k")
    precision_a, precision_b = (a_in @ y) / n_a, (b_in @ y) / n_b
    rng = np.random.default_rng(settings.seed)
    weights = rng.poisson(1.0, size=(settings.bootstrap, len(y))).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates = (weights @ (a_in * y)) / (weights @ a_in) - (weights @ (b_in * y)) / (weights @ b_in)
    low, high = _percentile_interval(replicates, settings.confidence)
    n_effective = float(min(n_a, n_b))
    reasons = []
    if n_effective < settings.min_ess:
        reasons.append(f"labelled cases in a top k {n_effective:.0f} < {settings.min_ess:g}")
    if not high - low <= settings.max_width:
        reasons.append(f"interval width {high - low:.3f} > {settings.max_width:g}")
    return Evidence(
        comparison=comparison,
        source="labelled view",
        estimator="labelled",
        estimate=float(precision_a - precision_b),
        low=low,
        high=high,
        n_effective=n_effective,
        n_clusters=len(labels),
        bootstrap_over="persons",
        k=k,
        sufficient=not reasons,
        biased=True,
        note="; ".join(reasons) if reasons else LABELLED_BIAS,
        values={"a/labelled": float(precision_a), "b/labelled": float(precision_b)},
    )


def horizon_inclusion(daily: Sequence[float]) -> float:
    """Probability of at least one draw over a horizon of independent daily draws: 1 - prod(1 - p)."""
    p = np.clip(np.asarray(daily, dtype=np.float64), 0.0, 1.0)
    return float(1.0 - np.prod(1.0 - p)) if len(p) else 0.0
