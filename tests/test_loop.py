"""The honest closed loop: its world, its consequences, its episode count, the office's data, a short run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.lists import read_list
from features.loading import load_valid_tables
from features.tables import Tables
from loop.office import RULE, Office, exploration_design
from loop.run import LoopConfig, paired_differences, render_result, run_loop, totals
from loop.world import (
    LoopState,
    LoopWorld,
    episodes,
    inspect_month,
    month_frame,
    person_codes,
    prepare_loop_world,
    state_tables,
    state_truth,
    to_date,
    visit_month,
)
from simulator.outcomes import DEPORTATION
from simulator.period import NEVER
from simulator.selection import Picks
from simulator.violations import OVERSTAY, Truth
from simulator.world import WorldConfig, simulate_world
from training.settings import TrainingSettings

HORIZON = 90


@pytest.fixture(scope="module")
def loop_world() -> LoopWorld:
    return prepare_loop_world(WorldConfig(persons=4000, seed=5), months=2, horizon_days=HORIZON)


def test_episodes_merge_overlapping_and_touching_intervals_of_a_person() -> None:
    #            person 0: [10, 20] and [15, 30] overlap, [31, 35] touches, [40, 50] is apart
    #            person 1: [12, 14] only (another person never merges)
    truth = Truth(
        person=np.array([0, 0, 0, 0, 1]),
        type=np.array([1, 2, 3, 1, 0]),
        start=np.array([15, 10, 31, 40, 12]),
        end=np.array([30, 20, 35, 50, 14]),
    )
    found = episodes(truth)
    assert found.person.tolist() == [0, 0, 1]
    assert found.start.tolist() == [10, 40, 12]
    assert found.last.tolist() == [35, 50, 14]
    assert found.of(np.array([0, 0, 0, 1, 1]), np.array([33, 38, 45, 12, 15])).tolist() == [0, -1, 1, 2, -1]


def test_loop_world_has_the_full_worlds_office_before_the_loop_and_none_after(loop_world: LoopWorld) -> None:
    full = simulate_world(loop_world.config).tables.inspections
    start = pd.Timestamp(loop_world.start)
    before = full[full["inspection_date"] < start].reset_index(drop=True)
    mine = loop_world.office_frame()
    columns = ["person_id", "inspection_date", "trigger", "violation_found", "violation_type", "action"]
    pd.testing.assert_frame_equal(mine[columns], before[columns])
    assert (full["inspection_date"] >= start).sum() > 0  # the full world's office went on...
    # ...but none of its later consequences exist here: every removal comes from a pre-loop finding.
    first_day = loop_world.months[0][0]
    removals = loop_world.removed[loop_world.removed < NEVER]
    assert len(removals) and removals.max() <= first_day + 30


def test_loop_findings_have_the_simulators_consequences(loop_world: LoopWorld) -> None:
    world, month = loop_world, loop_world.months[0]
    state = LoopState.start(world, 1)
    truth = world.drawn.truth
    day = month[0] + 5
    ongoing = (truth.start <= day) & (day <= state.end) & (state.removed[truth.person] > month[1])
    people = np.unique(
        truth.person[ongoing & world.drawn.presence.contains(truth.person, np.full(len(truth), day))]
    )
    picks = Picks(people, np.full(len(people), day), np.full(len(people), -1))
    end_before = state.end.copy()
    done = inspect_month(world, state, picks, np.full(len(people), 4), np.ones(len(people)), month)
    assert done.found.mean() > 0.6  # all were in violation; detection is 0.5-0.97 by type
    leaves = done.found & ((done.violation == OVERSTAY) | (done.action == DEPORTATION))
    assert leaves.sum() > 0
    gone = done.person[leaves]
    assert (state.removed[gone] >= month[1] + 1).all() and (state.removed[gone] < NEVER).all()
    corrected = (state.end < end_before).sum()
    assert corrected > 0  # fines and warnings put some violations right, from the next month on
    assert (state.end[state.end < end_before] >= month[1]).all()
    # The records the policy sees next: each removed person has left by the removal day, nothing after.
    crossings = state_tables(world, state, world.office_frame()).border_crossings
    ids = world.drawn.person_ids.to_numpy()[gone]
    last = crossings[crossings["person_id"].isin(ids)].groupby("person_id").tail(1).set_index("person_id")
    assert (last.loc[ids, "direction"] == "OUT").all()
    removal = pd.to_datetime(state.removed[gone].astype("datetime64[D]"))
    assert (pd.DatetimeIndex(last.loc[ids, "crossing_date"]) <= removal).all()
    assert (pd.DatetimeIndex(last.loc[ids, "crossing_date"]) == removal).mean() > 0.5
    # A removed person is found in violation no more: inspect them again after the removal.
    later = Picks(gone, state.removed[gone] + 1, np.full(len(gone), -1))
    again = inspect_month(world, state, later, np.full(len(gone), 4), np.ones(len(gone)), world.months[1])
    assert not again.found.any()
    assert state_truth(world, state).end.max() < NEVER + 1


def test_paired_differences_pair_the_same_seed() -> None:
    per_seed = pd.DataFrame(
        {
            "seed": [1, 1, 2, 2, 3, 3],
            "policy": ["a", "b"] * 3,
            "episodes_per_100": [10.0, 8.0, 20.0, 17.0, 30.0, 29.0],
        }
    )
    out = paired_differences(per_seed, ["episodes_per_100"]).iloc[0]
    assert (out["a"], out["b"], out["seeds"]) == ("a", "b", 3)
    assert out["difference"] == pytest.approx(2.0)
    half = 4.303 * 1.0 / np.sqrt(3)  # differences 2, 3, 1: sd 1, t(2) = 4.303
    assert (out["low"], out["high"]) == pytest.approx((2.0 - half, 2.0 + half))


def _assert_same_tables(held: Tables, loaded: Tables) -> None:
    for spec in dataclasses.fields(Tables):
        pd.testing.assert_frame_equal(getattr(held, spec.name), getattr(loaded, spec.name), check_exact=True)


def test_the_office_holds_what_loading_its_data_set_gives(loop_world: LoopWorld, tmp_path: Path) -> None:
    """The office chooses from the data set it holds, never reloading it: it must be what loading gives."""
    world, state = loop_world, LoopState.start(loop_world, 3)
    office = Office(tmp_path / "office", RULE, exploration_design(RULE, 0.1), TrainingSettings())
    office.receive_records(state_tables(world, state, world.office_frame()), first=True)
    _assert_same_tables(office.tables(), load_valid_tables(office.data))
    for m, month in enumerate(world.months):
        chosen = office.choose(to_date(month[0]), 60, m)
        assert chosen.chooser == "office rule" and len(chosen.person_id) == 60
        person = person_codes(world, chosen.person_id)
        done, list_ids = visit_month(
            world, state, person, chosen.trigger, chosen.propensity, chosen.list_id, month, True
        )
        office.ingest_month(month_frame(world, done, list_ids, f"test-{m}"), m + 1, today=to_date(month[1]))
        office.receive_records(state_tables(world, state, world.office_frame()), first=False)
        _assert_same_tables(office.tables(), load_valid_tables(office.data))
    assert office.tables().inspections["inspection_id"].str.startswith("LOOP-test-").sum() >= 120


def test_loop_config_takes_the_world_and_training_defaults() -> None:
    config = LoopConfig()
    assert config.world(3) == dataclasses.replace(WorldConfig(), seed=3)
    assert config.seeds == (WorldConfig().seed,) and config.persons == WorldConfig().persons
    assert config.horizon_days == TrainingSettings().horizon_days and config.horizon_months == 3
    assert LoopConfig(training=TrainingSettings(horizon_days=60)).horizon_months == 2
    with pytest.raises(ValueError, match="unknown policy"):
        LoopConfig(policies=("rule", "oracle"))


@pytest.mark.slow
def test_short_loop_logs_lists_counts_episodes_once_and_retrains(tmp_path: Path) -> None:
    out = tmp_path / "loop"
    config = LoopConfig(
        persons=10_000,
        months=2,
        seeds=(11,),
        policies=("model-boundary", "random"),
        retrain=False,  # retrain after the last month only
    )
    result = run_loop(config, out)
    months = pd.read_csv(out / "loop_months.csv")
    assert len(months) == 4 and set(months["policy"]) == {"model-boundary", "random"}
    k = int(months["capacity"].iloc[0])
    assert (months["inspections"] == k).all()
    # Episodes are counted once: a re-found episode is a repeat, never a new one.
    assert (months["new_episodes"] + months["repeats"] == months["findings"]).all()
    assert (months["tip_inspections"] > 0).any()  # the office's tips go on, reported apart

    data = out / "seed-11" / "model-boundary" / "data"
    inspections = pd.read_parquet(data / "inspections.parquet")
    listed = inspections[inspections["trigger"] == "LIST"]
    assert len(listed) == 2 * k and set(listed["list_id"]) == set(months["list_id"].dropna())
    for list_id, rows in listed.groupby("list_id"):
        committed = read_list(data, str(list_id)).cases.set_index("person_id")
        expected = committed.loc[rows["person_id"], "inclusion_probability"].to_numpy(dtype=float)
        np.testing.assert_allclose(rows["selection_propensity"].to_numpy(dtype=float), expected)
        assert (rows["selection_propensity"] == 1).sum() == k - 2  # 10% of the slots explored
        assert (rows["selection_propensity"] < 1).sum() == 2
    loop_rows = inspections[inspections["inspection_id"].str.startswith("LOOP-")]
    assert set(loop_rows["trigger"]) <= {"LIST", "TIP"}  # RANDOM only for uniform draws over all cases
    found = listed[listed["violation_found"]]
    new = months.loc[months["policy"] == "model-boundary", "new_episodes"].sum()
    assert new <= found["person_id"].nunique() <= len(found)

    random_data = out / "seed-11" / "random" / "data"
    random_rows = pd.read_parquet(random_data / "inspections.parquet")
    loop_rows = random_rows[random_rows["inspection_id"].str.startswith("LOOP-")]
    assert not (loop_rows["trigger"] == "LIST").any()
    assert (loop_rows.loc[loop_rows["trigger"] == "RANDOM", "selection_propensity"] < 0.05).all()

    log = (data / "_ingest" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2 and all(json.loads(line)["rows_added"] >= k for line in log)
    decisions = pd.read_csv(out / "loop_decisions.csv")
    mine = decisions[decisions["policy"] == "model-boundary"]
    assert mine["month"].tolist() == [0, 2]  # the first model, and the retrain after the last month
    assert mine["registered"].all() and mine["promoted"].isin([True, False]).all()
    assert mine["decision"].notna().all()  # the sentence that decided, from the data
    assert mine["truth_challenger"].between(0, 1).all()
    final = pd.read_csv(out / "loop_final_models.csv")
    assert (
        set(final["policy"]) == {"model-boundary", "random"}
        and final["truth_precision_common"].between(0, 1).all()
    )
    assert (out / "loop_episodes.png").stat().st_size > 10_000
    assert "Per policy" in render_result(result)
    per_seed = totals(months)
    assert set(per_seed["policy"]) == {"model-boundary", "random"}
