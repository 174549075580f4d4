"""A short closed loop (3 months) through the real CLI: the model policy finds more violations than random."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from timpora.cli import app

pytestmark = pytest.mark.slow


def test_short_loop_model_beats_random(tmp_path: Path) -> None:
    out = tmp_path / "loop"
    args = ["simulate-loop", "--out", str(out), "--persons", "12000", "--months", "3", "--capacity", "50"]
    args += ["--policy", "model", "--policy", "random", "--seed", "11"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    months = pd.read_csv(out / "loop_months.csv")
    assert len(months) == 6 and set(months["policy"]) == {"model-explore0.1", "random"}
    assert (months["inspections"] == 50).all()
    totals = pd.read_csv(out / "loop_totals.csv").set_index("policy")
    assert totals.loc["model-explore0.1", "found"] > 2 * totals.loc["random", "found"]
    model_months = months[months["policy"] == "model-explore0.1"]
    assert (model_months["exploration"] == 5).all()  # 10% of 50 slots drawn at random
    log = (out / "model-explore0.1" / "data" / "_ingest" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["rows_added"] for line in log] == [50, 50, 50]  # every month through ingest
    assert (out / "loop_found_per_100.png").stat().st_size > 10_000
    selection = pd.read_csv(out / "loop_selection.csv")
    assert set(selection["attribute"]) == {"nationality", "sex"} and (selection["ratio"] >= 0).all()
    assert "Totals:" in result.output
