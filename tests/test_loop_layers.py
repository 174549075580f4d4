"""The closed loop's layers: the office side never reaches the truth; only the runner wires the two sides.

The office side (`loop.office`) must not import, however indirectly, the world
side (`loop.world`), the runner's truth checks (`loop.evaluation`), the runner,
the simulator or `training.truth`, and its code must not name the truth (the
`_truth/` folder, its loader or writer). Checked on the import graph of every
project package (grimp), and on the office's own source (ast).
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import grimp
import pytest
from code_reading import docstring_ids

ROOT = Path(__file__).resolve().parents[1]
OFFICE = ("loop.office",)  # the office side: every module of it
WORLD = "loop.world"
RUNNER = "loop.run"
TRUTH = ("loop.world", "loop.evaluation", "loop.run", "simulator", "training.truth")
TRUTH_NAMES = {"TRUTH", "TRUTH_DIR", "write_truth", "load_truth", "truth_labels", "truth_frame", "Truth"}
_TRUTH_PATH = re.compile(r"(?:^|[/\\])_truth(?:[/\\]|$)")


def _packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["mypy"]["packages"])


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph(*_packages(), cache_dir=None)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return _graph()


def truth_reached(graph: grimp.ImportGraph, office: tuple[str, ...] = OFFICE) -> list[str]:
    """Every chain of imports from an office module to a module of the truth side."""
    found = []
    for module in office:
        for upstream in sorted(graph.find_upstream_modules(module)):
            if any(upstream == t or upstream.startswith(f"{t}.") for t in TRUTH):
                chain = graph.find_shortest_chain(importer=module, imported=upstream)
                found.append(" -> ".join(chain or (module, upstream)))
    return found


def _office_files() -> list[Path]:
    return [ROOT / (module.replace(".", "/") + ".py") for module in OFFICE]


def test_every_module_of_the_loop_package_has_a_side() -> None:
    modules = {p.stem for p in (ROOT / "loop").glob("*.py")} - {"__init__"}
    assert modules == {"office", "world", "evaluation", "report", "run"}, "a new loop module: give it a side"


def test_the_office_side_never_reaches_the_truth(graph: grimp.ImportGraph) -> None:
    assert set(OFFICE) <= graph.modules
    assert truth_reached(graph) == []


def test_the_check_catches_an_office_that_reaches_the_truth() -> None:
    graph = _graph()
    graph.add_import(importer="loop.office", imported="features.pipeline")  # harmless
    assert truth_reached(graph) == []
    graph.add_import(importer="models.scoring", imported="simulator.violations")  # reached indirectly
    assert "loop.office -> models.scoring -> simulator.violations" in truth_reached(graph)
    for module in (WORLD, "training.truth"):  # reached directly
        graph = _graph()
        graph.add_import(importer="loop.office", imported=module)
        assert f"loop.office -> {module}" in truth_reached(graph)


def test_only_the_runner_wires_the_world_and_the_office(graph: grimp.ImportGraph) -> None:
    loop_modules = {m for m in graph.modules if m.startswith("loop.")} - {WORLD, *OFFICE}
    both = {
        m
        for m in loop_modules
        if graph.chain_exists(importer=m, imported=WORLD)
        and graph.chain_exists(importer=m, imported=OFFICE[0])
    }
    assert both == {RUNNER}
    assert graph.find_modules_that_directly_import(WORLD) <= {RUNNER}
    assert not graph.chain_exists(importer=WORLD, imported=OFFICE[0])  # the world knows no office


def _names_the_truth(path: Path) -> list[str]:
    """Names of the truth the module's code uses: imported or referred to, or a `_truth` path."""
    tree = ast.parse(path.read_text())
    docstrings = docstring_ids(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.alias) and node.name.split(".")[-1] in TRUTH_NAMES:
            found.append(f"imports {node.name}")
        elif isinstance(node, ast.Name) and node.id in TRUTH_NAMES:
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in TRUTH_NAMES:
            found.append(f"uses .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            is_path = _TRUTH_PATH.search(node.value) and not any(c.isspace() for c in node.value)
            found += [f"names {node.value!r}"] if is_path else []
    return found


@pytest.mark.parametrize("path", _office_files(), ids=lambda p: p.name)
def test_the_office_code_names_no_truth(path: Path) -> None:
    assert _names_the_truth(path) == []


def test_the_name_check_catches_a_truth_read(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        '"""Reads _truth/ (a docstring may say so)."""\n'
        "from features.contract import TRUTH_DIR\n"
        "import pandas as pd\n"
        "def read(data):\n"
        '    return pd.read_parquet(data / "_truth" / "violations.parquet"), data / TRUTH_DIR\n'
    )
    assert sorted(_names_the_truth(sneaky)) == ["imports TRUTH_DIR", "names '_truth'", "uses TRUTH_DIR"]
