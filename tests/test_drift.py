"""Drift: the population stability index (PSI) of each feature and of the score, against the training cases.

Code tests on hand-built samples whose PSI is worked out by hand; model tests on
the small world's champion (fixture `live_service`, shared with the HTTP tests):
no drift on its own training window, large drift on a shifted data set and on
another world; the reference cases obey the point-in-time law; `timpora drift`,
MLflow logging, `/model`, `/list_options` and the page's banner (shown on a copy of
the world whose permits were cut short after training, hidden on the world as
known on the last training date).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import LiveService
from exports import as_known_on
from typer.testing import CliRunner

from features.catalog import FEATURES_BY_NAME
from features.loading import load_valid_tables
from features.pipeline import features_from_timeline
from features.tables import Tables, write_tables
from features.timeline import Timeline, build_timeline
from models.drift import (
    DRIFT_FILE,
    PROPORTION_FLOOR,
    DriftReport,
    DriftSettings,
    DriftSummary,
    Level,
    drift_report,
    feature_drift,
    psi,
    psi_level,
    reference_cases,
    sample_dates,
    summarise_drift,
    training_dates,
)
from models.mlflow_store import TrackingConfig, load_risk_model
from models.ranker import RiskModel
from serving.process import free_port, running_service, serve_command
from serving.schemas import ListOptions, ModelInfo
from simulator.world import WorldConfig, simulate_world
from training.tracking import log_drift, start_experiment

RNG_SEED = 3
FLOOR = PROPORTION_FLOOR


def by_hand(expected: list[float], actual: list[float]) -> float:
    """PSI from the shares of each cell, empty cells floored."""
    e, a = np.maximum(expected, FLOOR), np.maximum(actual, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


# -- the index on hand-built samples ----------------------------------------------------------------


@pytest.mark.parametrize(
    "values, by_value",
    [
        (np.random.default_rng(RNG_SEED).normal(size=2_000), False),
        (np.r_[np.zeros(700), np.arange(300.0), [np.nan] * 50], False),  # zero-inflated with missing
        (pd.Categorical(["A", "B", None, "A"] * 50, categories=["A", "B", "C"]), True),
        (np.r_[np.zeros(90), np.ones(10)], True),
    ],
)
def test_identical_samples_have_zero_psi(values: Any, by_value: bool) -> None:
    assert psi(values, values, by_value=by_value) == 0.0


@pytest.mark.parametrize(
    "expected, actual, kwargs, shares_e, shares_a",
    [
        # By value: cells {0}, {1}, missing.
        ([0] * 5 + [1] * 5, [0] * 8 + [1] * 2, {"by_value": True}, [0.5, 0.5, 0], [0.8, 0.2, 0]),
        ([1.0] * 4, [1.0, 1.0, np.nan, np.nan], {"by_value": True}, [1, 0], [0.5, 0.5]),
        # Quantiles of 1..10 with 2 bins: edges 1, 5.5, 10; cells <1, {1}, (1,5.5], (5.5,10], >10, missing.
        (list(range(1, 11)), [11] * 10, {"bins": 2}, [0, 0.1, 0.4, 0.5, 0, 0], [0, 0, 0, 0, 1, 0]),
        (list(range(1, 11)), [1, 2, 3, 4, 5, 6, 7, 8, 9, np.nan], {"bins": 2}, [0, 0.1, 0.4, 0.5, 0, 0],
         [0, 0.1, 0.4, 0.4, 0, 0.1]),
    ],
)  # fmt: skip
def test_psi_matches_the_shares_worked_out_by_hand(
    expected: list[float],
    actual: list[float],
    kwargs: dict[str, Any],
    shares_e: list[float],
    shares_a: list[float],
) -> None:
    assert psi(expected, actual, **kwargs) == pytest.approx(by_hand(shares_e, shares_a), rel=1e-12)


def test_psi_is_about_symmetric() -> None:
    rng = np.random.default_rng(RNG_SEED)
    x, y = rng.normal(0, 1, 5_000), rng.normal(0.3, 1, 5_000)
    forward, backward = psi(x, y), psi(y, x)
    assert 0.05 < forward < 0.25 and forward == pytest.approx(backward, rel=0.25)
    a, b = ["A"] * 60 + ["B"] * 40, ["A"] * 30 + ["B"] * 70
    assert psi(a, b, by_value=True) == pytest.approx(psi(b, a, by_value=True), rel=1e-12)


def test_missing_values_are_a_cell_of_their_own() -> None:
    values = np.arange(1_000.0)
    holes = values.copy()
    holes[::3] = np.nan  # a third missing, the rest spread as before
    assert psi(values, holes) > 0.25
    assert psi(holes, holes.copy()) == 0.0
    assert psi([np.nan] * 10, [np.nan] * 20) == 0.0
    assert psi([np.nan] * 10, [1.0] * 10) == pytest.approx(by_hand([0, 0, 0, 1], [0, 1, 0, 0]))


def test_a_constant_column_shows_a_move_either_way() -> None:
    assert psi([5.0] * 100, [5.0] * 30) == 0.0
    assert psi([5.0] * 100, [6.0] * 100) == pytest.approx(by_hand([0, 1, 0], [0, 0, 1]))
    assert psi([5.0] * 100, [4.0] * 100) == pytest.approx(by_hand([0, 1, 0], [1, 0, 0]))


def test_psi_refuses_what_it_cannot_measure() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        psi([], [1.0])
    with pytest.raises(ValueError, match="bins"):
        psi([1.0], [1.0], bins=0)
    with pytest.raises(TypeError, match="by_value"):
        psi(pd.Categorical(["A"]), pd.Categorical(["A"]))


@pytest.mark.parametrize(
    "value, level",
    [(0.0, Level.STABLE), (0.0999, Level.STABLE), (0.1, Level.MODERATE), (0.2499, Level.MODERATE),
     (0.25, Level.LARGE), (3.0, Level.LARGE)],
)  # fmt: skip
def test_levels_follow_the_configured_thresholds(value: float, level: Level) -> None:
    assert psi_level(value) == level


def _cases(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    permit_types = FEATURES_BY_NAME["current_permit_type"].categories
    assert permit_types is not None
    return pd.DataFrame(
        {
            "days_to_expiry": rng.normal(200, 60, n),
            "current_permit_type": pd.Categorical(
                rng.choice(list(permit_types[:4]), n), categories=list(permit_types)
            ),
            "overstay_now": (rng.random(n) < 0.1).astype(float),
        }
    )


NAMES = ("days_to_expiry", "current_permit_type", "overstay_now")


def test_a_shifted_feature_and_a_dominant_category_are_large() -> None:
    reference = _cases(4_000, seed=1)
    current = reference.copy()
    current["days_to_expiry"] += 3 * reference["days_to_expiry"].std()
    permit_type = reference["current_permit_type"].dtype
    current["current_permit_type"] = pd.Categorical(
        [permit_type.categories[0]] * len(current), dtype=permit_type
    )
    table = feature_drift(reference, current, NAMES)
    assert list(table.columns) == ["feature", "family", "psi", "level"]
    assert table["psi"].is_monotonic_decreasing
    by_name = table.set_index("feature")
    assert by_name.loc["days_to_expiry", "level"] == by_name.loc["current_permit_type", "level"] == "large"
    assert by_name.loc["overstay_now", "psi"] == 0.0 and by_name.loc["overstay_now", "level"] == "stable"
    assert by_name.loc["current_permit_type", "family"] == "permit"
    summary = summarise_drift(table, score_psi=0.02)
    assert summary.level == Level.MODERATE and summary.n_large == 2 and summary.n_moderate == 0
    # One feature alone does not set the level; three large ones, or the scores, do.
    assert summarise_drift(table.head(1), score_psi=0.02).level == Level.STABLE
    three = pd.concat([table, table.head(1).assign(feature="another")], ignore_index=True)
    assert summarise_drift(three, score_psi=0.02).level == Level.LARGE
    assert summarise_drift(table.head(1), score_psi=0.3).level == Level.LARGE
    assert set(summary.worst[:2]) == {"days_to_expiry", "current_permit_type"}


def test_two_samples_of_one_population_are_stable() -> None:
    table = feature_drift(_cases(4_000, seed=1), _cases(4_000, seed=2), NAMES)
    assert table["psi"].max() < 0.02 and set(table["level"]) == {"stable"}


def test_summary_takes_the_largest_of_features_and_score() -> None:
    table = pd.DataFrame(
        {
            "feature": ["a", "b", "c"],
            "family": "",
            "psi": [0.3, 0.12, 0.0],
            "level": ["large", "moderate", "stable"],
        }
    )
    summary = summarise_drift(table, score_psi=0.05, settings=DriftSettings(worst=2))
    assert summary == DriftSummary(0.3, pytest.approx(0.14), 1, 1, 0.05, ("a", "b"), Level.MODERATE)  # type: ignore[arg-type]
    quiet = summarise_drift(table.iloc[2:], score_psi=0.11)
    assert quiet.level == Level.MODERATE and quiet.max_psi == 0.0


def _report(level: Level) -> DriftReport:
    value = {Level.STABLE: 0.01, Level.MODERATE: 0.15, Level.LARGE: 0.6}[level]
    table = pd.DataFrame(
        {"feature": ["days_to_expiry"], "family": "permit", "psi": [value], "level": level.value}
    )
    dates = (dt.date(2025, 1, 1), dt.date(2025, 1, 31))
    return DriftReport(dt.date(2025, 6, 30), dates, 200, 100, table, summarise_drift(table, value))


def test_warning_from_the_configured_level() -> None:
    assert _report(Level.STABLE).warning() is None
    assert _report(Level.MODERATE).warning() is None  # the default threshold is "large"
    assert "somewhat" in str(_report(Level.MODERATE).warning("moderate"))
    text = _report(Level.LARGE).warning()
    assert text and "2025-06-30" in text and "days_to_expiry" in text and "retrain" in text
    assert _report(Level.STABLE).warning("stable") is None  # nothing to warn about


# -- training dates ----------------------------------------------------------------------------------

SPLIT = (
    "train 12 as-of dates 2024-09-08..2025-08-04, validation 3 dates 2025-11-02..2026-01-01, test 2026-04-01"
)
WINDOW = {"train_first": "2024-09-08", "train_last": "2025-08-04", "validation_last": "2026-01-01"}


LISTED = [(dt.date(2024, 9, 8) + dt.timedelta(days=30 * i)).isoformat() for i in range(12)]


@pytest.mark.parametrize(
    "info", [{"window": WINDOW}, {"window": WINDOW | {"train_dates": LISTED}, "split": SPLIT}]
)
def test_training_dates_from_the_listed_dates_or_the_first_and_last(info: dict[str, Any]) -> None:
    dates = training_dates(info)
    assert len(dates) == 12 and dates[0] == dt.date(2024, 9, 8) and dates[-1] == dt.date(2025, 8, 4)
    assert {(b - a).days for a, b in itertools.pairwise(dates)} == {30}


def test_listed_training_dates_are_taken_as_they_are() -> None:
    irregular = ["2025-01-01", "2025-02-15", "2025-03-01"]
    window = {"train_first": "2025-01-01", "train_last": "2025-03-01", "train_dates": irregular}
    assert training_dates({"window": window}) == tuple(dt.date.fromisoformat(d) for d in irregular)


def test_training_dates_fail_clearly() -> None:
    with pytest.raises(ValueError, match="no training window"):
        training_dates({"split": "something else"})
    with pytest.raises(ValueError, match="strides"):
        training_dates({"window": {"train_first": "2025-01-01", "train_last": "2025-01-20"}})


def test_sample_dates_spread_over_the_window() -> None:
    dates = training_dates({"window": WINDOW})
    assert sample_dates(dates, None) == dates and sample_dates(dates, 20) == dates
    picked = sample_dates(dates, 4)
    assert picked == (dates[0], dates[4], dates[7], dates[11])


# -- MLflow ------------------------------------------------------------------------------------------


def test_log_drift_into_the_active_run(tmp_path: Path) -> None:
    report = _report(Level.LARGE)
    with pytest.raises(RuntimeError, match="active MLflow run"):
        log_drift(report)
    config = TrackingConfig(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=tmp_path / "artifacts"
    )
    with mlflow.start_run(experiment_id=start_experiment(config)) as run:
        log_drift(report)
    logged = mlflow.MlflowClient(config.tracking_uri).get_run(run.info.run_id)
    assert logged.data.metrics["drift/max_psi"] == pytest.approx(0.6)
    assert logged.data.metrics["drift/n_large"] == 1
    assert logged.data.metrics["drift/score_psi"] == pytest.approx(0.6)
    assert logged.data.tags["drift.level"] == "large"
    assert logged.data.tags["drift.reference"] == "2 dates 2025-01-01..2025-01-31"
    csv = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=DRIFT_FILE))
    pd.testing.assert_frame_equal(pd.read_csv(csv), report.features)


# -- the champion of the small world (slow: shares the live service's training) -----------------------


@pytest.fixture(scope="module")
def champion(live_service: LiveService) -> RiskModel:
    config = TrackingConfig(
        tracking_uri=live_service.env["TIMPORA_TRACKING_URI"],
        artifact_root=Path(live_service.env["TIMPORA_ARTIFACT_ROOT"]),
    )
    model, version = load_risk_model(config)
    assert version == live_service.model_version and "window" in model.info
    return model


@pytest.fixture(scope="module")
def small_tables(small_world_dir: Path) -> Tables:
    return load_valid_tables(small_world_dir)


@pytest.fixture(scope="module")
def small_timeline(small_tables: Tables) -> Timeline:
    return build_timeline(small_tables)


@pytest.mark.slow
def test_no_drift_on_the_training_window(champion: RiskModel, small_timeline: Timeline) -> None:
    dates = training_dates(champion.info)
    reference = reference_cases(champion, small_timeline)
    assert sorted(set(reference.index.get_level_values("as_of").date)) == list(dates)
    same = drift_report(champion, small_timeline, dates[-1], current=reference, reference=reference)
    assert same.summary.max_psi == 0.0 and same.summary.score_psi == 0.0
    recomputed = features_from_timeline(small_timeline, dates)
    report = drift_report(champion, small_timeline, dates[-1], current=recomputed)
    assert report.summary.max_psi < 0.01 and report.summary.score_psi < 0.01
    assert report.summary.level == Level.STABLE and report.warning() is None
    assert report.reference_dates == dates and report.n_reference == len(reference)


@pytest.mark.slow
def test_reference_cases_ignore_rows_appended_later(champion: RiskModel, small_tables: Tables) -> None:
    last = pd.Timestamp(training_dates(champion.info)[-1])
    pd.testing.assert_frame_equal(
        reference_cases(champion, small_tables), reference_cases(champion, as_known_on(small_tables, last))
    )


def _permits_shortened_after_training(champion: RiskModel, tables: Tables) -> Tables:
    """The tables with every permit issued after the champion's training window valid for 30 days only."""
    last_train = pd.Timestamp(training_dates(champion.info)[-1])
    permits = tables.permits.copy()
    later = permits["issue_date"] > last_train
    permits.loc[later, "expiry_date"] = permits.loc[later, "issue_date"] + pd.Timedelta(days=30)
    cut = later & (permits["cancelled_date"] > permits["expiry_date"])
    permits.loc[cut, "cancelled_date"] = permits.loc[cut, "expiry_date"]
    return tables.replace(permits=permits)


@pytest.mark.slow
def test_permits_shortened_after_training_drift_large(champion: RiskModel, small_tables: Tables) -> None:
    shortened = _permits_shortened_after_training(champion, small_tables)
    as_of = small_tables.last_date().date()  # type: ignore[union-attr]
    before = drift_report(champion, build_timeline(small_tables), as_of).features.set_index("feature")
    after = drift_report(champion, build_timeline(shortened), as_of)
    assert after.summary.max_psi > 0.25 and after.summary.level == Level.LARGE
    moved = after.features.set_index("feature").loc["days_to_expiry", "psi"]
    assert moved > 0.25 and moved > 5 * before.loc["days_to_expiry", "psi"]


@pytest.mark.slow
def test_another_world_drifts_large(champion: RiskModel, small_timeline: Timeline) -> None:
    """A younger world (one year of history, other seed) scored against the small world's training cases."""
    other = simulate_world(
        WorldConfig(persons=3_000, seed=23, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31))
    )
    as_of = dt.date(2025, 12, 31)
    current = features_from_timeline(build_timeline(other.tables), [as_of])
    report = drift_report(
        champion, small_timeline, as_of, current=current, reference=reference_cases(champion, small_timeline)
    )
    assert report.summary.max_psi > 0.25 and report.summary.level == Level.LARGE
    assert report.summary.n_large >= 3 and report.warning()


@pytest.mark.slow
def test_cli_prints_the_drift_table(
    live_service: LiveService, champion: RiskModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from timpora.cli import app

    for name in ("TIMPORA_TRACKING_URI", "TIMPORA_ARTIFACT_ROOT"):
        monkeypatch.setenv(name, live_service.env[name])
    runner = CliRunner()
    last_train = training_dates(champion.info)[-1].isoformat()
    result = runner.invoke(
        app,
        ["drift", str(live_service.data_dir), "--top", "5", "--as-of", last_train],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        f"Drift of model version {live_service.model_version}" in lines[0]
        and f"as of {last_train}" in lines[0]
    )
    header = next(i for i, line in enumerate(lines) if line.split() == ["feature", "family", "psi", "level"])
    rows = [line.split() for line in lines[header + 1 : header + 6]]
    assert all(row[0] in FEATURES_BY_NAME and row[3] in {"stable", "moderate", "large"} for row in rows)
    assert [float(row[2]) for row in rows] == sorted((float(row[2]) for row in rows), reverse=True)
    assert any(line.startswith("Score PSI: ") for line in lines)
    missing = runner.invoke(app, ["drift", str(live_service.data_dir), "--model-version", "999"])
    assert missing.exit_code == 1


# -- the service ------------------------------------------------------------------------------------


def _get(service: LiveService, path: str, role: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {service.keys[role]}"}
    return httpx.get(service.url + path, headers=headers, timeout=60)


@pytest.mark.slow
def test_model_and_list_options_carry_the_drift(live_service: LiveService, small_tables: Tables) -> None:
    info = ModelInfo.model_validate(_get(live_service, "/model", "analyst").json())
    drift = info.drift
    assert drift is not None, live_service.log_path.read_text()[-2000:]
    assert drift.as_of == info.data_last_date == small_tables.last_date().date().isoformat()  # type: ignore[union-attr]
    trained_on = len(training_dates({"window": info.trained_on}))
    sampled = min(trained_on, DriftSettings().service_reference_dates or trained_on)
    assert drift.reference.startswith(f"{sampled} dates ")  # the service samples the training dates
    assert math.isfinite(drift.max_psi) and drift.max_psi >= 0 and drift.score_psi >= 0
    assert drift.level in {level.value for level in Level} and len(drift.worst) == 3
    assert all(name in FEATURES_BY_NAME for name in drift.worst)
    assert (drift.warning is not None) == (drift.level == Level.LARGE)
    options = ListOptions.model_validate(_get(live_service, "/list_options", "supervisor").json())
    assert options.drift_warning == drift.warning


def _serve(live_service: LiveService, tables: Tables, root: Path) -> Iterator[LiveService]:
    """`timpora serve` on other tables, with the live service's champion, keys and settings."""
    data = root / "data"
    write_tables(tables, data, "parquet")
    env = {
        **live_service.env,
        "TIMPORA_AUDIT_LOG": str(root / "audit.jsonl"),
        "BENTOML_HOME": str(root / "bentoml"),
    }
    log_path, port = root / "service.log", free_port()
    with running_service(serve_command(data, port), env, port, log_path) as service:
        yield dataclasses.replace(
            live_service,
            url=service.url,
            audit_path=root / "audit.jsonl",
            data_dir=data,
            env=env,
            log_path=log_path,
        )


@pytest.fixture(scope="module")
def drifted_service(
    live_service: LiveService,
    champion: RiskModel,
    small_tables: Tables,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveService]:
    """The small world with permits cut short after training: the latest cases drift far (score PSI ~1.9)."""
    shortened = _permits_shortened_after_training(champion, small_tables)
    yield from _serve(live_service, shortened, tmp_path_factory.mktemp("drifted_service"))


@pytest.fixture(scope="module")
def undrifted_service(
    live_service: LiveService,
    champion: RiskModel,
    small_tables: Tables,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveService]:
    """The small world as known on the last training date: the latest cases are training cases."""
    last_train = pd.Timestamp(training_dates(champion.info)[-1])
    known = as_known_on(small_tables, last_train)
    yield from _serve(live_service, known, tmp_path_factory.mktemp("undrifted_service"))


def _drift_of(service: LiveService) -> tuple[ModelInfo, ListOptions]:
    info = ModelInfo.model_validate(_get(service, "/model", "analyst").json())
    options = ListOptions.model_validate(_get(service, "/list_options", "supervisor").json())
    return info, options


@contextmanager
def _signed_in_page(service: LiveService) -> Iterator[Any]:
    """The supervisor page in headless chromium, signed in; the drift banner hidden before sign-in."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.fail(f"{chromium} is missing: run `make install` (it installs Debian's chromium)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{service.url}/ui/")
            expect(page.locator("#drift-banner")).to_be_hidden()  # not before sign-in
            page.fill("#api-key", service.keys["supervisor"])
            page.click("#sign-in")
            expect(page.locator("#workspace")).to_be_visible()
            yield page
        finally:
            browser.close()


@pytest.mark.slow
def test_page_shows_the_drift_warning_in_both_languages(drifted_service: LiveService) -> None:
    from playwright.sync_api import expect

    info, options = _drift_of(drifted_service)
    assert info.version == drifted_service.model_version
    log = drifted_service.log_path.read_text()[-2000:]
    assert info.drift is not None and info.drift.level == Level.LARGE, log  # the data forces the warning
    warning = options.drift_warning
    assert warning is not None and warning == info.drift.warning
    with _signed_in_page(drifted_service) as page:
        banner = page.locator("#drift-banner")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("Peringatan")
        expect(banner).to_contain_text(warning)
        page.click("#lang-toggle")
        expect(banner).to_contain_text("Warning: the cases scored now differ")
        page.click("#sign-out")
        expect(banner).to_be_hidden()


@pytest.mark.slow
def test_page_shows_no_drift_banner_without_drift(undrifted_service: LiveService) -> None:
    from playwright.sync_api import expect

    info, options = _drift_of(undrifted_service)
    assert info.drift is not None and info.drift.level != Level.LARGE, (
        info.drift
    )  # the data forces no warning
    assert options.drift_warning is None
    with _signed_in_page(undrifted_service) as page:
        banner = page.locator("#drift-banner")
        expect(page.locator("#as-of")).to_have_value(options.last_date)  # the options have arrived
        expect(banner).to_be_hidden()
        page.click("#lang-toggle")
        expect(banner).to_be_hidden()
