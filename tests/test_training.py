"""Model tests on a small simulated world: the model beats the baselines, the gate refuses noise,
training is deterministic and never reads the hidden truth, and the alias flow works."""

from __future__ import annotations

import ast
import re
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from code_reading import docstring_ids

from features.loading import load_valid_tables
from features.timeline import build_timeline
from models.mlflow_store import TrackingConfig, load_risk_model, quiet_mlflow
from models.scoring import ranked_list
from training.model_registry import promote, rollback
from training.train import TrainOptions
from training.truth import load_truth
from training.workflow import run_training

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> TrackingConfig:
    quiet_mlflow()
    store = tmp_path_factory.mktemp("mlflow")
    return TrackingConfig(tracking_uri=f"sqlite:///{store}/mlflow.db", artifact_root=store / "artifacts")


@pytest.fixture(scope="module")
def first_run(small_world_dir: Path, tracking: TrackingConfig):  # type: ignore[no-untyped-def]
    return run_training(small_world_dir, TrainOptions(), tracking, truth=load_truth(small_world_dir))


def test_model_finds_more_true_violations_than_the_office_rule_and_random(first_run) -> None:  # type: ignore[no-untyped-def]
    summary = first_run.result.summary
    model = summary["truth/model/precision@10%"]
    assert model > summary["truth/office_rule/precision@10%"]
    assert model > summary["truth/random/precision@10%"]
    assert first_run.version is not None, first_run.gate_failures


def test_run_logs_reports_and_card(first_run, tracking: TrackingConfig) -> None:  # type: ignore[no-untyped-def]
    import mlflow

    client = mlflow.MlflowClient(tracking.tracking_uri)
    files = {a.path for a in client.list_artifacts(first_run.run_id)}
    expected = {
        "evaluation_report.md",
        "model_card.md",
        "bias_audit.csv",
        "shap_summary.png",
        "calibration.png",
    }
    assert expected <= files
    run = client.get_run(first_run.run_id)
    assert "data_fingerprint" in run.data.params
    assert any(key.startswith("truth/model/precision") for key in run.data.metrics)


def test_alias_flow_and_rank_follows_the_champion(
    first_run,
    small_world_dir: Path,
    tracking: TrackingConfig,  # type: ignore[no-untyped-def]
) -> None:
    assert promote(tracking).promoted
    _, champion = load_risk_model(tracking)
    assert champion == first_run.version
    second = run_training(small_world_dir, TrainOptions(objective="both"), tracking)
    assert second.champion_version == first_run.version  # compared on the same hold-out
    result = promote(tracking, force=True, reason="test: exercise the alias flow")
    assert result.promoted and result.version == second.version
    model, version = load_risk_model(tracking)
    tables = load_valid_tables(small_world_dir)
    as_of = first_run.result.split.test_date
    listed = ranked_list(model, version, build_timeline(tables), as_of, top=5)
    assert set(listed["model_version"]) == {second.version}
    assert rollback(tracking).version == first_run.version
    model, version = load_risk_model(tracking)
    assert version == first_run.version
    listed = ranked_list(model, version, build_timeline(tables), as_of, top=5)
    assert set(listed["model_version"]) == {first_run.version}
    assert listed["reasons_en"].str.len().gt(0).all()


def test_analyst_notebook_runs_against_the_champion(
    first_run,
    small_world_dir: Path,
    tracking: TrackingConfig,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TIMPORA_DATA", str(small_world_dir))
    monkeypatch.setenv("TIMPORA_TRACKING_URI", tracking.tracking_uri)
    monkeypatch.setenv("TIMPORA_ARTIFACT_ROOT", str(tracking.artifact_root))
    notebook = nbformat.read(ROOT / "notebooks" / "01-model-report.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit without outputs"
    )
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "champion: version" in text and "reasons_en" in text


def _shuffled_copy(source: Path, target: Path, seed: int) -> Path:
    shutil.copytree(source, target)
    inspections = pd.read_parquet(target / "inspections.parquet")
    rng = np.random.default_rng(seed)
    found = rng.permutation(inspections["violation_found"].to_numpy())
    inspections["violation_found"] = found
    inspections["violation_type"] = np.where(found, "OTHER", None)
    inspections["action"] = np.where(found, "WARNING", "NONE")
    inspections.to_parquet(target / "inspections.parquet", index=False)
    return target


def test_gate_refuses_a_model_trained_on_shuffled_labels(
    small_world_dir: Path, tmp_path: Path, tracking: TrackingConfig
) -> None:
    shuffled = _shuffled_copy(small_world_dir, tmp_path / "shuffled", seed=3)
    outcome = run_training(shuffled, TrainOptions(), tracking)
    assert outcome.version is None
    assert "does not show that the model finds more than a random list" in outcome.registration.sentence
    assert outcome.gate_failures == [outcome.registration.sentence]


def test_decisions_and_model_are_the_same_without_the_truth(
    first_run, small_world_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """Training again on the same tables without `_truth/` gives the very same model, the same
    registration decision and the same evidence: the truth is only printed beside it."""
    without_truth = tmp_path / "no_truth"
    shutil.copytree(small_world_dir, without_truth, ignore=shutil.ignore_patterns("_truth"))
    store = tmp_path / "store"
    fresh = TrackingConfig(tracking_uri=f"sqlite:///{store}/mlflow.db", artifact_root=store / "artifacts")
    again = run_training(without_truth, TrainOptions(), fresh)
    assert again.result.model.booster.model_to_string() == first_run.result.model.booster.model_to_string()
    assert again.version is not None and first_run.version is not None
    before, after = first_run.registration, again.registration
    assert (before.go, before.sentence, before.objections) == (after.go, after.sentence, after.objections)
    for with_truth, without in zip(before.evidence, after.evidence, strict=True):
        assert with_truth.truth is not None and without.truth is None
        assert replace(with_truth, truth=None).to_dict() == without.to_dict()
    assert "the simulated truth says" in before.render() and "simulated truth" not in after.render()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _project_packages() -> list[str]:
    """Every package of the project (pyproject's mypy list): the firewall exempts none."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["mypy"]["packages"])


def test_only_evaluation_code_reads_the_truth() -> None:
    """`training.truth` is imported by the edges only (the command line, the closed loop's checks
    beside its decisions), which hand the truth to the evaluation; no other module of any package
    names the truth directory."""
    files = [p for package in _project_packages() for p in sorted((ROOT / package).rglob("*.py"))]
    assert {"simulator", "loop", "timpora"} <= {p.relative_to(ROOT).parts[0] for p in files}
    importers = {str(p.relative_to(ROOT)) for p in files if "training.truth" in _imports(p)}
    # The edges read it and hand it down: the command line's train and retrain, the loop's runner.
    assert importers == {"timpora/cli_models.py", "loop/evaluation.py"}
    # The contract defines the directory, tables writes into it, training.truth reads it.
    allowed = {"features/contract.py", "features/tables.py", "training/truth.py"}
    naming = {str(p.relative_to(ROOT)) for p in files if _mentions_truth(p)}
    assert naming <= allowed, naming - allowed


_TRUTH_PATH = re.compile(r"(?:^|[/\\])_truth(?:[/\\]|$)")


def _mentions_truth(path: Path) -> bool:
    """Code (not docstrings or comments) that names TRUTH_DIR or a path through `_truth`.

    A path is a string without spaces with `_truth` as one of its parts (`"_truth"`,
    `f"{data}/_truth/violations.parquet"`); a message that says where the truth was
    written (`"ground truth in {out}/_truth/ (evaluation only)"`) is not one.
    """
    tree = ast.parse(path.read_text())
    docstrings = docstring_ids(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "TRUTH_DIR":
            return True
        if isinstance(node, ast.alias) and node.name == "TRUTH_DIR":
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
            if _TRUTH_PATH.search(text) and not any(c.isspace() for c in text):
                return True
    return False
