"""The one inference path in process: `models.scoring.score_cases` and `serving.engine.ScoringEngine`.

A small simulated world (3,000 persons, two years; well under a second) and a
small real LightGBM model fitted on its labelled cases. No HTTP, no registry:
what the service answers is checked against the model and the tables directly.
The whole module runs in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import numpy as np
import pandas as pd
import pytest

import serving.engine
from features.labels import build_labels
from features.pipeline import build_features, features_from_timeline, to_day
from features.snapshot import take_snapshot
from features.tables import Tables
from features.timeline import Timeline, build_timeline
from models.ranker import RiskModel
from models.scoring import ScoredCases, ranked_list, score_cases
from serving.engine import RequestError, ScoringEngine
from serving.schemas import CaseStatus, ScoredCase, Selection
from serving.settings import ServingSettings
from simulator.world import WorldConfig, simulate_world
from training.fit import FitConfig, LabelledCases, fit_ranker

WORLD = WorldConfig(persons=3_000, seed=5, start=dt.date(2023, 1, 1), end=dt.date(2024, 12, 31))
TRAIN_DATES = [dt.date(2023, 6, 1) + dt.timedelta(days=30 * i) for i in range(10)]
VALIDATION_FROM = pd.Timestamp("2024-01-01")
T = dt.date(2024, 6, 30)
VERSION = "7"
N_REASONS = ServingSettings().n_reasons  # reasons per case the engine serves


# -- a world and a model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world_tables() -> Tables:
    return simulate_world(WORLD).tables


@pytest.fixture(scope="module")
def tables(world_tables: Tables) -> Tables:
    """The world with its persons shuffled: no order of the cases may come from the table's row order."""
    return world_tables.replace(persons=world_tables.persons.sample(frac=1.0, random_state=1))


@pytest.fixture(scope="module")
def timeline(tables: Tables) -> Timeline:
    return build_timeline(tables)


@pytest.fixture(scope="module")
def model(tables: Tables, timeline: Timeline) -> RiskModel:
    """A real (small) model: fitted on the world's inspected cases, validated on the later dates."""
    features = features_from_timeline(timeline, TRAIN_DATES)
    label = build_labels(tables, TRAIN_DATES, 90, timeline)["label"].reindex(features.index)
    inspected = label.notna().to_numpy()
    features, y = features[inspected], label[inspected].astype(bool).to_numpy().astype(np.int64)
    late = np.asarray(features.index.get_level_values("as_of") >= VALIDATION_FROM)
    train = LabelledCases(features[~late], y[~late], np.ones(int((~late).sum())))
    validation = LabelledCases(features[late], y[late], np.ones(int(late.sum())))
    config = FitConfig(max_rounds=40, early_stopping_rounds=40, num_leaves=7, min_data_in_leaf=10)
    return fit_ranker(train, validation, config, horizon_days=90)


@pytest.fixture(scope="module")
def scored(model: RiskModel, timeline: Timeline) -> ScoredCases:
    return score_cases(model, VERSION, timeline, T)


@pytest.fixture(scope="module")
def engine(model: RiskModel, tables: Tables, tmp_path_factory: pytest.TempPathFactory) -> ScoringEngine:
    return ScoringEngine(model, VERSION, tables, data_dir=tmp_path_factory.mktemp("engine"))


def _expected_reasons(model: RiskModel, scored: ScoredCases, person: str) -> list[tuple[str, float]]:
    """The features with the largest positive TreeSHAP contributions, worked out from the booster."""
    row = scored.matrix[scored.rows([person])]
    contributions = model.contributions_of(row)[0, :-1]
    order = np.argsort(-contributions, kind="stable")[:N_REASONS]
    return [(model.feature_names[j], float(contributions[j])) for j in order if contributions[j] > 0]


# -- score_cases ------------------------------------------------------------------------------------


def test_score_cases_has_one_row_per_case_in_the_country_as_of_the_date(
    scored: ScoredCases, timeline: Timeline, model: RiskModel
) -> None:
    is_case = take_snapshot(timeline, to_day(T)).is_case
    cases = set(timeline.person_ids[is_case])
    table = scored.table
    assert 100 < len(cases) < timeline.n_persons  # persons who left or have not come are not cases
    assert table.index.is_unique and set(table.index) == cases
    assert set(scored.features.index) == cases
    assert scored.matrix.shape == (len(cases), len(model.feature_names))
    assert scored.as_of == T and scored.model_version == VERSION
    assert list(table.columns) == ["score", "rank", "percentile", "district", "permit_type"]
    # The table's permit type is the case's current permit, as the model saw it.
    current = scored.features["current_permit_type"].astype(str).reindex(table.index)
    assert (current == table["permit_type"].astype(str)).all()


def test_ranks_follow_the_score_with_ties_broken_by_person_id(
    scored: ScoredCases, model: RiskModel, world_tables: Tables
) -> None:
    table = scored.table
    n = len(table)
    assert table["score"].duplicated().sum() > 10, "the model must tie some cases for this test to bite"
    assert not scored.features.index.is_monotonic_increasing  # cases come in the shuffled persons' order
    assert table["rank"].tolist() == list(range(1, n + 1))  # in rank order, ranks 1..n once each
    by_hand = sorted(zip(table["score"], table.index, strict=True), key=lambda sp: (-sp[0], sp[1]))
    assert table.index.tolist() == [person for _, person in by_hand]
    percentile = table["percentile"].to_numpy()
    assert percentile[0] == 100.0 and percentile[-1] == pytest.approx(100.0 / n)
    assert np.all(np.diff(percentile) < 0) and np.all((percentile > 0) & (percentile <= 100))
    np.testing.assert_allclose(percentile, 100.0 * (n - np.arange(n)) / n, rtol=1e-12)
    in_order = score_cases(model, VERSION, build_timeline(world_tables), T)  # persons in id order
    pd.testing.assert_frame_equal(in_order.table, table)


def test_scores_are_the_models_calibrated_probabilities(
    scored: ScoredCases, model: RiskModel, tables: Tables
) -> None:
    table = scored.table
    aligned = table.reindex(scored.features.index)["score"].to_numpy()
    np.testing.assert_array_equal(aligned, model.probability(model.margin(scored.matrix)))
    # ... and what training's path (features straight from the tables, `RiskModel.score`) gives.
    features = build_features(tables, [T]).droplevel("as_of").loc[table.index]
    np.testing.assert_allclose(table["score"].to_numpy(), model.score(features), rtol=1e-12)
    assert np.all((table["score"] > 0) & (table["score"] < 1))
    assert table["score"].nunique() > 20  # the model does separate the cases


def test_rows_after_the_date_do_not_move_the_scores(
    scored: ScoredCases, model: RiskModel, tables: Tables
) -> None:
    top, low = scored.table.index[0], scored.table.index[-1]
    after = [pd.Timestamp(T) + pd.Timedelta(days=d) for d in (1, 2, 3)]
    reports = pd.DataFrame(
        {
            "report_id": ["F1", "F2", "F3", "F4"],
            "report_date": [*after, pd.Timestamp(T) - pd.Timedelta(days=5)],  # the last one recorded late
            "agency": ["MANPOWER", "POLICE", "PUBLIC", "MANPOWER"],
            "person_id": [low] * 4,
            "sponsor_id": [None] * 4,
            "category": ["ILLEGAL_WORK", "PUBLIC_ORDER", "OTHER", "ILLEGAL_WORK"],
            "recorded_date": [*after, pd.Timestamp(T) + pd.Timedelta(days=5)],
        }
    )
    leaves = pd.DataFrame(
        {"person_id": [top], "crossing_date": [after[0]], "direction": ["OUT"], "port": ["CGK"]}
    )
    later = tables.replace(
        agency_reports=pd.concat([tables.agency_reports, reports], ignore_index=True),
        border_crossings=pd.concat([tables.border_crossings, leaves], ignore_index=True),
    )
    later_timeline = build_timeline(later)
    again = score_cases(model, VERSION, later_timeline, T)
    pd.testing.assert_frame_equal(again.table, scored.table)
    pd.testing.assert_frame_equal(again.features, scored.features)
    np.testing.assert_array_equal(again.matrix, scored.matrix)
    # The rows are not inert: ten days on, the top case has left and the low case's reports count.
    then = T + dt.timedelta(days=10)
    before = score_cases(model, VERSION, build_timeline(tables), then)
    moved = score_cases(model, VERSION, later_timeline, then)
    assert top in before.table.index and top not in moved.table.index
    assert moved.features.loc[low, "person_reports_90d"] == before.features.loc[low, "person_reports_90d"] + 4


# -- ScoringEngine.score ------------------------------------------------------------------------------


def test_score_reports_each_id_in_request_order(
    engine: ScoringEngine, scored: ScoredCases, model: RiskModel
) -> None:
    table = scored.table
    top, middle = str(table.index[0]), str(table.index[len(table) // 2])
    not_a_case = next(p for p in engine.timeline.person_ids if p not in table.index)
    ids = [middle, "NOBODY", top, not_a_case, middle]
    answer = engine.score(ids, T).to_response()
    assert answer.as_of == T.isoformat() and answer.model_version == VERSION
    assert answer.cases_total == len(table) and answer.scored == 3 and answer.not_scored == 2
    assert [r.person_id for r in answer.results] == ids
    assert [r.status for r in answer.results] == [
        CaseStatus.SCORED,
        CaseStatus.UNKNOWN_PERSON,
        CaseStatus.SCORED,
        CaseStatus.NOT_A_CASE,
        CaseStatus.SCORED,
    ]
    for result in answer.results:
        if result.status != CaseStatus.SCORED:
            assert result.score is result.rank is result.percentile is None and result.reasons == []
            continue
        case = table.loc[result.person_id]
        assert result.rank == case["rank"]
        assert result.score == pytest.approx(case["score"], abs=1e-10)
        assert result.percentile == pytest.approx(case["percentile"], abs=1e-10)
        expected = _expected_reasons(model, scored, result.person_id)
        assert [(r.feature, pytest.approx(r.contribution)) for r in result.reasons] == expected
        assert all(r.en and r.id and r.en != r.id for r in result.reasons)  # both languages, worded
    assert answer.results[2].rank == 1 and answer.results[2].reasons, "the top case has reasons"
    assert answer.results[0] == answer.results[4]  # a repeated id gets the same answer
    bare = engine.score(ids, T, reasons=False).to_response()
    assert all(r.reasons == [] for r in bare.results)
    assert [r.model_dump(exclude={"reasons"}) for r in bare.results] == [
        r.model_dump(exclude={"reasons"}) for r in answer.results
    ]


def test_large_and_small_answers_agree(engine: ScoringEngine, scored: ScoredCases) -> None:
    """Above 200 ids the answer is written by pandas, below by the json module: the same results."""
    ids = ["NOBODY", *scored.table.index[::-1].astype(str), "NOBODY-2"]
    assert len(ids) > 1_000
    large = engine.score(ids, T, reasons=False).to_response()
    small: list[ScoredCase] = []
    for start in range(0, len(ids), 150):
        small += engine.score(ids[start : start + 150], T, reasons=False).to_response().results
    assert large.scored == len(ids) - 2 and large.cases_total == len(scored.table)
    assert [r.model_dump() for r in large.results] == [r.model_dump() for r in small]


# -- ScoringEngine.explain ----------------------------------------------------------------------------


def test_explain_contributions_add_up_to_the_margin(
    engine: ScoringEngine, scored: ScoredCases, model: RiskModel
) -> None:
    for person in (str(scored.table.index[0]), str(scored.table.index[len(scored.table) // 3])):
        explained = engine.explain(person, T.isoformat())
        features = [item for family in explained.families for item in family.features]
        assert sorted(item.name for item in features) == sorted(model.feature_names)
        margin = float(model.margin(scored.matrix[scored.rows([person])])[0])
        total = explained.base_value + sum(item.contribution for item in features)
        assert total == pytest.approx(margin, abs=1e-9)
        assert float(model.probability(np.array([total]))[0]) == pytest.approx(explained.score, rel=1e-9)
        case = scored.table.loc[person]
        assert (explained.score, explained.rank) == (pytest.approx(case["score"]), case["rank"])
        assert explained.model_version == VERSION and explained.cases_total == len(scored.table)
        for family in explained.families:
            assert family.contribution == pytest.approx(sum(item.contribution for item in family.features))
            sizes = [abs(item.contribution) for item in family.features]
            assert sizes == sorted(sizes, reverse=True)
        totals = [family.contribution for family in explained.families]
        assert totals == sorted(totals, reverse=True)
        by_name = {item.name: item for item in features}
        assert by_name["current_permit_type"].value == case["permit_type"]
        listed = engine.score([person], T).to_response().results[0].reasons
        assert explained.reasons == listed


def test_explain_refuses_ids_that_are_not_cases(engine: ScoringEngine, scored: ScoredCases) -> None:
    not_a_case = next(p for p in engine.timeline.person_ids if p not in scored.table.index)
    for person, words in (("NOBODY", "not in the data set"), (not_a_case, "is not a case")):
        with pytest.raises(RequestError, match=words) as raised:
            engine.explain(person, T)
        assert raised.value.field == "person_id" and raised.value.status == 404


# -- ScoringEngine.inspection_list -------------------------------------------------------------------


def test_inspection_list_takes_the_top_k_by_rank_with_reasons(
    engine: ScoringEngine, scored: ScoredCases, model: RiskModel
) -> None:
    result = engine.inspection_list(T, k=10, exploration_share=0.0, seed=1)
    response = result.response
    rows = response.rows
    assert result.created and response.model_version == VERSION and response.as_of == T.isoformat()
    assert (response.k, response.n_model, response.n_exploration) == (10, 10, 0)
    assert response.cases_eligible == len(scored.table)
    assert [row.list_rank for row in rows] == list(range(1, 11))
    assert [row.rank for row in rows] == list(range(1, 11))
    assert [row.person_id for row in rows] == scored.table.index[:10].tolist()
    assert all(row.selection == Selection.MODEL and row.propensity == 1.0 for row in rows)
    assert [row.score for row in rows] == pytest.approx(scored.table["score"].iloc[:10].tolist())
    assert rows[0].reasons
    for row in rows:
        assert [(r.feature, pytest.approx(r.contribution)) for r in row.reasons] == _expected_reasons(
            model, scored, row.person_id
        )
    again = engine.inspection_list(T, k=10, exploration_share=0.0, seed=2)
    assert not again.created and again.response.list_id == response.list_id  # the committed list


def test_inspection_list_explores_below_the_models_picks(engine: ScoringEngine, scored: ScoredCases) -> None:
    n = len(scored.table)
    result = engine.inspection_list(T, k=20, exploration_share=0.25, seed=3, design_kind="uniform")
    rows = result.response.rows
    assert (len(rows), result.response.n_model, result.response.n_exploration) == (20, 15, 5)
    assert [row.list_rank for row in rows] == list(range(1, 21))
    picks, drawn = rows[:15], rows[15:]
    assert [row.rank for row in picks] == list(range(1, 16))
    assert all(row.selection == Selection.EXPLORATION for row in drawn)
    assert all(row.rank > 15 for row in drawn) and [r.rank for r in drawn] == sorted(r.rank for r in drawn)
    assert all(row.propensity == pytest.approx(5 / (n - 15)) for row in drawn)  # exact inclusion odds
    assert result.committed.cases["inclusion_probability"].sum() == pytest.approx(20)
    for row in drawn:
        assert row.person_id == scored.table.index[row.rank - 1]


def test_inspection_list_filters_restrict_the_rows(engine: ScoringEngine, scored: ScoredCases) -> None:
    table = scored.table
    prefix = str(table["district"].dropna().str[:2].value_counts().index[0])
    types = ["ITAS_WORK", "ITAP"]
    in_district = table["district"].fillna("").str.startswith(prefix)
    of_type = table["permit_type"].isin(types)
    for district, permit_types, keep in (
        (prefix, None, in_district),
        (None, types, of_type),
        (prefix, types, in_district & of_type),
    ):
        eligible = table[keep]
        assert 10 < len(eligible) < len(table)
        response = engine.inspection_list(
            T, k=10, district=district, permit_types=permit_types, exploration_share=0.0, seed=4
        ).response
        assert response.cases_eligible == len(eligible)
        assert response.filters.district == district
        assert response.filters.permit_types == sorted(permit_types or [])
        assert [row.person_id for row in response.rows] == eligible.index[:10].tolist()
        assert [row.rank for row in response.rows] == eligible["rank"].iloc[:10].tolist()
        assert all(row.reasons or row.rank > 1 for row in response.rows)


# -- dates and the cache ------------------------------------------------------------------------------


def test_resolve_date_accepts_only_the_datas_dates(engine: ScoringEngine, tables: Tables) -> None:
    first, last = tables.first_date().date(), tables.last_date().date()  # type: ignore[union-attr]
    assert engine.resolve_date(None) == last
    assert engine.resolve_date(first) == first and engine.resolve_date(last.isoformat()) == last
    assert engine.resolve_date("2024-06-30") == T
    for outside in (first - dt.timedelta(days=1), last + dt.timedelta(days=1), "2031-01-01"):
        with pytest.raises(RequestError) as raised:
            engine.resolve_date(outside)
        error = raised.value
        assert error.field == "as_of" and error.status == 400
        assert str(first) in error.message and str(last) in error.message and str(outside) in error.message
    with pytest.raises(RequestError, match="as_of"):
        engine.score(["NOBODY"], last + dt.timedelta(days=1))
    with pytest.raises(RequestError, match="as_of"):
        engine.inspection_list(first - dt.timedelta(days=1), k=5)


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[dt.date]:
    """The dates the engine scores from scratch (each call of `score_cases`)."""
    calls: list[dt.date] = []
    real = serving.engine.score_cases

    def counting(model: RiskModel, version: str, timeline: Timeline, as_of: dt.date) -> ScoredCases:
        calls.append(as_of)
        time.sleep(0.02)  # long enough for concurrent requests to overlap
        return real(model, version, timeline, as_of)

    monkeypatch.setattr(serving.engine, "score_cases", counting)
    return calls


def test_cache_keeps_the_most_recently_used_dates(
    model: RiskModel, tables: Tables, computed: list[dt.date]
) -> None:
    engine = ScoringEngine(model, VERSION, tables, ServingSettings(cached_dates=2))
    d1, d2, d3 = T, T - dt.timedelta(days=30), T - dt.timedelta(days=60)
    first = engine.scored(d1)
    engine.scored(d2)
    assert engine.scored(d1) is first and computed == [d1, d2]  # a hit, and d1 is now the most recent
    engine.scored(d3)  # evicts d2, the least recently used
    assert engine.scored(d1) is first and computed == [d1, d2, d3]
    engine.scored(d2)  # scored again: it was evicted; evicts d3
    assert computed == [d1, d2, d3, d2]
    engine.scored(d1)
    engine.scored(d3)
    assert computed == [d1, d2, d3, d2, d3]
    assert len(engine._cache) == 2


def test_concurrent_requests_for_a_date_score_it_once(
    model: RiskModel, tables: Tables, computed: list[dt.date]
) -> None:
    engine = ScoringEngine(model, VERSION, tables, ServingSettings(cached_dates=2))
    results: list[ScoredCases] = []
    threads = [threading.Thread(target=lambda: results.append(engine.scored(T))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert computed == [T] and len(results) == 8 and all(r is results[0] for r in results)


# -- the batch path ---------------------------------------------------------------------------------


def test_batch_ranking_lists_what_the_engine_serves(
    engine: ScoringEngine, model: RiskModel, timeline: Timeline
) -> None:
    listed = ranked_list(model, VERSION, timeline, T, top=5)
    served = engine.score(listed["person_id"].tolist(), T).to_response().results
    assert listed["list_rank"].tolist() == [1, 2, 3, 4, 5]
    assert listed["rank"].tolist() == [r.rank for r in served] == [1, 2, 3, 4, 5]
    assert listed["score"].to_numpy() == pytest.approx([r.score for r in served])
    assert listed["reasons_en"].tolist() == ["; ".join(x.en for x in r.reasons) for r in served]
    assert listed["reasons_id"].tolist() == ["; ".join(x.id for x in r.reasons) for r in served]
    assert set(listed["model_version"]) == {VERSION}


# -- a date without cases ---------------------------------------------------------------------------


def test_a_date_inside_the_data_without_cases_answers_every_id_as_not_a_case(
    model: RiskModel, world_tables: Tables, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """One exit in 2000 opens the data's dates a decade before anyone holds a permit: no case in 2010."""
    crossings = world_tables.border_crossings
    early = crossings.iloc[:1].assign(crossing_date=pd.Timestamp("2000-01-01"), direction="OUT")
    tables = world_tables.replace(border_crossings=pd.concat([early, crossings], ignore_index=True))
    engine = ScoringEngine(model, VERSION, tables, data_dir=tmp_path_factory.mktemp("no-cases"))
    empty = dt.date(2010, 1, 1)
    assert engine.first_date < empty < engine.last_date
    persons = tables.persons["person_id"].astype(str).tolist()
    for ids in (persons[:3], ["NOBODY", *persons[:250]]):  # the json module's answer and pandas'
        for reasons in (True, False):
            answer = engine.score(ids, empty, reasons=reasons).to_response()
            assert (answer.cases_total, answer.scored, answer.not_scored) == (0, 0, len(ids))
            expected = [CaseStatus.NOT_A_CASE] * len(ids)
            if ids[0] == "NOBODY":
                expected[0] = CaseStatus.UNKNOWN_PERSON
            assert [r.status for r in answer.results] == expected
            assert all(r.score is None and r.rank is None and r.reasons == [] for r in answer.results)
    drawn = engine.inspection_list(empty, k=5)
    assert drawn.response.rows == [] and drawn.response.cases_eligible == 0
    with pytest.raises(RequestError, match="is not a case") as raised:
        engine.explain(persons[0], empty)
    assert raised.value.field == "person_id" and raised.value.status == 404
