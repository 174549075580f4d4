"""Every arrow runs down: the import contracts in pyproject.toml hold, and they catch an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["root_packages"])


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_layers_hold() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout and " 0 broken" in done.stdout


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    """Inference importing training (what models/scoring.py once did) fails the check, naming the line."""
    for package in _packages():
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    scoring = tmp_path / "models" / "scoring.py"
    scoring.write_text("import training.metrics  # an upward import\n" + scoring.read_text())
    done = _lint_imports(tmp_path)
    assert done.returncode != 0
    assert "models.scoring -> training.metrics" in done.stdout
    assert "BROKEN" in done.stdout


def test_the_service_settings_contract_names_every_module_below_the_constructor() -> None:
    """import-linter checks only the modules the contract lists: a new serving module must be in it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [contract] = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if "serving.settings" in c.get("forbidden_modules", [])
    ]
    modules = {f"serving.{p.stem}" for p in (ROOT / "serving").glob("*.py") if p.stem != "__init__"}
    assert set(contract["source_modules"]) == modules - {"serving.service", "serving.settings"}
