"""Where the service finds its data set and which model version it serves (environment first)."""

from __future__ import annotations

import os
from pathlib import Path

from timpora.config import PROJECT_DIR, SETTINGS

DATA_ENV = "TIMPORA_DATA"
MODEL_VERSION_ENV = "TIMPORA_MODEL_VERSION"
BENTOML_HOME = PROJECT_DIR / "var" / "bentoml"


def data_dir() -> Path:
    """The data set served: TIMPORA_DATA, or the demo data set of `make run`."""
    configured = os.environ.get(DATA_ENV)
    return Path(configured) if configured else PROJECT_DIR / SETTINGS.serving.data_dir


def pinned_version() -> str | None:
    """The version in TIMPORA_MODEL_VERSION, or None to serve the champion."""
    return os.environ.get(MODEL_VERSION_ENV) or None
