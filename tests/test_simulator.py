"""The simulator: deterministic, in the contract's shape, and with the statistical properties it promises.

Most tests use a small world (3,000 persons over 2.5 years). The statistical
ones (random inspections, nationality) use a larger one (30,000 persons over the
default 4.5 years) because their power comes from sample size.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy.stats import chi2_contingency

from features.contract import TABLES, TRUTH, Kind, Table
from features.tables import typed_frame, write_tables, write_truth
from simulator.cases import CaseIndex
from simulator.period import Period
from simulator.persons import Role, draw_persons
from simulator.residents import plan_residents
from simulator.selection import draw_random
from simulator.sponsors import draw_sponsors
from simulator.summary import summarise_world, world_rates
from simulator.violations import draw_violations
from simulator.visitors import plan_visitors
from simulator.world import World, WorldConfig, draw_world, simulate_world

SMALL = WorldConfig(persons=3_000, seed=5, start=dt.date(2023, 1, 1), end=dt.date(2025, 6, 30))
LARGE = WorldConfig(persons=30_000, seed=3)


@pytest.fixture(scope="module")
def world() -> World:
    return simulate_world(SMALL)


@pytest.fixture(scope="module")
def large_world() -> World:
    return simulate_world(LARGE)


@pytest.fixture(scope="module")
def cases(world: World) -> CaseIndex:
    return CaseIndex(world.tables)


def _day_numbers(dates: pd.Series) -> np.ndarray:
    return dates.to_numpy(dtype="datetime64[s]").astype("datetime64[D]").astype(np.int64)


# --- determinism -----------------------------------------------------------


def test_same_seed_gives_identical_tables_and_truth(world: World) -> None:
    again = simulate_world(SMALL)
    for name, frame in world.tables.items():
        pd.testing.assert_frame_equal(frame, again.tables[name], obj=name)
    pd.testing.assert_frame_equal(world.truth, again.truth, obj="truth")


def test_different_seed_gives_a_different_world(world: World) -> None:
    other = simulate_world(dataclasses.replace(SMALL, seed=SMALL.seed + 1))
    assert not world.tables.persons["nationality"].equals(other.tables.persons["nationality"])
    assert not world.tables.inspections.equals(other.tables.inspections)
    assert not world.truth.equals(other.truth)


def test_a_world_needs_persons() -> None:
    with pytest.raises(ValueError, match="at least one person"):
        simulate_world(WorldConfig(persons=0))


# --- the contract ----------------------------------------------------------


@pytest.mark.parametrize("spec", TABLES, ids=lambda t: t.name)
def test_columns_dtypes_and_enumerations_follow_the_contract(world: World, spec: Table) -> None:
    frame = world.tables[spec.name]
    assert tuple(frame.columns) == spec.column_names
    assert len(frame) > 0
    for col in spec.columns:
        assert frame[col.name].dtype == pd.Series([], dtype=col.dtype).dtype, col.name
        if not col.nullable:
            assert frame[col.name].notna().all(), col.name
        if col.kind == Kind.ENUM:
            assert set(frame[col.name].dropna()) <= set(col.values or ()), col.name


def test_ids_are_unique_and_references_resolve(world: World) -> None:
    t = world.tables
    for spec in TABLES:
        frame = t[spec.name]
        if spec.key is not None:
            assert frame[spec.key].is_unique, spec.name
        for col in spec.columns:
            if col.references:
                target_table, target_col = col.references.split(".")
                values = frame[col.name].dropna()
                assert values.isin(t[target_table][target_col]).all(), f"{spec.name}.{col.name}"
    assert t.persons["person_id"].str.fullmatch(r"P\d{7}").all()
    assert t.sponsors["sponsor_id"].str.fullmatch(r"S\d{5}").all()
    assert t.permits["permit_id"].str.fullmatch(r"PM\d{7}").all()
    assert t.inspections["inspection_id"].str.fullmatch(r"IN\d{7}").all()


def test_row_rules_hold(world: World) -> None:
    t = world.tables
    permits = t.permits
    assert (permits["expiry_date"] >= permits["issue_date"]).all()
    cancelled = permits["cancelled_date"].notna()
    assert cancelled.any()
    assert (permits.loc[cancelled, "cancelled_date"] >= permits.loc[cancelled, "issue_date"]).all()
    reports = t.agency_reports
    assert (reports["person_id"].notna() | reports["sponsor_id"].notna()).all()
    ins = t.inspections
    assert (ins["violation_type"].notna() == ins["violation_found"]).all()
    assert ((ins["action"] == "NONE") == ~ins["violation_found"]).all()
    is_random = ins["trigger"] == "RANDOM"
    assert ins.loc[is_random, "selection_propensity"].between(0, 1, inclusive="right").all()
    assert ins.loc[~is_random, "selection_propensity"].isna().all()
    truth = world.truth
    assert (truth["end_date"].isna() | (truth["end_date"] >= truth["start_date"])).all()


def test_event_dates_lie_within_the_period(world: World) -> None:
    start, end = pd.Timestamp(SMALL.start), pd.Timestamp(SMALL.end)
    for spec in TABLES:
        if spec.event_date is None or spec.name == "permits":
            continue
        dates = world.tables[spec.name][spec.event_date]
        assert dates.between(start, end).all(), spec.name
    permits = world.tables.permits
    assert (permits["issue_date"] <= end).all()
    assert (permits["issue_date"] < start).any()  # people already here at the start
    assert permits["cancelled_date"].dropna().between(start, end).all()
    assert world.truth["start_date"].between(start, end).all()


def test_sponsors_have_the_shape_of_their_type(world: World) -> None:
    s = world.tables.sponsors
    individual = s["sponsor_type"] == "INDIVIDUAL"
    assert s.loc[individual, "sector"].isna().all()
    assert s.loc[individual, "rptka_quota"].isna().all()
    assert s.loc[~individual, "sector"].notna().all()
    assert s.loc[s["sponsor_type"] == "COMPANY", "rptka_quota"].notna().any()
    assert set(s.loc[s["sponsor_type"] == "INSTITUTION", "sector"]) <= {"P", "Q"}
    assert s["district"].nunique() >= 15


def test_permits_form_chains_with_extensions_and_conversions(world: World) -> None:
    p = world.tables.permits.sort_values(["person_id", "issue_date"])
    same = p["person_id"].eq(p["person_id"].shift())
    follows = same & (p["issue_date"] == p["expiry_date"].shift() + pd.Timedelta(days=1))
    changed = p["permit_type"] != p["permit_type"].shift()
    assert (follows & ~changed).sum() > 100  # extensions
    conversions = set(
        zip(p["permit_type"].shift()[follows & changed], p["permit_type"][follows & changed], strict=True)
    )
    assert ("VISIT", "ITAS_WORK") in conversions
    work = p["permit_type"] == "ITAS_WORK"
    assert p.loc[work, ["position", "work_district", "sponsor_id"]].notna().all().all()
    assert p.loc[p["permit_type"] == "VOA", "sponsor_id"].isna().all()
    assert set(p["visa_index"].dropna()) >= {"B1", "C1", "E23", "E28A", "E30A", "E33F"}


# --- cases and inspections ---------------------------------------------------


def test_every_inspected_person_is_a_case_on_the_inspection_day(world: World, cases: CaseIndex) -> None:
    ins = world.tables.inspections
    at = cases.at(cases.codes(ins["person_id"]), _day_numbers(ins["inspection_date"]))
    assert at.all(), ins.loc[~at].head()


def test_random_inspections_are_about_five_percent(world: World, large_world: World) -> None:
    for w in (world, large_world):
        share = (w.tables.inspections["trigger"] == "RANDOM").mean()
        assert 0.03 <= share <= 0.08


def test_inspections_are_a_few_percent_of_cases_a_year(large_world: World) -> None:
    ins = large_world.tables.inspections
    per_year = len(ins) / (LARGE.end - LARGE.start).days * 365.25
    cases_at_end = world_rates(large_world)["cases_at_end"]
    assert 0.03 <= per_year / cases_at_end <= 0.2
    assert set(ins["trigger"]) == {"RANDOM", "TARGETED", "TIP", "ROUTINE"}
    routine = ins["trigger"] == "ROUTINE"
    assert ins.loc[routine, "sponsor_id"].notna().all()


def test_random_propensity_is_draws_over_cases_that_day(world: World, cases: CaseIndex) -> None:
    random = world.tables.inspections.query("trigger == 'RANDOM'")
    assert len(random) > 0
    for day, group in random.groupby("inspection_date"):
        n_cases = int(cases.on(day).sum())
        assert group["selection_propensity"].to_numpy() == pytest.approx(len(group) / n_cases)


def test_random_inspections_see_the_prevalence_of_cases(large_world: World) -> None:
    """In-violation share of RANDOM inspectees vs the prevalence among cases on their days.

    Each random inspectee is a Bernoulli draw with that day's prevalence p, so the
    count in violation has mean sum(p) and variance sum(p(1-p)). About 200 random
    inspections at p ~ 5% give sd ~ 3; a 4-sd band (plus one for discreteness)
    fails with probability < 1e-4 when draws are uniform, and fails clearly when
    random draws lean toward violators the way the other triggers do (hit rate 20-45%).
    """
    index, truth = CaseIndex(large_world.tables), large_world.truth
    person, start = index.codes(truth["person_id"]), _day_numbers(truth["start_date"])
    end = np.where(
        truth["end_date"].isna(),
        np.iinfo(np.int64).max,
        _day_numbers(truth["end_date"].fillna(pd.Timestamp(0))),
    )
    random = large_world.tables.inspections.query("trigger == 'RANDOM'")
    assert len(random) >= 150
    observed = expected = variance = 0.0
    for day, group in random.groupby("inspection_date"):
        d = _day_numbers(pd.Series([day]))[0]
        violating = np.zeros(len(index.person_ids), dtype=bool)
        violating[person[(start <= d) & (d <= end)]] = True
        p = violating[index.on(day).to_numpy()].mean()
        observed += violating[index.codes(group["person_id"])].sum()
        expected += len(group) * p
        variance += len(group) * p * (1 - p)
    assert abs(observed - expected) <= 4 * np.sqrt(variance) + 1
    # Detection is imperfect: found never exceeds in violation.
    assert random["violation_found"].sum() <= observed


def test_draw_random_is_uniform_over_cases() -> None:
    """5,000 draws of 10 from 100 cases: every case is drawn 500 times on average (chi-square)."""
    rng = np.random.default_rng(0)
    cases = np.zeros(500, dtype=bool)
    cases[::5] = True  # 100 cases
    counts = np.zeros(500)
    for _ in range(5_000):
        drawn, propensity = draw_random(cases, 10, rng)
        assert len(np.unique(drawn)) == 10
        assert propensity == pytest.approx(10 / 100)
        counts[drawn] += 1
    assert counts[~cases].sum() == 0
    chi2 = ((counts[cases] - 500) ** 2 / 500).sum()
    assert chi2 < 99 + 5 * np.sqrt(2 * 99)  # mean + 5 sd of chi-square with 99 df


def test_findings_carry_type_and_action(world: World) -> None:
    ins = world.tables.inspections
    found = ins[ins["violation_found"]]
    assert len(found) > 20
    overstay = found["violation_type"] == "OVERSTAY"
    assert found.loc[overstay, "action"].isin(["DEPORTATION", "FINE"]).all()
    assert (found.loc[found["violation_type"] == "DOCUMENT_FRAUD", "action"] == "DEPORTATION").all()
    assert set(found["action"]) <= {"DEPORTATION", "FINE", "WARNING"}


# --- truth and signals ---------------------------------------------------------


def test_prevalence_in_a_90_day_window_is_in_range(world: World, large_world: World) -> None:
    for w in (world, large_world):
        assert 0.04 <= world_rates(w)["violation_share_90d"] <= 0.14
    assert set(large_world.truth["violation_type"]) >= {
        "OVERSTAY",
        "PERMIT_MISUSE",
        "UNAPPROVED_WORK",
        "UNREPORTED_ADDRESS",
        "DOCUMENT_FRAUD",
    }


def test_overstays_are_visible_in_the_tables(world: World, cases: CaseIndex) -> None:
    t, truth = world.tables, world.truth
    over = truth[truth["violation_type"] == "OVERSTAY"]
    assert len(over) > 5
    # In the country, with no permit valid, on the first day of the overstay.
    start = _day_numbers(over["start_date"])
    assert cases.at(cases.codes(over["person_id"]), start).all()
    permits = t.permits.merge(over[["person_id", "start_date"]], on="person_id")
    cover = permits["cancelled_date"].fillna(permits["expiry_date"]).clip(upper=permits["expiry_date"])
    assert not ((permits["issue_date"] <= permits["start_date"]) & (cover >= permits["start_date"])).any()
    # No exit while overstaying.
    exits = t.border_crossings.query("direction == 'OUT'").merge(over, on="person_id")
    during = (exits["crossing_date"] >= exits["start_date"]) & (
        exits["end_date"].isna() | (exits["crossing_date"] <= exits["end_date"])
    )
    assert not during.any()


def test_cases_without_a_valid_permit_are_exactly_the_overstayers(world: World, cases: CaseIndex) -> None:
    t, truth = world.tables, world.truth
    permits, over = t.permits, truth[truth["violation_type"] == "OVERSTAY"]
    checked = 0
    for day in pd.date_range(SMALL.start, SMALL.end, freq="MS"):
        valid = (permits["issue_date"] <= day) & (permits["expiry_date"] >= day)
        valid &= permits["cancelled_date"].isna() | (permits["cancelled_date"] >= day)
        holders = set(permits.loc[valid, "person_id"])
        is_case = cases.on(day)
        without = set(is_case.index[is_case.to_numpy()]) - holders
        overstaying = (over["start_date"] <= day) & (over["end_date"].isna() | (over["end_date"] >= day))
        assert without == set(over.loc[overstaying, "person_id"]), day
        checked += len(without)
    assert checked > 0


def test_visa_runs_happen_and_signal_misuse(large_world: World) -> None:
    c = large_world.tables.border_crossings.sort_values(["person_id", "crossing_date", "direction"])
    back = (
        c["person_id"].eq(c["person_id"].shift())
        & (c["direction"] == "IN")
        & (c["direction"].shift() == "OUT")
        & ((c["crossing_date"] - c["crossing_date"].shift()).dt.days <= 7)
    )
    permits = large_world.tables.permits
    residents = permits.loc[~permits["permit_type"].isin(["VOA", "VISIT"]), "person_id"]
    visitors = pd.Index(permits["person_id"].unique()).difference(pd.Index(residents.unique()))
    runs = c.loc[back].groupby("person_id").size()
    runners = pd.Index(runs.index[runs >= 3]).intersection(
        visitors
    )  # residents' short trips are no visa runs
    assert len(runners) > 100
    misusers = pd.Index(large_world.truth.query("violation_type == 'PERMIT_MISUSE'")["person_id"].unique())
    others = visitors.difference(runners)
    assert runners.isin(misusers).mean() > 3 * others.isin(misusers).mean()


def test_agency_reports_and_labour_findings_point_at_violators(large_world: World) -> None:
    t, truth = large_world.tables, large_world.truth
    violators = pd.Index(truth["person_id"].unique())
    persons = t.persons["person_id"]
    reported = persons.isin(t.agency_reports["person_id"].dropna())
    is_violator = persons.isin(violators)
    assert is_violator[reported].mean() > 3 * is_violator[~reported].mean()
    # Persons at sponsors with labour findings violate more often than at other employers.
    work = t.permits.query("permit_type == 'ITAS_WORK'")[["person_id", "sponsor_id"]].drop_duplicates(
        "person_id"
    )
    flagged = work["sponsor_id"].isin(t.labour_violations["sponsor_id"])
    at_flagged = work["person_id"].isin(violators)
    assert at_flagged[flagged].mean() > 1.5 * at_flagged[~flagged].mean()


def test_violations_do_not_depend_on_nationality_within_a_role(large_world: World) -> None:
    """Chi-square test of nationality x ever-in-violation, within each resident role and for visitors."""
    t = large_world.tables
    first_permit = t.permits.sort_values("issue_date").drop_duplicates("person_id").set_index("person_id")
    persons = t.persons.set_index("person_id").join(first_permit["permit_type"])
    persons["violator"] = persons.index.isin(large_world.truth["person_id"])
    top = persons["nationality"].value_counts().index[:8]
    persons["group"] = persons["nationality"].where(persons["nationality"].isin(top), "other")
    tested = 0
    for _, people in persons.groupby("permit_type"):
        if len(people) < 1_000:
            continue
        table = pd.crosstab(people["group"], people["violator"])
        if table.shape[1] < 2 or table.to_numpy().min() < 5:
            continue
        assert chi2_contingency(table.to_numpy()).pvalue > 0.001, table
        tested += 1
    assert tested >= 3


def test_violation_draws_never_read_nationality() -> None:
    """Shuffling nationalities leaves every drawn violation unchanged (same generator state)."""
    period = Period.from_dates(dt.date(2023, 1, 1), dt.date(2024, 12, 31))
    rng = np.random.default_rng(1)
    sponsors = draw_sponsors(2_000, period, rng)
    persons = draw_persons(2_000, sponsors, period, rng)
    stays, _ = plan_residents(persons, sponsors, period, rng)
    trips, _ = plan_visitors(persons, sponsors, period, rng)
    shuffled = dataclasses.replace(
        persons, nationality=np.random.default_rng(2).permutation(persons.nationality)
    )
    assert not np.array_equal(shuffled.nationality, persons.nationality)
    state = rng.bit_generator.state
    a = draw_violations(persons, sponsors, stays, trips, period, rng)
    rng.bit_generator.state = state
    b = draw_violations(shuffled, sponsors, stays, trips, period, rng)
    for name in ("person", "type", "start", "end"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert len(a) > 0


def test_role_mix_differs_only_mildly_by_nationality(large_world: World) -> None:
    t = large_world.tables
    first = t.permits.sort_values("issue_date").drop_duplicates("person_id")
    worker = first.set_index("person_id")["permit_type"].eq("ITAS_WORK")
    nat = t.persons.set_index("person_id")["nationality"]
    share = worker.groupby(nat.reindex(worker.index)).mean()
    big = nat.value_counts()
    share = share[big[big > 1_000].index]
    assert share.max() < 2.5 * share.min()
    assert Role.WORKER == 0  # the role codes the simulator's tables rely on


# --- writing and reading --------------------------------------------------------


def _read_back(path: Path, spec: Table) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return typed_frame(spec, pd.read_parquet(path))
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in spec.columns:
        values = raw[col.name].replace("", None)
        if col.kind == Kind.BOOL:
            values = values.map({"True": True, "False": False})
        raw[col.name] = values
    return typed_frame(spec, raw)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_written_tables_and_truth_round_trip(world: World, tmp_path: Path, fmt: str) -> None:
    write_tables(world.tables, tmp_path, fmt)  # type: ignore[arg-type]
    write_truth(world.truth, tmp_path, fmt)  # type: ignore[arg-type]
    for spec in TABLES:
        back = _read_back(tmp_path / f"{spec.name}.{fmt}", spec)
        pd.testing.assert_frame_equal(back, world.tables[spec.name], obj=spec.name)
    truth = _read_back(tmp_path / "_truth" / f"violations.{fmt}", TRUTH)
    pd.testing.assert_frame_equal(truth, typed_frame(TRUTH, world.truth), obj="truth")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_written_world_passes_validation(world: World, tmp_path: Path, fmt: str) -> None:
    from features.loading import load_tables

    write_tables(world.tables, tmp_path, fmt)  # type: ignore[arg-type]
    write_truth(world.truth, tmp_path, fmt)  # type: ignore[arg-type]
    result = load_tables(tmp_path)
    assert result.report.ok, result.report.render()
    assert result.tables is not None
    assert len(result.tables.inspections) == len(world.tables.inspections)


def test_summary_prints_the_key_rates(world: World) -> None:
    console = Console(record=True, width=140)
    console.print(summarise_world(world))
    text = console.export_text()
    for label in ("cases (persons in the country)", "last 90 days", "RANDOM", "TARGETED", "TIP", "ROUTINE"):
        assert label in text
    rates = world_rates(world)
    assert rates["cases_at_end"] > 0
    assert 0 <= rates["hit_rate_RANDOM"] <= rates["hit_rate_TIP"]


# The default world of a small config, as the simulator drew it before the false-tip variant
# existed: a variant must not move a single draw of a world that does not ask for it.
DEFAULT_2000_SEED_3 = {
    "persons": 2000,
    "sponsors": 161,
    "permits": 5208,
    "border_crossings": 9760,
    "address_reports": 9821,
    "agency_reports": 253,
    "labour_violations": 89,
    "inspections": 261,
}


def test_default_world_is_unchanged_by_the_false_tip_variant() -> None:
    world = simulate_world(WorldConfig(persons=2000, seed=3))
    assert {name: len(frame) for name, frame in world.tables.items()} == DEFAULT_2000_SEED_3
    assert len(world.truth) == 463
    assert int(world.tables.inspections["violation_found"].sum()) == 49
    assert int((world.tables.agency_reports["agency"] == "PUBLIC").sum()) == 96


def _public_tips_per_person(world: World, nationality: str) -> tuple[float, float]:
    persons = world.tables.persons.set_index("person_id")["nationality"]
    reports = world.tables.agency_reports
    public = reports[(reports["agency"] == "PUBLIC") & reports["person_id"].notna()]
    about = persons.reindex(public["person_id"]).to_numpy() == nationality
    targeted, others = int((persons == nationality).sum()), int((persons != nationality).sum())
    return about.sum() / targeted, (~about).sum() / others


def test_false_tips_concentrate_on_the_chosen_nationality() -> None:
    base = simulate_world(WorldConfig(persons=4000, seed=5))
    biased = simulate_world(WorldConfig(persons=4000, seed=5, false_tip_nationality="AUS"))
    on_aus, on_rest = _public_tips_per_person(biased, "AUS")
    base_aus, base_rest = _public_tips_per_person(base, "AUS")
    assert on_aus > 4 * on_rest  # public tips per person: AUS many times the others
    assert base_aus < 2 * base_rest  # no such concentration without the variant
    assert on_rest == pytest.approx(base_rest, rel=0.2)  # the others are left alone
    # The extra tips are false: before any inspection, the violations are those of the base world.
    pd.testing.assert_frame_equal(biased.tables.persons, base.tables.persons)
    drawn_base = draw_world(WorldConfig(persons=4000, seed=5))[0].truth
    drawn_biased = draw_world(WorldConfig(persons=4000, seed=5, false_tip_nationality="AUS"))[0].truth
    for name in ("person", "type", "start", "end"):
        np.testing.assert_array_equal(getattr(drawn_biased, name), getattr(drawn_base, name))
    # The office follows some of them up, and finds nothing more often on AUS than before.
    ins = biased.tables.inspections.merge(biased.tables.persons, on="person_id")
    tips = ins[(ins["trigger"] == "TIP") & (ins["nationality"] == "AUS")]
    base_ins = base.tables.inspections.merge(base.tables.persons, on="person_id")
    base_tips = base_ins[(base_ins["trigger"] == "TIP") & (base_ins["nationality"] == "AUS")]
    assert len(tips) > 2 * len(base_tips)
    assert tips["violation_found"].mean() < base_tips["violation_found"].mean()


def test_false_tip_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown nationality"):
        WorldConfig(false_tip_nationality="XXX")
    with pytest.raises(ValueError, match="at least 1"):
        WorldConfig(false_tip_nationality="AUS", false_tip_multiplier=0.5)
