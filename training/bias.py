"""Bias audit of an inspection list: keyed fairness flags, paired challenger-champion blocks, proxies.

Each group of a protected attribute is compared with the rest of the population (the
group's complement, so the two samples are independent; the attribute's largest group on
request) on the Aequitas metrics. A disparity becomes a `Flag` only when its ratio is
significantly outside the four-fifths band [0.8, 1.25]: a one-sided score test of the ratio
against the nearer bound (Farrington-Manning, on weighted sums for weighted evidence; the
Katz log-ratio Wald test it replaces rejects up to twice too often at the small p-values
Benjamini-Hochberg needs), Benjamini-Hochberg over one view's keys after a support filter,
and bounds from inverting the same test, adjusted for false coverage (Benjamini-Yekutieli).
Flags are records keyed by (view, attribute, group, metric): "new" and "worse" are decided
by key and value, never by text. `fairness_blocks` compares a challenger's list with the
champion's on the same cases (a person-level bootstrap) and says where the challenger is
significantly worse.

Error rates on the labelled view are selection-biased (whoever chose the inspections chose
the denominators): they are reported and marked `biased`, and never block. Unbiased evidence
is given as a per-case `label` and `weight` (1 / inclusion probability). Inputs are aligned
by position (pandas inputs must share an index).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from models.order import Values
from training.metrics import label_masks
from training.settings import TrainingSettings

AGE_BANDS = ("<25", "25-34", "35-44", "45-54", "55-64", "65+")
FOUR_FIFTHS = TrainingSettings.bias_bounds  # (0.8, 1.25), declared in training.settings
MISSING_GROUP = "(missing)"  # not "<NA>", which read_csv takes for a missing value
REST = "rest"  # the reference named by a flag compared with its group's complement
LARGEST = "largest"

SELECTION_METRICS = ("pprev",)  # need no labels: reported once per list, in the "list" view
ERROR_METRICS = ("precision", "fdr", "fpr", "fnr", "recall")
AUDIT_METRICS = SELECTION_METRICS + ERROR_METRICS
# precision and recall are 1 - fdr and 1 - fnr: testing them as well would count one disparity twice.
TESTED_METRICS = ("pprev", "fdr", "fpr", "fnr")
BLOCKING_METRICS = ("fdr", "fpr")
# +1: a higher value is worse for the group (more inspections, more wrong visits); -1: lower is worse.
HARM_DIRECTION = {"pprev": 1, "fdr": 1, "fpr": 1, "fnr": 1, "precision": -1, "recall": -1}
VIOLATION_RATE = "violation_rate"  # the share of violators among observed cases: a base rate, not tested

METRIC_NAMES = {
    "pprev": "selection rate (pprev)",
    "precision": "precision",
    "fdr": "false discovery rate",
    "fpr": "false positive rate",
    "fnr": "false negative rate",
    "recall": "recall",
    VIOLATION_RATE: "violation rate",
}
# (numerator, denominator) in words, for the sentence of a flag.
COUNT_NOUNS = {
    "pprev": ("listed", "cases"),
    "precision": ("true positives", "listed inspected cases"),
    "fdr": ("false positives", "listed inspected cases"),
    "fpr": ("false positives", "inspected non-violators"),
    "fnr": ("missed violators", "inspected violators"),
    "recall": ("listed violators", "inspected violators"),
    VIOLATION_RATE: ("violators", "inspected cases"),
}


@dataclass(frozen=True)
class FairnessSettings:
    """How disparities are tested; the defaults are the issue's conventions.

    bounds: the band a ratio may lie in without being a disparity (four-fifths rule).
    q: the false discovery rate of the flags of one view (Benjamini-Hochberg), and of blocks.
    min_group_support: cases in the metric's denominator, in the group and in the reference.
    min_numerator_support: cases in the group's numerator (listed cases for pprev, false
        positives for fdr and fpr, missed violators for fnr), so a ratio rests on events.
    reference: "rest" (the group's complement) or "largest" (the attribute's largest group).
    tested_metrics: the metrics that can raise a flag; the others are reported only.
    """

    bounds: tuple[float, float] = FOUR_FIFTHS
    q: float = 0.05
    min_group_support: int = 30
    min_numerator_support: int = 10
    reference: str = REST
    tested_metrics: tuple[str, ...] = TESTED_METRICS

    def __post_init__(self) -> None:
        low, high = self.bounds
        if not 0 < low <= 1 <= high:
            raise ValueError(f"bounds must satisfy 0 < low <= 1 <= high, got {self.bounds}")
        if not 0 < self.q < 1:
            raise ValueError(f"q must lie in (0, 1), got {self.q}")
        if self.min_group_support < 1 or self.min_numerator_support < 1:
            raise ValueError("minimum supports must be at least 1")
        if self.reference not in (REST, LARGEST):
            raise ValueError(f"reference must be {REST!r} or {LARGEST!r}, got {self.reference!r}")
        if unknown := set(self.tested_metrics) - set(AUDIT_METRICS):
            raise ValueError(f"unknown tested metrics: {sorted(unknown)}")


class FlagKey(NamedTuple):
    view: str
    attribute: str
    group: str
    metric: str


def _p_text(p: float) -> str:
    return "p < 1e-15" if p < 1e-15 else f"p = {p:.2g}"


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class Flag:
    """A disparity significantly outside the band, for one (view, attribute, group, metric).

    ratio is the group's metric over the reference's (a 0.5 continuity correction applies
    when a count is 0); low and high bound it, each at one-sided confidence `level`
    (1 - R*q/m for R flags among the m keys tested in the view: the false-coverage
    adjustment), so a flag's interval lies outside the band. p_value is that of H0 "ratio
    within the band" (one-sided, against the nearer bound). Counts are cases, unweighted:
    group_count and reference_count in the metric's denominator, numerator_count in the
    group's numerator. value and reference_value are the two rates (weighted where the
    evidence is). biased marks the labelled view's error rates: reported, never blocking.
    base_rate_ratio (pprev only) is the group's estimated violation rate over the
    reference's, from unbiased evidence, so a reader can tell a disparity from a
    difference in base rates; None when there is none.
    """

    view: str
    attribute: str
    group: str
    metric: str
    ratio: float
    low: float
    high: float
    level: float
    p_value: float
    value: float
    reference_value: float
    group_count: int
    reference_count: int
    numerator_count: int
    reference: str = REST
    biased: bool = False
    base_rate_ratio: float | None = None

    @property
    def key(self) -> FlagKey:
        return FlagKey(self.view, self.attribute, self.group, self.metric)

    @property
    def above(self) -> bool:
        """True when the group's rate is above the reference's (the ratio exceeds the band)."""
        return self.ratio > 1

    @property
    def text(self) -> str:
        """The sentence a person reads, e.g. "unbiased: nationality=RUS: false discovery rate
        2.08x the rest [1.61, 2.68 at 99.4%] (0.41 vs 0.2; 103 false positives of 249 listed
        inspected cases; p = 7e-09)"."""
        reference = "the rest" if self.reference == REST else f"the reference {self.reference}"
        numerator, denominator = COUNT_NOUNS.get(self.metric, ("cases", "cases"))
        text = (
            f"{self.view}: {self.attribute}={self.group}: {METRIC_NAMES.get(self.metric, self.metric)} "
            f"{self.ratio:.2f}x {reference} [{self.low:.2f}, {self.high:.2f} at {self.level:.1%}] "
            f"({self.value:.2g} vs {self.reference_value:.2g}; {self.numerator_count} {numerator} "
            f"of {self.group_count} {denominator}; {_p_text(self.p_value)})"
        )
        if self.metric in SELECTION_METRICS:
            if self.base_rate_ratio is None:
                text += "; violation rate unknown (no unbiased evidence)"
            else:
                text += f"; estimated violation rate {self.base_rate_ratio:.2f}x {reference}"
        if self.biased:
            text += "; selection-biased (labelled view): reported, never blocks"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (non-finite numbers become None), e.g. for an MLflow tag."""
        return _record_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Flag:
        """The flag `to_dict` wrote (unknown keys are ignored, so older records still load)."""
        return cls(**_record_fields(cls, data))


@dataclass(frozen=True)
class Block:
    """A key on which the challenger's disparity is significantly worse than the champion's.

    low and high bound log(challenger ratio / champion ratio), each at one-sided confidence
    `level` (false-coverage adjusted over the keys compared); the challenger is worse when
    the bound on the harmful side passes log(1 + tolerance) (for metrics where lower is
    worse, such as precision, the upper bound falls below -log(1 + tolerance)).
    """

    view: str
    attribute: str
    group: str
    metric: str
    challenger_ratio: float
    champion_ratio: float
    low: float
    high: float
    level: float
    p_value: float
    tolerance: float
    group_count: int
    numerator_count: int
    reference: str = REST

    @property
    def key(self) -> FlagKey:
        return FlagKey(self.view, self.attribute, self.group, self.metric)

    @property
    def text(self) -> str:
        reference = "the rest" if self.reference == REST else f"the reference {self.reference}"
        return (
            f"{self.view}: {self.attribute}={self.group}: {METRIC_NAMES.get(self.metric, self.metric)} "
            f"{self.challenger_ratio:.2f}x {reference} for the challenger against "
            f"{self.champion_ratio:.2f}x for the champion: the challenger's disparity is "
            f"x{math.exp(self.low):.2f} to x{math.exp(self.high):.2f} the champion's "
            f"(one-sided {self.level:.1%} bounds; more than x{1 + self.tolerance:.2f} is worse; "
            f"{_p_text(self.p_value)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return _record_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Block:
        return cls(**_record_fields(cls, data))


def _record_to_dict(record: Flag | Block) -> dict[str, Any]:
    """A flag's or block's fields, JSON-safe: non-finite numbers become None."""
    return {
        name: _finite_or_none(value) if isinstance(value, float) else value
        for name, value in asdict(record).items()
    }


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "float": _float,
    "int": int,
    "bool": bool,
    "float | None": lambda value: None if value is None else float(value),
}


def _record_fields(cls: type[Flag] | type[Block], data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `cls` found in `data`, typed by their annotations (unknown keys ignored)."""
    return {
        spec.name: _CONVERTERS.get(str(spec.type), str)(data[spec.name])
        for spec in fields(cls)
        if spec.name in data
    }


def age_band(birth_year: pd.Series, as_of: pd.Series | pd.Index | dt.date | str) -> pd.Series:
    """Ordered age bands from birth year; age is as_of's year minus birth year (birthdays are unknown)."""
    if isinstance(as_of, pd.Series | pd.Index):
        if len(as_of) != len(birth_year):
            raise ValueError(f"as_of ({len(as_of)}) and birth_year ({len(birth_year)}) differ in length")
        years = np.asarray(pd.DatetimeIndex(as_of).year, dtype=np.float64)
    else:
        years = np.full(len(birth_year), float(pd.Timestamp(as_of).year))
    age = years - birth_year.to_numpy(dtype=np.float64, na_value=np.nan)
    bands = pd.cut(age, bins=[-np.inf, 25, 35, 45, 55, 65, np.inf], right=False, labels=list(AGE_BANDS))
    return pd.Series(bands, index=birth_year.index, name="age_band")


def _check_aligned(index: pd.Index, **inputs: Values | pd.DataFrame) -> None:
    for name, values in inputs.items():
        if len(values) != len(index):
            raise ValueError(f"{name} ({len(values)}) and groups ({len(index)}) differ in length")
        if isinstance(values, pd.Series | pd.DataFrame) and not values.index.equals(index):
            raise ValueError(f"{name} and groups have different indexes: align them first")


def _bools(values: Values) -> np.ndarray:
    return (values if isinstance(values, pd.Series) else pd.Series(values)).to_numpy(dtype=bool)


def _weights(values: Values) -> np.ndarray:
    return (values if isinstance(values, pd.Series) else pd.Series(values)).to_numpy(
        dtype=np.float64, na_value=np.nan
    )


def _unbiased_masks(unbiased: pd.DataFrame, index: pd.Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(observed, positive, weight) of the unbiased evidence; unobserved cases weigh 0."""
    if missing := {"label", "weight"} - set(unbiased.columns):
        raise ValueError(f"unbiased evidence lacks columns {sorted(missing)}")
    _check_aligned(index, unbiased=unbiased)
    observed, positive = label_masks(unbiased["label"])
    weight = _weights(unbiased["weight"])
    if (weight[observed & np.isfinite(weight)] < 0).any():
        raise ValueError("unbiased weights must not be negative")
    observed &= np.isfinite(weight) & (weight > 0)
    return observed, positive & observed, np.where(observed, weight, 0.0)


# -- statistics ---------------------------------------------------------------------------------

_ERFC = np.frompyfunc(math.erfc, 1, 1)
_NORMAL = NormalDist()


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * _ERFC(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0)), dtype=np.float64)


def benjamini_hochberg(p_values: Values, q: float) -> np.ndarray:
    """Which hypotheses Benjamini-Hochberg rejects at false discovery rate q (NaN is never rejected)."""
    p = _weights(p_values)
    rejected = np.zeros(len(p), dtype=bool)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return rejected
    order = valid[np.argsort(p[valid], kind="stable")]
    below = np.flatnonzero(p[order] <= q * np.arange(1, m + 1) / m)
    if len(below):
        rejected[order[: below[-1] + 1]] = True
    return rejected


def fcr_level(selected: int, tested: int, q: float) -> float:
    """One-sided confidence of each bound: 1 - R*q/m for R selected of m tested (1 - q if none)."""
    return 1 - q * selected / tested if selected and tested else 1 - q


_LOG_LIMIT = 12.0  # ratios beyond e^12 are "unbounded"


class RateSums(NamedTuple):
    """Weighted sums behind a ratio of two rates: numerators, denominators and the sums of squared
    weights of the denominators' cases, for the group and its reference (unweighted: counts)."""

    numerator: np.ndarray
    denominator: np.ndarray
    squared_weights: np.ndarray
    reference_numerator: np.ndarray
    reference_denominator: np.ndarray
    reference_squared_weights: np.ndarray

    @classmethod
    def of_counts(cls, a: Values, n1: Values, c: Values, n2: Values) -> RateSums:
        """Unweighted: a of n1 cases in the group, c of n2 in the reference."""
        arrays = [np.asarray(x, dtype=np.float64) for x in (a, n1, c, n2)]
        return cls(arrays[0], arrays[1], arrays[1], arrays[2], arrays[3], arrays[3])


def _restricted_rates(ratio: np.ndarray, s: RateSums) -> tuple[np.ndarray, np.ndarray]:
    """Group and reference rates of greatest (pseudo-)likelihood under "group rate = ratio x
    reference rate" (Farrington-Manning / Miettinen-Nurminen): the smaller root of a quadratic."""
    a, n1, c, n2 = s.numerator, s.denominator, s.reference_numerator, s.reference_denominator
    b = ratio * n1 + a + n2 + ratio * c
    discriminant = np.maximum(b * b - 4 * ratio * (n1 + n2) * (a + c), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        reference = np.minimum(2 * (a + c) / (b + np.sqrt(discriminant)), np.minimum(1.0, 1 / ratio))
    return ratio * reference, reference


def _score_z(log_ratio: np.ndarray | float, s: RateSums) -> np.ndarray:
    """Score statistic of H0 "ratio = exp(log_ratio)": the difference group - ratio x reference
    over its standard error under H0 (decreasing in log_ratio; positive where the data say more)."""
    ratio = np.exp(np.asarray(log_ratio, dtype=np.float64))
    group, reference = _restricted_rates(ratio, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (
            s.squared_weights * group * (1 - group) / s.denominator**2
            + ratio**2
            * s.reference_squared_weights
            * reference
            * (1 - reference)
            / s.reference_denominator**2
        )
        difference = s.numerator / s.denominator - ratio * s.reference_numerator / s.reference_denominator
        return np.asarray(difference / np.sqrt(variance), dtype=np.float64)


def band_p_value(s: RateSums, bounds: tuple[float, float] = FOUR_FIFTHS) -> np.ndarray:
    """p-value of H0 "ratio within bounds": the score test against the nearer bound.

    The test rejects when the score statistic at the upper bound exceeds c, or the one at the
    lower bound falls below -c. Its size is largest at a bound: the one-sided tail beyond the
    nearer bound plus the (negligible but counted) tail beyond the farther one, approximated
    with the Katz standard error. 1 inside the band, NaN when a rate is undefined.
    """
    low, high = math.log(bounds[0]), math.log(bounds[1])
    beyond = np.maximum(_score_z(high, s), -_score_z(low, s))  # > 0 outside the band
    with np.errstate(divide="ignore", invalid="ignore"):
        rate, reference = s.numerator / s.denominator, s.reference_numerator / s.reference_denominator
        katz = np.sqrt(
            s.squared_weights * (1 - rate) / (s.denominator**2 * rate)
            + s.reference_squared_weights * (1 - reference) / (s.reference_denominator**2 * reference)
        )
        far = _norm_cdf(-beyond - np.where(katz > 0, (high - low) / katz, np.inf))
    p = 1 - _norm_cdf(np.nan_to_num(beyond, nan=0.0)) + np.where(np.isnan(far), 0.0, far)
    defined = (s.denominator > 0) & (s.reference_denominator > 0) & ~np.isnan(beyond)
    return np.where(defined, np.minimum(p, 1.0), np.nan)


def ratio_interval(s: RateSums, level: Values | float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the ratio, each at one-sided confidence `level`, by inverting the score test
    (bisection on the log ratio, vectorised): 0 and inf where the data cannot bound it."""
    z = np.vectorize(_NORMAL.inv_cdf, otypes=[np.float64])(np.asarray(level, dtype=np.float64))
    shape = np.broadcast(s.numerator, z).shape
    bounds = []
    for target in (z, -z):
        below, above = np.full(shape, -_LOG_LIMIT), np.full(shape, _LOG_LIMIT)
        for _ in range(48):
            middle = (below + above) / 2
            higher = _score_z(middle, s) > target  # the bound lies above `middle`
            below, above = np.where(higher, middle, below), np.where(higher, above, middle)
        bounds.append((below + above) / 2)
    low = np.where(bounds[0] <= -_LOG_LIMIT + 1e-6, 0.0, np.exp(bounds[0]))
    high = np.where(bounds[1] >= _LOG_LIMIT - 1e-6, math.inf, np.exp(bounds[1]))
    # No event on either side, or nothing but events: no ratio to bound.
    defined = (s.denominator > 0) & (s.reference_denominator > 0) & np.isfinite(_score_z(0.0, s))
    return np.where(defined, low, np.nan), np.where(defined, high, np.nan)


# -- one view's audit ---------------------------------------------------------------------------


def _group_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer group of each case and the group names (category order, else sorted; missing last)."""
    column = column.reset_index(drop=True)
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy(dtype=np.int64)
        names = [str(c) for c in column.cat.categories]
    else:
        missing = column.isna().to_numpy()
        codes = np.full(len(column), -1, dtype=np.int64)
        found, uniques = pd.factorize(column[~missing].astype(str), sort=True)
        codes[~missing] = found
        names = [str(u) for u in uniques]
    if (codes < 0).any():
        codes = np.where(codes < 0, len(names), codes)
        names.append(MISSING_GROUP)
    present = np.bincount(codes, minlength=len(names)) > 0  # drop categories no case has
    remap = np.cumsum(present) - 1
    return remap[codes], [name for name, keep in zip(names, present, strict=True) if keep]


def _indicators(
    metric: str, listed: np.ndarray, observed: np.ndarray, positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, denominator) cases of a metric; error rates use observed cases only."""
    negative = observed & ~positive
    if metric == "pprev":
        return listed, np.ones_like(listed)
    return {
        "precision": (listed & positive, listed & observed),
        "fdr": (listed & negative, listed & observed),
        "fpr": (listed & negative, negative),
        "fnr": (~listed & positive, positive),
        "recall": (listed & positive, positive),
        VIOLATION_RATE: (positive, observed),
    }[metric]


def _reference_codes(
    attribute: str, names: list[str], sizes: np.ndarray, reference: str | Mapping[str, str]
) -> int | None:
    """The group every other is compared with, or None for each group's complement."""
    if isinstance(reference, Mapping):
        if attribute not in reference:
            return None
        if reference[attribute] not in names:
            raise ValueError(f"reference group {reference[attribute]!r} does not occur in {attribute!r}")
        return names.index(reference[attribute])
    if reference == REST:
        return None
    candidates = np.array([name != MISSING_GROUP for name in names])
    if not candidates.any():
        return None
    return int(np.argmax(np.where(candidates, sizes, -1)))


def _log_rates(
    num: np.ndarray, den: np.ndarray, num2: np.ndarray, den2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """log(num / den) and its linearised variance (Katz's 1/a - 1/n when every weight is 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = num / den
        variance = (num2 * (1 - rate) ** 2 / rate**2 + (den2 - num2)) / den**2
        return np.log(rate), variance


def _with_continuity(
    sums: tuple[np.ndarray, ...], counts_den: np.ndarray, needed: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Add half a case to the numerator and one case to the denominator (Haldane), at the
    side's mean weight, where `needed`: a 0 count would make the log ratio infinite."""
    num, den, num2, den2 = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_weight = np.where(counts_den > 0, den / counts_den, 0.0)
    add = np.where(needed, mean_weight, 0.0)
    return num + 0.5 * add, den + add, num2 + 0.5 * add**2, den2 + add**2


def _column_sums(codes: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """(size, columns) sums of each column of `matrix` by group code."""
    return np.column_stack(
        [np.bincount(codes, weights=matrix[:, j], minlength=size) for j in range(matrix.shape[1])]
    )


def _reference_sums(sums: np.ndarray, ref: int | None) -> np.ndarray:
    """Sums of each group's reference, along the groups axis (-2): its complement or one group."""
    if ref is None:
        return sums.sum(axis=-2, keepdims=True) - sums
    return np.broadcast_to(sums[..., [ref], :], sums.shape)


def audit_groups(
    listed: Values,
    labels: Values | None,
    groups: pd.DataFrame,
    *,
    weights: Values | None = None,
    metrics: Sequence[str] | None = None,
    reference: str | Mapping[str, str] | None = None,
    settings: FairnessSettings | None = None,
) -> pd.DataFrame:
    """One row per (attribute, group, metric) of one view: rates, ratio to the reference, test, flag.

    `labels` (boolean or 0/1, NA where not observed) feed the error rates; `weights` (1 /
    inclusion probability; 0 or NaN where not observed) make them estimates for the whole
    population. pprev needs no labels and is never weighted. The reference is each group's
    complement ("rest"), or with `reference` the largest group or a named group per attribute
    (a mapping from attribute to group; attributes it omits use the rest). Missing attribute
    values form their own group, "(missing)".

    Columns: counts (`numerator_count`, `group_count`, and the reference's), weighted sums,
    `value` and `reference_value`, `ratio`, `p_value` (H0: ratio within the band), `tested`
    (a tested metric with enough support), `flagged` (rejected by Benjamini-Hochberg at q over
    this view's tested rows), and `low`, `high` at one-sided confidence `level` (false-coverage
    adjusted for flagged rows, 1 - q for the others).
    """
    s = settings or FairnessSettings()
    reference = s.reference if reference is None else reference
    if isinstance(reference, str) and reference not in (REST, LARGEST):
        raise ValueError(f"reference must be {REST!r}, {LARGEST!r} or a mapping, got {reference!r}")
    if groups.empty:
        raise ValueError("no cases or no attributes to audit")
    if isinstance(reference, Mapping) and (unknown := set(reference) - set(groups.columns)):
        raise ValueError(f"reference names attributes not in groups: {sorted(unknown)}")
    metrics = tuple(metrics or (SELECTION_METRICS if labels is None else AUDIT_METRICS))
    if unknown_metrics := set(metrics) - {*AUDIT_METRICS, VIOLATION_RATE}:
        raise ValueError(f"unknown metrics: {sorted(unknown_metrics)}")
    inputs: dict[str, Values] = {"listed": listed}
    if labels is not None:
        inputs["labels"] = labels
    if weights is not None:
        inputs["weights"] = weights
    _check_aligned(groups.index, **inputs)
    if labels is None and set(metrics) - set(SELECTION_METRICS):
        raise ValueError("error rates need labels")
    on_list = _bools(listed)
    n = len(on_list)
    if labels is None:
        observed, positive = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    else:
        observed, positive = label_masks(labels)
    weight = np.ones(n) if weights is None else _weights(weights)
    if weights is not None:
        observed &= np.isfinite(weight) & (weight > 0)
        positive &= observed
    weight = np.where(observed, weight, 0.0)

    parts: list[dict[str, Any]] = []
    for attribute in groups.columns:
        codes, names = _group_codes(groups[attribute])
        size = len(names)
        ref = _reference_codes(attribute, names, np.bincount(codes, minlength=size), reference)
        for metric in metrics:
            num, den = _indicators(metric, on_list, observed, positive)
            w = np.ones(n) if metric in SELECTION_METRICS else weight
            by_group = _column_sums(
                codes, np.column_stack([w * num, w * den, w**2 * num, w**2 * den, num, den]), size
            )
            by_reference = _reference_sums(by_group, ref)
            group, other = tuple(by_group[:, :4].T), tuple(by_reference[:, :4].T)
            counts, other_counts = by_group[:, 4:].T, by_reference[:, 4:].T
            needed = (group[0] == 0) | (other[0] == 0)
            log_group, var_group = _log_rates(*_with_continuity(group, counts[1], needed))
            log_other, var_other = _log_rates(*_with_continuity(other, other_counts[1], needed))
            defined = (counts[1] > 0) & (other_counts[1] > 0)
            log_ratio = np.where(defined, log_group - log_other, np.nan)
            se = np.where(defined, np.sqrt(var_group + var_other), np.nan)
            if ref is not None:  # the reference against itself
                log_ratio[ref], se[ref] = 0.0, 0.0
            with np.errstate(divide="ignore", invalid="ignore"):
                parts.append(
                    {
                        "attribute": np.full(size, attribute, dtype=object),
                        "group": np.array(names, dtype=object),
                        "reference": np.full(size, REST if ref is None else names[ref], dtype=object),
                        "metric": np.full(size, metric, dtype=object),
                        "value": np.where(counts[1] > 0, group[0] / group[1], np.nan),
                        "reference_value": np.where(other_counts[1] > 0, other[0] / other[1], np.nan),
                        "log_ratio": log_ratio,
                        "se": se,
                        "numerator_count": counts[0].astype(np.int64),
                        "group_count": counts[1].astype(np.int64),
                        "reference_numerator_count": other_counts[0].astype(np.int64),
                        "reference_count": other_counts[1].astype(np.int64),
                        "numerator": group[0],
                        "denominator": group[1],
                        "reference_numerator": other[0],
                        "reference_denominator": other[1],
                        "effective_count": group[1] ** 2 / group[3],  # Kish: the weights' information
                        "squared_weights": group[3],
                        "reference_squared_weights": other[3],
                        "tested": (
                            (metric in s.tested_metrics)
                            & (np.arange(size) != (-1 if ref is None else ref))
                            & (counts[0] >= s.min_numerator_support)
                            & (counts[1] >= s.min_group_support)
                            & (other_counts[1] >= s.min_group_support)
                            & np.isfinite(log_ratio)
                            & np.isfinite(se)
                        ),
                    }
                )
    table = pd.DataFrame({column: np.concatenate([part[column] for part in parts]) for column in parts[0]})
    table["ratio"] = np.exp(table["log_ratio"])
    sums = RateSums(
        *(
            table[column].to_numpy(dtype=np.float64)
            for column in (
                "numerator",
                "denominator",
                "squared_weights",
                "reference_numerator",
                "reference_denominator",
                "reference_squared_weights",
            )
        )
    )
    table["p_value"] = band_p_value(sums, s.bounds)
    tested = table["tested"].to_numpy() & table["p_value"].notna().to_numpy()
    table["tested"] = tested
    flagged = np.zeros(len(table), dtype=bool)
    flagged[tested] = benjamini_hochberg(table["p_value"].to_numpy()[tested], s.q)
    table["flagged"] = flagged
    flag_level = fcr_level(int(flagged.sum()), int(tested.sum()), s.q)
    table["level"] = np.where(flagged, flag_level, 1 - s.q)
    table["low"], table["high"] = ratio_interval(sums, table["level"].to_numpy())
    columns = [
        "attribute",
        "group",
        "reference",
        "metric",
        "value",
        "reference_value",
        "ratio",
        "low",
        "high",
        "level",
        "p_value",
        "tested",
        "flagged",
        "numerator_count",
        "group_count",
        "reference_numerator_count",
        "reference_count",
        "numerator",
        "denominator",
        "reference_numerator",
        "reference_denominator",
        "effective_count",
        "log_ratio",
        "se",
    ]
    return table[columns]


def audit_views(
    listed: Values,
    groups: pd.DataFrame,
    views: Mapping[str, Values],
    *,
    unbiased: pd.DataFrame | None = None,
    biased_views: Collection[str] = ("labelled",),
    base_rate_view: str | None = "random_sample",
    settings: FairnessSettings | None = None,
) -> tuple[pd.DataFrame, list[Flag]]:
    """The audit of one list in every view, and its flags (one per flagged row of the table).

    View "list": selection rates (pprev), which need no labels, beside each group's estimated
    violation rate (`base_rate`, from `unbiased` evidence when given, else from the unweighted
    labels of `base_rate_view`, e.g. the RANDOM inspections). One view per entry of `views`
    (unweighted labels), marked `biased` when named in `biased_views`. View "unbiased" when
    `unbiased` (columns `label`, `weight`; aligned to groups) is given. Benjamini-Hochberg
    runs over each view's keys separately.
    """
    s = settings or FairnessSettings()
    if reserved := {"list", "unbiased"} & set(views):
        raise ValueError(f"view names {sorted(reserved)} are reserved")
    selection = audit_groups(listed, None, groups, metrics=SELECTION_METRICS, settings=s)
    if unbiased is not None:
        _unbiased_masks(unbiased, groups.index)  # validates the evidence
        evidence: tuple[Values, Values | None] | None = (unbiased["label"], unbiased["weight"])
        source = "unbiased"
    elif base_rate_view is not None and base_rate_view in views:
        evidence, source = (views[base_rate_view], None), base_rate_view
    else:
        evidence, source = None, ""
    if evidence is not None:
        rates = audit_groups(
            listed,
            evidence[0],
            groups,
            weights=evidence[1],
            metrics=(VIOLATION_RATE,),
            settings=replace(s, tested_metrics=()),
        )
        rates = rates.set_index(["attribute", "group"])
        at = pd.MultiIndex.from_frame(selection[["attribute", "group"]])
        selection["base_rate"] = rates["value"].reindex(at).to_numpy()
        selection["reference_base_rate"] = rates["reference_value"].reindex(at).to_numpy()
        selection["base_rate_ratio"] = selection["base_rate"] / selection["reference_base_rate"]
        selection["base_rate_count"] = rates["group_count"].reindex(at).to_numpy()
    else:
        for column in ("base_rate", "reference_base_rate", "base_rate_ratio", "base_rate_count"):
            selection[column] = np.nan
    selection["base_rate_source"] = source
    frames = [selection.assign(view="list", biased=False)]
    for view, labels in views.items():
        audit = audit_groups(listed, labels, groups, metrics=ERROR_METRICS, settings=s)
        frames.append(audit.assign(view=view, biased=view in biased_views))
    if unbiased is not None:
        audit = audit_groups(
            listed, unbiased["label"], groups, weights=unbiased["weight"], metrics=ERROR_METRICS, settings=s
        )
        frames.append(audit.assign(view="unbiased", biased=False))
    table = pd.concat(frames, ignore_index=True)
    first = ["view", "attribute", "group", "reference", "metric", "biased"]
    table = table[first + [c for c in table.columns if c not in first]]
    return table, flags_from_table(table)


def flags_from_table(table: pd.DataFrame) -> list[Flag]:
    """The flags of an audit table (its flagged rows), in the table's order."""
    flags = []
    for row in table[table["flagged"].astype(bool)].to_dict("records"):
        base_rate = row.get("base_rate_ratio")
        flags.append(
            Flag(
                view=str(row["view"]),
                attribute=str(row["attribute"]),
                group=str(row["group"]),
                metric=str(row["metric"]),
                ratio=float(row["ratio"]),
                low=float(row["low"]),
                high=float(row["high"]),
                level=float(row["level"]),
                p_value=float(row["p_value"]),
                value=float(row["value"]),
                reference_value=float(row["reference_value"]),
                group_count=int(row["group_count"]),
                reference_count=int(row["reference_count"]),
                numerator_count=int(row["numerator_count"]),
                reference=str(row["reference"]),
                biased=bool(row["biased"]),
                base_rate_ratio=None
                if base_rate is None or not math.isfinite(base_rate)
                else float(base_rate),
            )
        )
    return flags


def count_flags(flags: Iterable[Flag] | pd.DataFrame) -> int:
    """The number of flags, the same from the records or from the audit table (bias_audit.csv)."""
    if isinstance(flags, pd.DataFrame):
        return int(flags["flagged"].astype(bool).sum())
    return len({flag.key for flag in flags})


def new_or_worse(
    challenger_flags: Iterable[Flag], champion_flags: Iterable[Flag], *, include_biased: bool = True
) -> list[Flag]:
    """The challenger's flags that the champion does not raise on the same key, or raises less.

    Compared by key and value, never by text: a flag is worse when it points the other way,
    or when its ratio lies beyond the champion's interval on the side away from 1 (a ratio
    inside the champion's interval is the same disparity measured again).
    """
    champion = {flag.key: flag for flag in champion_flags}
    out = []
    for flag in challenger_flags:
        if flag.biased and not include_biased:
            continue
        old = champion.get(flag.key)
        if (
            old is None
            or old.above != flag.above
            or (flag.above and flag.ratio > old.high)
            or (not flag.above and flag.ratio < old.low)
        ):
            out.append(flag)
    return out


# -- challenger against champion ----------------------------------------------------------------


def _person_codes(index: pd.Index) -> np.ndarray:
    """The bootstrap's unit: the person of each case (each case its own unit without person_id)."""
    if "person_id" in (index.names or []):
        return pd.factorize(index.get_level_values("person_id"))[0].astype(np.int64)
    return np.arange(len(index), dtype=np.int64)


def _bootstrap_sums(
    persons: np.ndarray,
    attributes: Sequence[tuple[np.ndarray, int]],
    values: np.ndarray,
    replicates: int,
    rng: np.random.Generator,
    cells_per_chunk: int = 4_000_000,
) -> list[np.ndarray]:
    """Per attribute, the (replicates, groups, columns) sums of `values` under Poisson(1) weights
    drawn per person: one draw shared by every attribute and column (a person-level bootstrap)."""
    n_persons = int(persons.max()) + 1 if len(persons) else 0
    prepared = []
    for codes, n_groups in attributes:
        cell, inverse = np.unique(persons * n_groups + codes, return_inverse=True)
        cell_values = np.column_stack(
            [np.bincount(inverse, weights=values[:, j], minlength=len(cell)) for j in range(values.shape[1])]
        )
        order = np.argsort(cell % n_groups, kind="stable")
        bounds = np.searchsorted((cell % n_groups)[order], np.arange(n_groups + 1))
        prepared.append((cell[order] // n_groups, cell_values[order], bounds, n_groups))
    out = [np.zeros((replicates, n_groups, values.shape[1])) for _, n_groups in attributes]
    chunk = max(1, min(replicates, cells_per_chunk // max(1, n_persons)))
    for start in range(0, replicates, chunk):
        stop = min(replicates, start + chunk)
        draws = rng.poisson(1.0, size=(stop - start, n_persons)).astype(np.float64)
        for (cell_person, cell_values, bounds, n_groups), sums in zip(prepared, out, strict=True):
            weights = draws[:, cell_person]
            for g in range(n_groups):
                a, b = bounds[g], bounds[g + 1]
                sums[start:stop, g, :] = weights[:, a:b] @ cell_values[a:b]
    return out


def _paired_log_ratios(
    point: np.ndarray,
    point_ref: np.ndarray,
    boot: np.ndarray,
    boot_ref: np.ndarray,
    mean: np.ndarray,
    mean_ref: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """log(group rate / reference rate) from (numerator, denominator) sums, point and per replicate.

    Where the point numerator of either side is 0, both get the Haldane correction (as in
    `audit_groups`); a replicate with no event keeps half a case, so its log stays finite.
    """
    needed = (point[:, 0] == 0) | (point_ref[:, 0] == 0)
    add, add_ref = np.where(needed, mean, 0.0), np.where(needed, mean_ref, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.log((point[:, 0] + add / 2) / (point[:, 1] + add)) - np.log(
            (point_ref[:, 0] + add_ref / 2) / (point_ref[:, 1] + add_ref)
        )
        num = np.maximum(boot[:, :, 0] + add / 2, mean / 2)
        num_ref = np.maximum(boot_ref[:, :, 0] + add_ref / 2, mean_ref / 2)
        theta_boot = np.log(num / (boot[:, :, 1] + add)) - np.log(num_ref / (boot_ref[:, :, 1] + add_ref))
    return theta, theta_boot


def _compare_lists(
    groups: pd.DataFrame,
    rows: np.ndarray,
    lists: tuple[np.ndarray, np.ndarray],
    labels: tuple[np.ndarray, np.ndarray, np.ndarray],
    metrics: Sequence[str],
    s: FairnessSettings,
    replicates: int,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Both lists' log ratios on `rows` and the bootstrap standard error of their difference, per key.

    `labels` is (observed, positive, weight) over all cases.
    """
    observed, positive, weight = (part[rows] for part in labels)
    # Columns 4i..4i+3: metric i's (numerator, denominator) for the challenger, then the champion.
    columns = []
    for metric in metrics:
        for on_list in lists:
            columns += list(_indicators(metric, on_list[rows], observed, positive))
    counted = np.column_stack(columns).astype(np.float64)
    values = counted * weight[:, None]
    coded = []
    for attribute in groups.columns:
        codes, names = _group_codes(groups[attribute])
        coded.append((attribute, codes[rows], names))
    persons = pd.factorize(_person_codes(groups.index)[rows])[0].astype(np.int64)
    boots = _bootstrap_sums(
        persons, [(codes, len(names)) for _, codes, names in coded], values, replicates, rng
    )
    records = []
    for (attribute, codes, names), boot in zip(coded, boots, strict=True):
        size = len(names)
        ref = _reference_codes(attribute, names, np.bincount(codes, minlength=size), s.reference)
        point, counts = _column_sums(codes, values, size), _column_sums(codes, counted, size)
        point_ref, counts_ref, boot_ref = (_reference_sums(x, ref) for x in (point, counts, boot))
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(counts > 0, point / counts, 0.0)  # mean weight of each column's cases
            mean_ref = np.where(counts_ref > 0, point_ref / counts_ref, 0.0)
        for i, metric in enumerate(metrics):
            thetas = []
            for j in (4 * i, 4 * i + 2):  # challenger, champion
                pair = slice(j, j + 2)
                thetas.append(
                    _paired_log_ratios(
                        point[:, pair],
                        point_ref[:, pair],
                        boot[:, :, pair],
                        boot_ref[:, :, pair],
                        mean[:, j + 1],  # the mean weight of the denominator's cases
                        mean_ref[:, j + 1],
                    )
                )
            change = thetas[0][0] - thetas[1][0]
            with np.errstate(invalid="ignore"):
                change_boot = thetas[0][1] - thetas[1][1]
            finite = np.isfinite(change_boot)
            kept = np.where(finite, change_boot, 0.0)
            count = finite.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                centre = kept.sum(axis=0) / count
                spread = (np.where(finite, kept - centre, 0.0) ** 2).sum(axis=0) / (count - 1)
            # A key whose replicates are mostly undefined (empty denominators) has no standard error.
            se = np.where((count >= 0.9 * len(change_boot)) & (count > 1), np.sqrt(spread), np.nan)
            supported = (
                (counts[:, 4 * i] >= s.min_numerator_support)  # the challenger's disparity rests on events
                & (np.minimum(counts[:, 4 * i + 1], counts[:, 4 * i + 3]) >= s.min_group_support)
                & (np.minimum(counts_ref[:, 4 * i + 1], counts_ref[:, 4 * i + 3]) >= s.min_group_support)
            )
            for g, name in enumerate(names):
                records.append(
                    {
                        "view": "list" if metric in SELECTION_METRICS else "unbiased",
                        "attribute": attribute,
                        "group": name,
                        "metric": metric,
                        "reference": REST if ref is None else names[ref],
                        "challenger_ratio": float(np.exp(thetas[0][0][g])),
                        "champion_ratio": float(np.exp(thetas[1][0][g])),
                        "log_change": float(change[g]),
                        "se": float(se[g]),
                        "group_count": int(counts[g, 4 * i + 1]),
                        "numerator_count": int(counts[g, 4 * i]),
                        "supported": bool(supported[g]) and g != ref,
                    }
                )
    return records


def fairness_comparison(
    groups: pd.DataFrame,
    listed_challenger: Values,
    listed_champion: Values,
    unbiased: pd.DataFrame,
    tolerance: float = TrainingSettings.fairness_tolerance,
    *,
    metrics: Sequence[str] = BLOCKING_METRICS,
    settings: FairnessSettings | None = None,
    replicates: int = 1000,
    seed: int = 0,
    require_disparity: bool = True,
) -> pd.DataFrame:
    """Challenger against champion on the same cases, one row per key (the keys of the flags:
    view "unbiased" for error rates, "list" for pprev).

    For each (attribute, group, metric): both lists' ratios to the reference and
    log(challenger ratio / champion ratio) with a person-level bootstrap standard error
    (Poisson weights per person, shared by both lists, so the comparison is paired). Error
    rates come from the unbiased evidence only (weighted); pprev, if asked for, from all
    cases. A key is `tested` with the challenger's support (numerator and group) and the
    champion's group support; p_value is one-sided for H0 "the challenger is worse by at most
    a factor 1 + tolerance", Benjamini-Hochberg at settings.q selects, and `low`, `high` are
    false-coverage adjusted (one-sided `level` each). `blocks`: selected, and (with
    `require_disparity`) the challenger's own ratio lies beyond the band on the harmful side.
    """
    s = settings or FairnessSettings()
    if tolerance < 0:
        raise ValueError(f"tolerance must not be negative, got {tolerance}")
    if unknown := set(metrics) - set(HARM_DIRECTION):
        raise ValueError(f"cannot compare on metrics {sorted(unknown)}")
    if groups.empty:
        raise ValueError("no cases or no attributes to compare")
    _check_aligned(groups.index, listed_challenger=listed_challenger, listed_champion=listed_champion)
    lists = (_bools(listed_challenger), _bools(listed_champion))
    observed, positive, weight = _unbiased_masks(unbiased, groups.index)
    rng = np.random.default_rng(seed)
    records = []
    error = [m for m in metrics if m not in SELECTION_METRICS]
    if error:
        labels = (observed, positive, weight)
        records += _compare_lists(groups, observed, lists, labels, error, s, replicates, rng)
    selection = [m for m in metrics if m in SELECTION_METRICS]
    if selection:
        everyone = np.ones(len(observed), dtype=bool)
        labels = (observed, positive, np.ones(len(observed)))
        records += _compare_lists(groups, everyone, lists, labels, selection, s, replicates, rng)
    table = pd.DataFrame.from_records(records)
    direction = table["metric"].map(HARM_DIRECTION).to_numpy(dtype=np.float64)
    margin = math.log1p(tolerance)
    with np.errstate(divide="ignore", invalid="ignore"):  # se 0: the two lists agree on every case
        z = (direction * table["log_change"].to_numpy() - margin) / table["se"].to_numpy()
    tested = table["supported"].to_numpy() & np.isfinite(z)
    table["tested"] = tested
    table["p_value"] = np.where(np.isfinite(z), 1 - _norm_cdf(np.where(np.isfinite(z), z, 0.0)), np.nan)
    selected = np.zeros(len(table), dtype=bool)
    selected[tested] = benjamini_hochberg(table["p_value"].to_numpy()[tested], s.q)
    table["selected"] = selected
    table["level"] = np.where(selected, fcr_level(int(selected.sum()), int(tested.sum()), s.q), 1 - s.q)
    zq = np.array([_NORMAL.inv_cdf(level) for level in table["level"]])
    table["low"] = table["log_change"] - zq * table["se"]
    table["high"] = table["log_change"] + zq * table["se"]
    low_bound, high_bound = s.bounds
    harmful = np.where(
        direction > 0, table["challenger_ratio"] > high_bound, table["challenger_ratio"] < low_bound
    )
    table["blocks"] = selected & (harmful | (not require_disparity))
    table["tolerance"] = tolerance
    return table.drop(columns="supported")


def fairness_blocks(
    groups: pd.DataFrame,
    listed_challenger: Values,
    listed_champion: Values,
    unbiased: pd.DataFrame,
    tolerance: float = TrainingSettings.fairness_tolerance,
    *,
    metrics: Sequence[str] = BLOCKING_METRICS,
    settings: FairnessSettings | None = None,
    replicates: int = 1000,
    seed: int = 0,
    require_disparity: bool = True,
) -> list[Block]:
    """The keys on which the challenger is significantly worse than the champion (see
    `fairness_comparison`): error rates from unbiased evidence only, so a labelled-view
    figure never blocks; pprev blocks only when `metrics` names it."""
    table = fairness_comparison(
        groups,
        listed_challenger,
        listed_champion,
        unbiased,
        tolerance,
        metrics=metrics,
        settings=settings,
        replicates=replicates,
        seed=seed,
        require_disparity=require_disparity,
    )
    return [
        Block(
            view=str(row["view"]),
            attribute=str(row["attribute"]),
            group=str(row["group"]),
            metric=str(row["metric"]),
            challenger_ratio=float(row["challenger_ratio"]),
            champion_ratio=float(row["champion_ratio"]),
            low=float(row["low"]),
            high=float(row["high"]),
            level=float(row["level"]),
            p_value=float(row["p_value"]),
            tolerance=float(row["tolerance"]),
            group_count=int(row["group_count"]),
            numerator_count=int(row["numerator_count"]),
            reference=str(row["reference"]),
        )
        for row in table[table["blocks"]].to_dict("records")
    ]


# -- proxies ------------------------------------------------------------------------------------


def _model_ready(features: pd.DataFrame) -> pd.DataFrame:
    """Numbers as floats with NaN, categoricals kept, text as categories; neutral column names."""
    columns = {}
    for i, (_, column) in enumerate(features.items()):
        if isinstance(column.dtype, pd.CategoricalDtype):
            columns[f"f{i}"] = column.reset_index(drop=True)
        elif pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            columns[f"f{i}"] = pd.Series(column.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            columns[f"f{i}"] = column.reset_index(drop=True).astype("category")
    return pd.DataFrame(columns, index=pd.RangeIndex(len(features)))


def _group_rare(target: pd.Series, min_count: int, max_classes: int) -> pd.Series:
    counts = target.value_counts()
    kept: Sequence[str] = list(counts.index[(counts >= min_count).to_numpy()][:max_classes])
    return target.where(target.isin(kept), "OTHER")


def proxy_auc(
    features: pd.DataFrame,
    attribute: pd.Series,
    seed: int = 0,
    *,
    folds: int = 3,
    max_rows: int = 20_000,
    min_count: int = 50,
    max_classes: int = 12,
) -> float:
    """How well the features predict a protected attribute: cross-validated macro one-vs-rest ROC AUC.

    About 0.5 means the features carry little of the attribute; near 1 means some feature is a proxy
    for it. LightGBM on at most `max_rows` rows (seeded sample); the `max_classes` commonest classes
    with at least `min_count` rows are kept, the rest pooled as "OTHER". NaN with fewer than 2 classes.
    """
    _check_aligned(features.index, attribute=attribute)
    if folds < 2 or min_count < folds:
        raise ValueError(f"need folds >= 2 and min_count >= folds, got folds={folds}, min_count={min_count}")
    target = attribute.reset_index(drop=True)
    rows = np.flatnonzero(target.notna().to_numpy())
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))
    y = _group_rare(target.iloc[rows].astype(str).reset_index(drop=True), min_count, max_classes)
    sizes = y.value_counts()
    keep = y.isin(sizes.index[(sizes >= folds).to_numpy()]).to_numpy()  # a pooled OTHER may still be tiny
    y = y[keep].reset_index(drop=True)
    if y.nunique() < 2:
        return math.nan
    x = _model_ready(features).iloc[rows[keep]].reset_index(drop=True)
    model = LGBMClassifier(
        n_estimators=50, learning_rate=0.1, num_leaves=15, max_bin=63, random_state=seed, n_jobs=1, verbose=-1
    )
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
    classes = np.sort(y.unique())
    if len(classes) == 2:
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
