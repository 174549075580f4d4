"""MLflow tracking and the model registry, against a real SQLite store under tmp_path (no mocks).

One store per module (creating the database costs a few seconds); each test
registers under its own model name, so tests do not share registry state.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest

from features.catalog import FEATURE_NAMES, FEATURES_BY_NAME
from features.contract import CONTRACT_VERSION
from models.mlflow_store import (
    CHALLENGER,
    CHAMPION,
    NoModelError,
    TrackingConfig,
    load_risk_model,
    quiet_mlflow,
)
from models.pyfunc import RiskModelPyfunc, pyfunc_input
from models.ranker import RiskModel, feature_matrix
from serving.process import free_port
from training.decisions import Decision, DecisionSettings, promotion_from_tags
from training.model_registry import list_versions, promote, register_run, rollback
from training.offpolicy import Evidence
from training.tracking import (
    MODEL_ID_TAG,
    RAW_METRICS_FILE,
    log_training_run,
    metric_key,
    metric_keys,
    start_experiment,
)

# MLflow's own deprecation noise (SQLAlchemy loader options, a pandas 4 change) is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*")

NAN = math.nan
M = "precision@5%"


# ---------------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("precision@50", "precision_at_50"),
        ("precision@5%", "precision_at_5pct"),
        ("model/precision@5%", "model/precision_at_5pct"),
        ("office_rule/recall@1%", "office_rule/recall_at_1pct"),
        ("pr_auc", "pr_auc"),
        ("ndcg@1,000", "ndcg_at_1_000"),
        ("a//b/", "a/b"),
        (" brier ", "brier"),
    ],
)
def test_metric_key(name: str, key: str) -> None:
    assert metric_key(name) == key


def test_metric_key_rejects_a_name_with_nothing_left() -> None:
    with pytest.raises(ValueError, match="no usable"):
        metric_key("//")


def test_metric_keys_refuse_two_names_that_collide() -> None:
    assert metric_keys({"precision@5%": 1.0, "pr_auc": 2.0}) == {
        "precision@5%": "precision_at_5pct",
        "pr_auc": "pr_auc",
    }
    with pytest.raises(ValueError, match="both become"):
        metric_keys({"precision@5": 1.0, "precision_at_5": 2.0})


def _versus(new: float, old: float, half_width: float = 0.02, sufficient: bool = True) -> Evidence:
    """Challenger - champion evidence with the given interval half-width."""
    estimate = new - old
    return Evidence(
        comparison="challenger - champion",
        source="off-policy",
        estimator="dr",
        estimate=estimate,
        low=estimate - half_width,
        high=estimate + half_width,
        n_effective=120.0,
        n_clusters=6,
        bootstrap_over="persons",
        k=150,
        sufficient=sufficient,
        biased=False,
    )


def _challenger_tags(
    versus: Evidence | None,
    *,
    compared_with: str | None = "1",
    blocks: tuple[str, ...] = (),
) -> dict[str, str]:
    tags = {"fairness_blocks": json.dumps(blocks)}
    if versus is not None:
        tags["versus_champion"] = json.dumps(versus.to_dict())
    if compared_with is not None:
        tags["compared_with"] = compared_with
    return tags


@pytest.mark.parametrize(
    ("tags", "objection"),
    [
        (_challenger_tags(_versus(0.40, 0.35)), None),
        (_challenger_tags(_versus(0.34, 0.35)), None),  # worse, but the interval reaches above -delta
        (_challenger_tags(_versus(0.30, 0.35, 0.03)), None),  # the upper bound -0.02 is not below -delta
        (_challenger_tags(_versus(0.30, 0.35, 0.02)), "lies below -0.02"),
        (_challenger_tags(_versus(0.10, 0.35, 0.3, sufficient=False)), None),  # insufficient: go ahead
        (_challenger_tags(_versus(0.40, 0.35), compared_with="7"), "champion is now v1"),
        (_challenger_tags(_versus(0.40, 0.35), compared_with=None), "not evaluated against champion v1"),
        (_challenger_tags(None), None),  # no evidence at all: go ahead and say so
        (_challenger_tags(_versus(0.40, 0.35), blocks=("fdr of nationality=X grew",)), "fairness: fdr"),
    ],
)
def test_promotion_from_tags(tags: dict[str, str], objection: str | None) -> None:
    decision = promotion_from_tags(tags, "1", DecisionSettings(delta=0.02))
    if objection is None:
        assert decision.go and decision.objections == []
    else:
        assert not decision.go
        assert len(decision.objections) == 1
        assert objection in decision.objections[0]


# ---------------------------------------------------------------- a real store


def _random_features(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Random features with the registry's columns (real categoricals) and a learnable label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    for name in FEATURE_NAMES:
        categories = FEATURES_BY_NAME[name].categories
        if categories is not None:
            codes = rng.integers(-1, len(categories), n)  # -1: missing
            frame[name] = pd.Categorical.from_codes(codes, categories=pd.Index(categories))
    frame.loc[rng.random(n) < 0.1, "days_to_expiry"] = np.nan
    logit = 1.5 * frame["overstay_now"] + frame["person_reports_90d"]
    label = (logit + rng.normal(scale=0.5, size=n) > 0.5).astype(np.int64).to_numpy()
    return frame, label


def _fit(frame: pd.DataFrame, label: np.ndarray, rounds: int) -> RiskModel:
    categorical = [n for n in FEATURE_NAMES if FEATURES_BY_NAME[n].is_categorical]
    data = lgb.Dataset(
        feature_matrix(frame, FEATURE_NAMES),
        label=label,
        feature_name=list(FEATURE_NAMES),
        categorical_feature=categorical,
    )
    params = {"objective": "binary", "num_leaves": 7, "verbosity": -1, "num_threads": 1, "seed": 1}
    booster = lgb.train(params, data, num_boost_round=rounds)
    return RiskModel(
        booster=booster,
        feature_names=FEATURE_NAMES,
        horizon_days=90,
        contract_version=CONTRACT_VERSION,
        objective="binary",
        calibration=(0.9, -0.1),
    )


@pytest.fixture(scope="module")
def matrix() -> pd.DataFrame:
    return _random_features(300, seed=2)[0]


@pytest.fixture(scope="module")
def models() -> tuple[RiskModel, RiskModel]:
    frame, label = _random_features(400, seed=1)
    return _fit(frame, label, rounds=3), _fit(frame, label, rounds=12)


@pytest.fixture(scope="module", autouse=True)
def _leave_mlflow_as_found() -> Iterator[None]:
    """The store functions set MLflow's process-wide URIs (and their environment variables); undo that."""
    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    yield
    mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])  # type: ignore[arg-type]  # None unsets
    mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])  # type: ignore[arg-type]
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> TrackingConfig:
    quiet_mlflow()
    root = tmp_path_factory.mktemp("mlflow")
    config = TrackingConfig(tracking_uri=f"sqlite:///{root}/mlflow.db", artifact_root=root / "artifacts")
    start_experiment(config)
    return config


@pytest.fixture(scope="module")
def runs(store: TrackingConfig, models: tuple[RiskModel, RiskModel], matrix: pd.DataFrame) -> tuple[str, str]:
    """Two logged runs (a 3-round and a 12-round model) that tests register under their own names."""
    return (
        _log(store, models[0], matrix, run_name="small"),
        _log(store, models[1], matrix, run_name="larger"),
    )


@pytest.fixture
def config(store: TrackingConfig, request: pytest.FixtureRequest) -> TrackingConfig:
    """The shared store with a model name of this test's own."""
    return replace(store, model_name="t-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:80])


def _log(config: TrackingConfig, model: RiskModel, matrix: pd.DataFrame, **kwargs: object) -> str:
    return log_training_run(
        config,
        model,
        params={"num_leaves": 7, "objective": "binary", "window": {"train": "2023"}},
        metrics={f"model/{M}": 0.4, "model/precision@50": 0.5, "office_rule/pr_auc": NAN},
        tags={"purpose": "test"},
        artifacts_dir=kwargs.pop("artifacts_dir", None),  # type: ignore[arg-type]
        input_example=matrix,
        **kwargs,  # type: ignore[arg-type]
    )


GO = Decision("register", True, "the model finds more than a random list")


def _summary(new: float, old: float | None = None) -> dict[str, float]:
    return {f"model/{M}": new} | ({} if old is None else {f"champion/{M}": old})


def _register(
    config: TrackingConfig,
    run_id: str,
    new: float,
    *,
    champion: str | None = None,
    old: float | None = None,
    half_width: float = 0.02,
    blocks: list[str] | None = None,
) -> str:
    info = register_run(
        config,
        run_id,
        decision=GO,
        summary=_summary(new, old),
        bias_flags=[],
        champion_version=champion,
        versus_champion=None if old is None else _versus(new, old, half_width),
        fairness_blocks=blocks,
    )
    assert info is not None
    return info.version


def _aliases(config: TrackingConfig) -> dict[str, str]:
    aliases = mlflow.MlflowClient(config.tracking_uri).get_registered_model(config.model_name).aliases
    return {alias: str(version) for alias, version in aliases.items()}


def _version_tags(config: TrackingConfig, version: str) -> dict[str, str]:
    return mlflow.MlflowClient(config.tracking_uri).get_model_version(config.model_name, version).tags


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_log_training_run_records_everything(
    store: TrackingConfig, models: tuple[RiskModel, RiskModel], matrix: pd.DataFrame, tmp_path: Path
) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "model_card.md").write_text("# Model card\n")
    (tmp_path / "plots" / "calibration.txt").write_text("points\n")
    run_id = _log(store, models[0], matrix, artifacts_dir=tmp_path, run_name="logged")
    client = mlflow.MlflowClient(store.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.run_name == "logged"
    assert run.data.metrics["model/precision_at_5pct"] == 0.4
    assert run.data.metrics["model/precision_at_50"] == 0.5
    assert math.isnan(run.data.metrics["office_rule/pr_auc"])
    assert run.data.params["num_leaves"] == "7"
    assert run.data.tags["purpose"] == "test"
    assert run.data.tags["timpora.contract_version"] == CONTRACT_VERSION
    assert run.data.tags[MODEL_ID_TAG]
    logged = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "plots")
    }
    assert {"model_card.md", "plots/calibration.txt", RAW_METRICS_FILE} <= logged
    raw = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/{RAW_METRICS_FILE}")
    assert raw == {f"model/{M}": 0.4, "model/precision@50": 0.5, "office_rule/pr_auc": None}
    # Artefacts land under the configured root, never the current directory.
    assert run.info.artifact_uri.startswith(store.artifact_root.as_uri())


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_log_training_run_nests_under_a_parent_run(
    store: TrackingConfig, models: tuple[RiskModel, RiskModel], matrix: pd.DataFrame
) -> None:
    with mlflow.start_run(experiment_id=start_experiment(store), run_name="sweep") as parent:
        child = _log(store, models[0], matrix, parent_run_id=parent.info.run_id)
        assert mlflow.active_run().info.run_id == parent.info.run_id  # type: ignore[union-attr]
    tags = mlflow.MlflowClient(store.tracking_uri).get_run(child).data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_the_logged_pyfunc_scores_like_the_model(
    store: TrackingConfig, models: tuple[RiskModel, RiskModel], matrix: pd.DataFrame, runs: tuple[str, str]
) -> None:
    model_id = mlflow.MlflowClient(store.tracking_uri).get_run(runs[0]).data.tags[MODEL_ID_TAG]
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model_id}")
    expected = models[0].score(matrix)
    # Over the pyfunc, categoricals travel as text (MLflow's schema has no categorical type).
    np.testing.assert_allclose(pyfunc.predict(pyfunc_input(matrix, FEATURE_NAMES)), expected)
    unwrapped = pyfunc.unwrap_python_model()
    assert isinstance(unwrapped, RiskModelPyfunc)
    assert unwrapped.risk_model.feature_names == FEATURE_NAMES
    np.testing.assert_allclose(unwrapped.risk_model.score(matrix), expected)
    # The schema comes from the registry: every feature column is required, text for categoricals.
    schema = pyfunc.metadata.get_input_schema()
    assert schema.input_names() == list(FEATURE_NAMES)
    types = dict(zip(schema.input_names(), schema.input_types(), strict=True))
    assert (types["sponsor_type"].name, types["overstay_now"].name) == ("string", "double")
    with pytest.raises(mlflow.exceptions.MlflowException, match="missing inputs"):
        pyfunc.predict(pyfunc_input(matrix, FEATURE_NAMES).drop(columns="sponsor_type"))


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_register_promote_and_roll_back(config: TrackingConfig, runs: tuple[str, str]) -> None:
    first = register_run(config, runs[0], decision=GO, summary=_summary(0.30), bias_flags=[])
    assert first is not None
    assert (first.version, first.aliases, first.run_id) == ("1", (CHALLENGER,), runs[0])
    assert _aliases(config) == {CHALLENGER: "1"}
    tags = _version_tags(config, "1")
    assert json.loads(tags["metrics"]) == {f"model/{M}": 0.30}
    assert json.loads(tags["bias_flags"]) == []

    result = promote(config)  # no champion yet: the challenger takes the role
    assert (result.promoted, result.version, result.previous) == (True, "1", None)
    assert _aliases(config) == {CHAMPION: "1"}

    assert _register(config, runs[1], 0.36, champion="1", old=0.31) == "2"
    assert _aliases(config) == {CHAMPION: "1", CHALLENGER: "2"}
    result = promote(config)
    assert (result.promoted, result.version, result.previous, result.reasons) == (True, "2", "1", [])
    assert result.decision is not None and "does not show the challenger worse" in result.decision.sentence
    assert json.loads(_version_tags(config, "2")["promotion_decision"])["go"] is True
    assert _aliases(config) == {CHAMPION: "2"}  # the challenger alias is gone
    assert _version_tags(config, "2")["previous_champion"] == "1"

    back = rollback(config)
    assert (back.promoted, back.version, back.previous) == (True, "1", "2")
    assert _aliases(config) == {CHAMPION: "1"}
    assert _version_tags(config, "1")["rolled_back_from"] == "2"
    assert _version_tags(config, "2")["rolled_back_to"] == "1"
    with pytest.raises(NoModelError, match="nothing to roll back to"):
        rollback(config)  # v1 replaced no earlier champion

    table = list_versions(config)
    assert table["version"].tolist() == [2, 1]
    assert table["aliases"].tolist() == ["", CHAMPION]
    assert table["run_id"].tolist() == [runs[1], runs[0]]
    assert table["gates"].tolist() == ["passed", "passed"]
    assert table[f"model/{M}"].tolist() == [0.36, 0.30]
    assert table["previous_champion"].tolist() == ["1", ""]
    assert table["vs_champion"].tolist() == ["+0.050 [+0.030, +0.070] (off-policy)", ""]
    assert isinstance(table["created"].dtype, pd.DatetimeTZDtype)


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_a_worse_challenger_is_refused(config: TrackingConfig, runs: tuple[str, str]) -> None:
    _register(config, runs[0], 0.35)
    promote(config)
    _register(config, runs[1], 0.30, champion="1", old=0.35)  # -0.05 [-0.07, -0.03]
    result = promote(config, settings=DecisionSettings(delta=0.02))
    assert (result.promoted, result.version, result.previous) == (False, "2", "1")
    assert len(result.reasons) == 1
    assert "[-0.070, -0.030] lies below -0.02" in result.reasons[0]
    assert _aliases(config) == {CHAMPION: "1", CHALLENGER: "2"}
    assert json.loads(_version_tags(config, "2")["promotion_refused"]) == result.reasons
    refused = json.loads(_version_tags(config, "2")["promotion_decision"])
    assert refused["go"] is False and refused["evidence"][0]["high"] == pytest.approx(-0.03)
    assert promote(config, settings=DecisionSettings(delta=0.1)).promoted  # a looser delta lets it through


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_a_blocking_fairness_check_refuses_the_challenger(
    config: TrackingConfig, runs: tuple[str, str]
) -> None:
    _register(config, runs[0], 0.35)
    promote(config)
    _register(config, runs[1], 0.45, champion="1", old=0.35, blocks=["fdr of sex=F grew 1.6x"])
    result = promote(config)
    assert not result.promoted
    assert result.reasons == ["fairness: fdr of sex=F grew 1.6x"]
    assert _aliases(config)[CHAMPION] == "1"


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_a_forced_promotion_needs_and_records_a_reason(config: TrackingConfig, runs: tuple[str, str]) -> None:
    _register(config, runs[0], 0.35)
    promote(config)
    _register(config, runs[1], 0.20, champion="1", old=0.35)
    for reason in (None, "", "   "):
        with pytest.raises(ValueError, match="needs a reason"):
            promote(config, force=True, reason=reason)
    assert _aliases(config) == {CHAMPION: "1", CHALLENGER: "2"}

    result = promote(config, force=True, reason="hold-out month had a data outage")
    assert (result.promoted, result.version, result.previous) == (True, "2", "1")
    assert "lies below" in result.reasons[0]  # what the force overrode
    tags = _version_tags(config, "2")
    assert tags["forced_reason"] == "hold-out month had a data outage"
    assert tags["forced_by"]
    assert tags["forced_at"].endswith("Z")
    assert json.loads(tags["forced_over"]) == result.reasons
    assert tags["previous_champion"] == "1"
    assert _aliases(config) == {CHAMPION: "2"}


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_failing_gates_register_nothing(config: TrackingConfig, runs: tuple[str, str]) -> None:
    refused = "the evidence does not show that the model finds more than a random list"
    decision = Decision("register", False, refused, [], [refused])
    info = register_run(config, runs[0], decision=decision, summary=_summary(0.1), bias_flags=[])
    assert info is None
    tags = mlflow.MlflowClient(config.tracking_uri).get_run(runs[0]).data.tags
    assert tags["registered"] == "false"
    assert json.loads(tags["gate_failures"]) == [refused]
    assert Decision.from_json(tags["decision"]).sentence == refused
    assert list_versions(config).empty
    with pytest.raises(NoModelError, match="no model registered"):
        load_risk_model(config)
    with pytest.raises(NoModelError):
        promote(config)


@pytest.mark.slow  # the shared store costs 5-10 s to create
def test_load_risk_model_gives_back_the_registered_model(
    config: TrackingConfig, runs: tuple[str, str], models: tuple[RiskModel, RiskModel], matrix: pd.DataFrame
) -> None:
    _register(config, runs[0], 0.35)
    with pytest.raises(NoModelError, match="no version with alias 'champion'"):
        load_risk_model(config)
    promote(config)
    _register(config, runs[1], 0.40, champion="1", old=0.35)

    champion, version = load_risk_model(config)
    assert version == "1"
    np.testing.assert_allclose(champion.score(matrix), models[0].score(matrix))
    np.testing.assert_allclose(champion.contributions(matrix), models[0].contributions(matrix))
    assert (champion.horizon_days, champion.contract_version) == (90, CONTRACT_VERSION)

    challenger, version = load_risk_model(config, alias=CHALLENGER)
    assert version == "2"
    np.testing.assert_allclose(challenger.score(matrix), models[1].score(matrix))
    pinned, version = load_risk_model(config, version="2")
    assert version == "2"
    np.testing.assert_allclose(pinned.score(matrix), models[1].score(matrix))
    with pytest.raises(NoModelError, match="no version 9"):
        load_risk_model(config, version="9")


def test_a_missing_store_is_reported_not_created(tmp_path: Path) -> None:
    config = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path}/none.db", artifact_root=tmp_path / "a")
    with pytest.raises(NoModelError, match="no tracking store"):
        load_risk_model(config)
    assert list_versions(config).empty
    assert not (tmp_path / "none.db").exists()


def test_serve_refuses_a_champion_whose_artefact_is_missing(
    tmp_path: Path, models: tuple[RiskModel, RiskModel], matrix: pd.DataFrame
) -> None:
    """Before, the service's worker restarted forever and /readyz hung; now `serve` says why and exits 1."""
    config = TrackingConfig(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_root=tmp_path / "artifacts"
    )
    start_experiment(config)
    _register(config, _log(config, models[0], matrix, run_name="gone"), 0.35)
    assert promote(config).promoted
    shutil.rmtree(tmp_path / "artifacts")
    (tmp_path / "data").mkdir()
    env = {
        **os.environ,
        "TIMPORA_TRACKING_URI": config.tracking_uri,
        "TIMPORA_ARTIFACT_ROOT": str(config.artifact_root),
        "TIMPORA_HOME": str(tmp_path / "home"),
    }
    timpora = str(Path(sys.executable).parent / "timpora")
    done = subprocess.run(
        [timpora, "serve", "--data", str(tmp_path / "data"), "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout[-1000:] + done.stderr[-1000:]
    said = " ".join(done.stderr.split())
    assert "the champion cannot be loaded from the registry" in said and "Traceback" not in said
