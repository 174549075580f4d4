"""The data set's "known through" date (issue 13): one table's new month does not move every date.

A small simulated world (2,000 persons, 18 months, a fraction of a second) to
which a month of inspections is appended alone, as `timpora ingest` would:
the inspections then run a month ahead of permits, crossings and address
reports. The known-through date stays at the others' last date, and it is
the default date of `timpora rank`, of the scoring engine and of the page's
options; `timpora validate` shows every table's last date and names the table
that runs ahead. The `rank` and engine tests score with the live service's
champion (trained once per session in tests/conftest.py).

Also here: the `old_date_year` setting reaching validate, and the simulator's
exact birth years that let the `before_birth` rule be exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import LiveService
from typer.testing import CliRunner, Result

from features.settings import DatasetSettings
from features.tables import Tables, run_ahead_warning, write_tables
from features.validation import check_birth_years
from models.mlflow_store import TrackingConfig, load_risk_model
from serving.engine import ScoringEngine
from serving.settings import ServiceSettings
from simulator.world import WorldConfig, simulate_world
from timpora.cli import app
from timpora.cli_common import settings

WORLD = WorldConfig(persons=2_000, seed=5, start=dt.date(2023, 1, 1), end=dt.date(2024, 6, 30))
END = pd.Timestamp(WORLD.end)  # every table of the simulated world is fed up to the period's end
AHEAD = pd.Timedelta(days=31)  # the month of inspections ingested alone
Cli = Callable[..., Result]


def with_inspections_ahead(tables: Tables) -> Tables:
    """The world plus its last month of inspections again, a month later, with new ids."""
    inspections = tables.inspections
    last_month = inspections[inspections["inspection_date"] > END - AHEAD]
    later = last_month.assign(
        inspection_id="NEXT-" + last_month["inspection_id"].astype(str),
        inspection_date=last_month["inspection_date"] + AHEAD,
        recorded_date=last_month["recorded_date"] + AHEAD,
    )
    return tables.replace(inspections=pd.concat([inspections, later], ignore_index=True))


@pytest.fixture(scope="module")
def world() -> Tables:
    return simulate_world(WORLD).tables


@pytest.fixture(scope="module")
def ahead(world: Tables) -> Tables:
    return with_inspections_ahead(world)


@pytest.fixture(scope="module")
def ahead_dir(ahead: Tables, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("inspections_ahead")
    write_tables(ahead, out, "parquet")
    return out


@pytest.fixture
def timpora(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """The CLI in process, with `TIMPORA_*` variables set for the call (the settings are loaded anew)."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        settings.cache_clear()
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})

    yield run
    settings.cache_clear()  # the next test loads the settings of its own environment


def service_store(live_service: LiveService) -> dict[str, str]:
    """The live service's MLflow store, where its champion is registered."""
    return {name: live_service.env[name] for name in ("TIMPORA_TRACKING_URI", "TIMPORA_ARTIFACT_ROOT")}


# -- the date --------------------------------------------------------------------------------------


def test_known_through_is_the_last_date_every_continuously_fed_table_covers(
    world: Tables, ahead: Tables
) -> None:
    last = ahead.last_dates()
    assert last["inspections"] == END + AHEAD
    assert last["permits"] == last["border_crossings"] == last["address_reports"] == END
    assert ahead.last_date() == END + AHEAD  # the refusal range still reaches the new month
    continuous = DatasetSettings().continuous_tables
    assert ahead.known_through(continuous) == END
    assert world.known_through(continuous) == world.last_date() == END  # nothing ahead: no change
    # Configurable: with inspections among the continuously fed tables nothing runs ahead of them.
    assert ahead.known_through((*continuous, "inspections")) == END
    assert ahead.known_through(("inspections",)) == END + AHEAD
    # A continuous table without rows says nothing about how far the data reaches: it is skipped.
    no_addresses = ahead.replace(address_reports=ahead.address_reports.iloc[:0])
    assert no_addresses.last_dates()["address_reports"] is None
    assert no_addresses.known_through(continuous) == END
    with pytest.raises(ValueError, match="persons"):
        ahead.known_through(("persons",))


def test_the_run_ahead_warning_names_each_table_and_its_last_date(ahead: Tables) -> None:
    last = ahead.last_dates()
    warning = run_ahead_warning(last, END)
    assert warning is not None
    assert warning.startswith(f"inspections (to {(END + AHEAD).date()}) runs ahead of")
    assert str(END.date()) in warning
    assert "permits" not in warning and "labour_violations" not in warning  # behind or level: not named
    assert run_ahead_warning(last, END + AHEAD) is None


def test_the_dataset_settings_are_a_section_of_the_service_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().dataset == DatasetSettings()
    monkeypatch.setenv("TIMPORA_DATASET__CONTINUOUS_TABLES", '["permits", "inspections"]')
    monkeypatch.setenv("TIMPORA_DATASET__OLD_DATE_YEAR", "1975")
    assert ServiceSettings().dataset == DatasetSettings(("permits", "inspections"), 1975)
    with pytest.raises(ValueError, match="'persons' not a dated table"):
        DatasetSettings(continuous_tables=("permits", "persons"))
    with pytest.raises(ValueError, match="before 1900"):
        DatasetSettings(old_date_year=1850)


# -- where the date is the default -----------------------------------------------------------------


def test_validate_prints_each_tables_last_date_and_the_run_ahead_warning(
    ahead_dir: Path, timpora: Cli
) -> None:
    run = timpora("validate", str(ahead_dir))
    assert run.exit_code == 0, run.output
    out = run.output
    assert f"inspections        {(END + AHEAD).date()}\n" in out
    assert f"permits            {END.date()}  (continuously fed)" in out
    assert f"Known through: {END.date()}" in out
    assert f"Warning: inspections (to {(END + AHEAD).date()}) runs ahead of" in out


def test_validate_takes_the_old_date_year_from_the_settings(
    world: Tables, tmp_path: Path, timpora: Cli
) -> None:
    permits = world.permits.copy()
    born_early = world.persons.loc[world.persons["birth_year"] < 1960, "person_id"].iloc[0]
    row = int(np.flatnonzero(permits["person_id"].to_numpy() == born_early)[0])
    permits.loc[row, "issue_date"] = pd.Timestamp("1985-05-01")
    write_tables(world.replace(permits=permits), tmp_path, "parquet")
    default = timpora("validate", str(tmp_path))
    assert default.exit_code == 0, default.output
    message = "dated before 1990 (possible, but check it is not a typo), found 1985-05-01"
    assert f"WARNING permits.issue_date [old_date] {message}: 1 row (row {row + 1})" in default.output
    assert "Warning:" not in default.output  # nothing runs ahead
    earlier = timpora("validate", str(tmp_path), env={"TIMPORA_DATASET__OLD_DATE_YEAR": "1980"})
    assert earlier.exit_code == 0, earlier.output
    assert "old_date" not in earlier.output and "valid: 8 tables" in earlier.output


def test_rank_defaults_to_the_known_through_date(
    ahead_dir: Path, live_service: LiveService, timpora: Cli
) -> None:
    run = timpora("rank", str(ahead_dir), "--top", "3", env=service_store(live_service))
    assert run.exit_code == 0, run.output
    assert f"Ranked cases as of {END.date()} " in run.output
    moved = timpora(
        "rank", str(ahead_dir), "--top", "3", env={"TIMPORA_DATASET__CONTINUOUS_TABLES": '["inspections"]'}
    )
    assert moved.exit_code == 0, moved.output
    assert f"Ranked cases as of {(END + AHEAD).date()} " in moved.output


def test_the_engine_and_the_page_default_to_the_known_through_date(
    ahead: Tables, live_service: LiveService
) -> None:
    store = service_store(live_service)
    tracking = TrackingConfig(
        tracking_uri=store["TIMPORA_TRACKING_URI"], artifact_root=Path(store["TIMPORA_ARTIFACT_ROOT"])
    )
    model, version = load_risk_model(tracking, alias="champion")
    engine = ScoringEngine(model, version, ahead)
    assert engine.known_through == END.date()
    assert engine.resolve_date(None) == END.date()
    assert engine.score(["P0000001"], None).to_response().as_of == END.date().isoformat()
    ahead_date = (END + AHEAD).date()
    assert engine.resolve_date(ahead_date.isoformat()) == ahead_date  # still a date one may ask for
    options = engine.options()
    assert (options.known_through, options.last_date) == (
        END.date().isoformat(),
        (END + AHEAD).date().isoformat(),
    )
    only_inspections = ScoringEngine(model, version, ahead, dataset=DatasetSettings(("inspections",)))
    assert only_inspections.resolve_date(None) == (END + AHEAD).date()


# -- exact birth years -----------------------------------------------------------------------------


def test_a_date_in_the_year_before_the_birth_year_is_refused() -> None:
    persons = pd.DataFrame({"person_id": ["A"], "birth_year": pd.array([2000], dtype="Int64")})
    dates = pd.Series(["1999-12-31", "2000-01-01"], dtype="datetime64[s]")
    frames = {
        "persons": persons,
        "border_crossings": pd.DataFrame({"person_id": ["A", "A"], "crossing_date": dates}),
    }
    [before] = check_birth_years(frames, set())
    assert (before.rule, before.rows, before.count) == ("before_birth", (1,), 1)
    assert "1999-12-31 (born 2000)" in before.message


def test_simulated_birth_years_are_exact() -> None:
    """No row of a simulated person lies in a year before their birth year, children's first permits
    included (the period starts mid-year, as the old `start year - whole years of age` got wrong)."""
    tables = simulate_world(
        WorldConfig(persons=6_000, seed=3, start=dt.date(2021, 7, 15), end=dt.date(2022, 6, 30))
    ).tables
    born = tables.persons.set_index("person_id")["birth_year"]
    for name, column in (
        ("permits", "issue_date"),
        ("border_crossings", "crossing_date"),
        ("inspections", "inspection_date"),
    ):
        frame = tables[name]
        year = frame[column].dt.year.to_numpy()
        assert (year >= born.reindex(frame["person_id"]).to_numpy()).all(), name
    assert check_birth_years({"persons": tables.persons, "permits": tables.permits}, set()) == []


def test_ingest_shows_the_dates_and_warns_when_its_table_runs_ahead(
    world: Tables, ahead: Tables, tmp_path: Path, timpora: Cli
) -> None:
    data = tmp_path / "data"
    write_tables(world, data, "parquet")
    new_month = ahead.inspections[ahead.inspections["inspection_id"].astype(str).str.startswith("NEXT-")]
    month_file = tmp_path / "next-month.parquet"
    new_month.to_parquet(month_file, index=False)
    today = (END + AHEAD).date().isoformat()
    run = timpora("ingest", str(data), str(month_file), "--table", "inspections", "--today", today)
    assert run.exit_code == 0, run.output
    assert f"added {len(new_month):,}" in run.output
    assert f"Known through: {END.date()}" in run.output
    assert f"Warning: inspections (to {(END + AHEAD).date()}) runs ahead of" in run.output
    again = timpora("ingest", str(data), str(month_file), "--table", "inspections", "--today", today)
    assert again.exit_code == 0 and "Known through" not in again.output  # nothing written, nothing moved
