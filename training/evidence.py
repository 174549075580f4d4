"""The evidence a real office holds, gathered for the decisions: samples with known selection probabilities.

From the contract tables and the data set's committed lists (`features/lists.py`),
never from the simulator's truth:
- one `Sample` per committed, not superseded list whose as-of date lies in the
  evaluation window: its eligible cases, their inclusion probabilities times the
  stratum's visit rate, and the outcomes of its `LIST` inspections;
- one `Sample` per evaluation date with RANDOM inspections in its horizon: the
  cases of that date, each included with 1 - prod(1 - p_day) over the horizon's
  RANDOM days (p_day the logged `selection_propensity`, else RANDOM inspections
  that day / cases on the as-of date).
Each sample carries the features of its cases (the same feature code as
training and serving), so any scorer can be judged on it, and the outcome
model's predictions for the doubly robust estimator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.lists import CommittedList
from features.pipeline import features_from_timeline
from features.tables import Tables
from features.timeline import build_timeline
from training.offpolicy import (
    Evidence,
    EvidenceSettings,
    Sample,
    horizon_inclusion,
    labelled_difference,
    paired_difference,
)

Scorer = Callable[[pd.DataFrame], npt.NDArray[np.float64]]


@dataclass(frozen=True)
class EvidenceSample:
    """A sample and the feature matrix of its cases (row i of features is case i of the sample)."""

    sample: Sample
    features: pd.DataFrame
    kind: str  # "list" or "random"
    as_of: dt.date


@dataclass(frozen=True)
class LabelledDate:
    """The labelled view of one evaluation date: every case's features and its label (NA: not inspected)."""

    features: pd.DataFrame
    label: pd.Series
    as_of: dt.date


def operational_capacity(tables: Tables, horizon_days: int, until: dt.date, configured: int | None) -> int:
    """Inspections an office carries out in a horizon: the setting, else the mean over the last year."""
    if configured:
        return int(configured)
    dates = pd.to_datetime(tables.inspections["inspection_date"])
    end = pd.Timestamp(until)
    recent = dates[(dates > end - pd.Timedelta(days=365)) & (dates <= end)]
    if len(recent) == 0:
        recent = dates[dates <= end]
        if len(recent) == 0:
            return 50
        span = max((recent.max() - recent.min()).days + 1, horizon_days)
    else:
        span = 365
    return max(1, round(len(recent) * horizon_days / span))


def random_inclusion(tables: Tables, as_of: dt.date, horizon_days: int, n_cases: int) -> float:
    """A case's probability of a RANDOM draw in (T, T+H]: 1 - prod(1 - p_day) over the horizon's
    RANDOM days (p_day the logged propensity, else RANDOM inspections that day / cases on T)."""
    inspections = tables.inspections
    random = inspections[inspections["trigger"].astype(str) == "RANDOM"]
    day = pd.to_datetime(random["inspection_date"])
    t = pd.Timestamp(as_of)
    window = ((day > t) & (day <= t + pd.Timedelta(days=horizon_days))).to_numpy()
    if n_cases == 0 or not window.any():
        return 0.0
    per_day = pd.DataFrame(
        {"day": day[window], "p": random["selection_propensity"].astype("float64")[window]}
    )
    grouped = per_day.groupby("day")
    logged = grouped["p"].median()
    p = logged.where(logged.notna(), grouped.size() / n_cases).clip(upper=1.0)
    return horizon_inclusion(p.to_numpy(dtype=np.float64).tolist())


def random_samples(
    tables: Tables,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    dates: Sequence[dt.date],
    horizon_days: int,
    k: int,
) -> list[EvidenceSample]:
    """One sample per as-of date whose horizon holds RANDOM inspections (cases of that date)."""
    as_of = features.index.get_level_values("as_of")
    out = []
    for date in dates:
        rows = np.asarray(as_of == pd.Timestamp(date))
        inclusion = random_inclusion(tables, date, horizon_days, int(rows.sum()))
        if inclusion == 0.0:
            continue
        label = labels.loc[rows]
        observed = label["random_inspected"].to_numpy(dtype=bool)
        found = label["random_label"].fillna(False).to_numpy(dtype=bool) & observed
        sample = Sample(
            name=f"RANDOM {date.isoformat()}",
            k=k,
            person_id=label.index.get_level_values("person_id").to_numpy(dtype=str),
            inclusion=np.full(len(label), inclusion),
            observed=observed,
            found=found,
        )
        out.append(EvidenceSample(sample, features.loc[rows], "random", date))
    return out


def list_samples(
    lists: Sequence[CommittedList], tables: Tables, first: dt.date, last: dt.date
) -> list[EvidenceSample]:
    """One sample per committed (not superseded) list with as-of date in [first, last] and an outcome.

    The features of the lists' cases come from the same feature code as training and serving;
    the timeline is built only when some list in the window has outcomes.
    """
    by_list = _list_rows(tables)
    chosen = [c for c in lists if first <= c.as_of <= last and c.list_id in by_list]
    if not chosen:
        return []
    features = features_from_timeline(build_timeline(tables), sorted({c.as_of for c in chosen}))
    out = []
    for committed in chosen:
        rows = by_list[committed.list_id]
        cases = committed.cases
        ids = cases["person_id"].to_numpy(dtype=str)
        visited = pd.Index(rows["person_id"].astype(str).unique())
        found_ids = pd.Index(rows.loc[rows["violation_found"].astype(bool), "person_id"].astype(str).unique())
        observed = pd.Index(ids).isin(visited)
        listed = cases["listed"].to_numpy(dtype=bool)
        stratum = cases["stratum"].astype(str).to_numpy()
        # A stratum's picks that were not visited lower its inclusion probability by its visit rate.
        picks = pd.DataFrame({"stratum": stratum[listed], "visited": observed[listed]})
        rate = picks.groupby("stratum")["visited"].mean()
        visit_rate = pd.Series(stratum).map(rate).fillna(0.0).to_numpy(dtype=np.float64)
        inclusion = cases["inclusion_probability"].to_numpy(dtype=np.float64) * visit_rate
        observed &= inclusion > 0
        sample = Sample(
            name=f"list {committed.list_id}",
            k=int(committed.k),
            person_id=ids,
            inclusion=inclusion,
            observed=observed,
            found=pd.Index(ids).isin(found_ids) & observed,
        )
        stamp = pd.Timestamp(committed.as_of)
        at = features[np.asarray(features.index.get_level_values("as_of") == stamp)]
        wanted = pd.MultiIndex.from_arrays([ids, [stamp] * len(ids)], names=at.index.names)
        matrix = at.reindex(wanted)
        out.append(EvidenceSample(sample, matrix, "list", committed.as_of))
    return out


def with_outcome_model(samples: Sequence[EvidenceSample], outcome: Scorer | None) -> list[EvidenceSample]:
    """The samples with the outcome model's predictions for the doubly robust estimator."""
    if outcome is None:
        return list(samples)
    out = []
    for s in samples:
        m = np.clip(np.asarray(outcome(s.features), dtype=np.float64), 0.0, 1.0)
        sample = Sample(
            s.sample.name,
            s.sample.k,
            s.sample.person_id,
            s.sample.inclusion,
            s.sample.observed,
            s.sample.found,
            m,
        )
        out.append(EvidenceSample(sample, s.features, s.kind, s.as_of))
    return out


def compare(
    samples: Sequence[EvidenceSample],
    labelled: Sequence[LabelledDate],
    scorer_a: Scorer,
    scorer_b: Scorer | None,
    comparison: str,
    k: int,
    settings: EvidenceSettings,
) -> tuple[Evidence, Evidence]:
    """(off-policy evidence, labelled-view evidence) for a - b; b None: a uniformly random list."""
    scored_a = [scorer_a(s.features) for s in samples]
    scored_b = None if scorer_b is None else [scorer_b(s.features) for s in samples]
    offpolicy = paired_difference([s.sample for s in samples], scored_a, scored_b, comparison, settings)
    ids = [d.label.index.get_level_values("person_id").to_numpy(dtype=str) for d in labelled]
    labelled_view = labelled_difference(
        [d.label for d in labelled],
        ids,
        [scorer_a(d.features) for d in labelled],
        None if scorer_b is None else [scorer_b(d.features) for d in labelled],
        k,
        comparison,
        settings,
    )
    return offpolicy, labelled_view


def deciding(offpolicy: Evidence, labelled: Evidence) -> Evidence:
    """The off-policy estimate when it suffices, else the labelled view (marked biased)."""
    return offpolicy if offpolicy.sufficient else labelled


def _list_rows(tables: Tables) -> dict[str, pd.DataFrame]:
    """The LIST inspections of each list id."""
    inspections = tables.inspections
    rows = inspections[inspections["trigger"].astype(str) == "LIST"]
    return {str(list_id): group for list_id, group in rows.groupby(rows["list_id"].astype(str))}


def unbiased_outcomes(
    lists: Sequence[CommittedList], tables: Tables, labels: pd.DataFrame, as_of: dt.date, horizon_days: int
) -> pd.DataFrame | None:
    """Per case of one as-of date: the outcome seen by known-propensity inspections in (T, T+H] and its
    weight 1 / p, p = 1 - (1 - p_random) * prod over the horizon's lists (1 - p_list). None without any.

    For the bias audit's error rates: RANDOM draws and the picks of lists committed in [T, T+H),
    each case weighted by the inverse of its probability of being drawn by any of them.
    """
    ids = labels.index.get_level_values("person_id").astype(str)
    p_random = random_inclusion(tables, as_of, horizon_days, len(labels))
    miss = np.full(len(labels), 1.0 - p_random)  # probability that no known-propensity design drew the case
    observed = labels["random_inspected"].to_numpy(dtype=bool) & (p_random > 0)
    found = labels["random_label"].fillna(False).to_numpy(dtype=bool) & observed
    start, end = pd.Timestamp(as_of), pd.Timestamp(as_of + dt.timedelta(days=horizon_days))
    by_list = _list_rows(tables)
    for committed in lists:
        if not (as_of <= committed.as_of < end.date() and committed.list_id in by_list):
            continue
        cases = committed.cases.set_index(committed.cases["person_id"].astype(str))
        p = cases["inclusion_probability"].reindex(ids).fillna(0.0).to_numpy(dtype=np.float64)
        miss *= 1.0 - p
        mine = by_list[committed.list_id]
        day = pd.to_datetime(mine["inspection_date"])
        mine = mine[(day > start) & (day <= end)]
        hit = mine["violation_found"].astype(bool)
        observed |= np.asarray(ids.isin(mine["person_id"].astype(str))) & (p > 0)
        found |= np.asarray(ids.isin(mine.loc[hit, "person_id"].astype(str))) & (p > 0)
    if not observed.any():
        return None
    inclusion = 1.0 - miss
    weight = np.zeros(len(labels))
    np.divide(1.0, inclusion, out=weight, where=observed & (inclusion > 0))
    label = pd.array(np.where(observed, found, False), dtype="boolean")
    label[~observed] = pd.NA
    return pd.DataFrame({"label": label, "weight": weight}, index=labels.index)


def randomised_comparison(
    data_dir: Path, tables: Tables, settings: EvidenceSettings | None = None
) -> Evidence | None:
    """Model minus office rule from lists whose month or district was assigned at random to an arm.

    Over committed, not superseded lists carrying an arm (`features.assignment`)
    with at least one visited MODEL pick: each list's precision is found /
    visited among its model-selected picks (exploration picks left out, so each
    arm is judged on its own top picks). The estimate is the mean over the
    model's lists minus the mean over the rule's; the interval bootstraps lists
    within each arm. Unbiased because the arm was drawn at random, not chosen.
    None when no list carries an arm and outcomes.
    """
    from features.lists import MODEL, read_lists

    settings = settings or EvidenceSettings()
    comparison, source = "model - office rule (randomised)", "randomised"
    inspections = tables.inspections
    if "list_id" not in inspections or inspections.empty:
        return None
    rows = inspections[(inspections["trigger"] == "LIST").fillna(False).to_numpy(dtype=bool)]
    rows = rows[rows["list_id"].notna().to_numpy(dtype=bool)]
    keys = rows["list_id"].astype(str) + "\x1f" + rows["person_id"].astype(str)
    visited_keys = pd.Index(keys.unique())
    found_keys = pd.Index(keys[rows["violation_found"].fillna(False).to_numpy(dtype=bool)].unique())
    arms, precision, ks = [], [], []
    for committed in read_lists(data_dir):
        arm = committed.extra.get("arm")
        if arm not in ("model", "rule"):
            continue
        picks = committed.cases[(committed.cases["selection"] == MODEL).to_numpy(dtype=bool)]
        pick_keys = committed.list_id + "\x1f" + picks["person_id"].astype(str)
        visited = int(visited_keys.isin(pick_keys).sum())
        if visited == 0:
            continue
        arms.append(arm)
        precision.append(int(found_keys.isin(pick_keys).sum()) / visited)
        ks.append(committed.k)
    if not arms:
        return None
    arm = np.asarray(arms)
    values = np.asarray(precision, dtype=np.float64)
    model, rule = values[arm == "model"], values[arm == "rule"]
    counts = f"{len(model)} model list(s), {len(rule)} rule list(s)"
    if len(model) == 0 or len(rule) == 0:
        return Evidence(
            comparison=comparison,
            source=source,
            estimator="difference in means",
            estimate=float("nan"),
            low=float("nan"),
            high=float("nan"),
            n_effective=float(len(values)),
            n_clusters=len(values),
            bootstrap_over="lists",
            k=max(ks),
            sufficient=False,
            biased=False,
            note=f"outcomes from both arms are needed; there are {counts}",
        )
    rng = np.random.default_rng(settings.seed)
    draws = settings.bootstrap
    model_means = model[rng.integers(0, len(model), size=(draws, len(model)))].mean(axis=1)
    rule_means = rule[rng.integers(0, len(rule), size=(draws, len(rule)))].mean(axis=1)
    tail = (1.0 - settings.confidence) / 2.0
    low, high = np.quantile(model_means - rule_means, [tail, 1.0 - tail])
    reasons = []
    if min(len(model), len(rule)) < 5:
        reasons.append(f"each arm needs at least 5 lists with outcomes; there are {counts}")
    if high - low > settings.max_width:
        reasons.append(f"the interval is {high - low:.2f} wide, more than {settings.max_width:.2f}")
    return Evidence(
        comparison=comparison,
        source=source,
        estimator="difference in means",
        estimate=float(model.mean() - rule.mean()),
        low=float(low),
        high=float(high),
        n_effective=float(len(values)),
        n_clusters=len(values),
        bootstrap_over="lists",
        k=max(ks),
        sufficient=not reasons,
        biased=False,
        note="; ".join(reasons),
        values={"model": float(model.mean()), "rule": float(rule.mean())},
    )
