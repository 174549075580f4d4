"""Evaluation only: the simulator's hidden ground truth (`_truth/`), where a data set has it.

Only the edges import this module (the command line's train and retrain, the
closed loop's runner, benchmarks): they read the truth and hand it to the
evaluation (`training.workflow.run_training(truth=...)`), which prints what a
list would really find beside a decision and never decides on it. Nothing in
features, models, serving, the loop's office side or the training code reads it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from features.contract import TRUTH, TRUTH_DIR
from features.tables import typed_frame


def load_truth(data_dir: Path) -> pd.DataFrame | None:
    """The ground-truth violation intervals, or None when the data set has none."""
    folder = data_dir / TRUTH_DIR
    for suffix, reader in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        path = folder / f"{TRUTH.name}{suffix}"
        if path.exists():
            return typed_frame(TRUTH, reader(path))
    return None
