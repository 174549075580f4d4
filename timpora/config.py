"""Configuration in one place: defaults that run on a laptop, read once at the edge."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PROJECT_DIR = Path(__file__).resolve().parents[1]  # the checkout: var/ (data, registry, keys) lives here


@dataclass(frozen=True)
class SimulationDefaults:
    """The embedded world `make run` simulates."""

    persons: int = 20_000
    seed: int = 7
    start: dt.date = dt.date(2022, 1, 1)
    end: dt.date = dt.date(2026, 6, 30)


@dataclass(frozen=True)
class TrainingDefaults:
    horizon_days: int = 90  # label window: a violation found within H days after T
    stride_days: int = 30  # spacing of training as-of dates
    max_train_dates: int = 12
    capacities: tuple[int | str, ...] = (50, 100, 500, "1%", "5%", "10%")
    main_capacity: str = "10%"  # the % list size reports and the labelled-view audit use
    # The office's inspections per horizon: decisions are taken at this list size. None: estimated
    # from the data as the mean number of inspections per horizon over the last year.
    capacity: int | None = None
    seed: int = 7
    # Decisions (register, promote): go ahead unless the evidence shows harm of more than `delta`
    # (precision at the operational capacity). Evidence is insufficient below `min_ess` effective
    # cases in a compared top k, or with an interval wider than `max_interval_width`.
    delta: float = 0.02
    min_ess: float = 30.0
    max_interval_width: float = 0.2
    bootstrap_draws: int = 1_000
    fairness_tolerance: float = 0.1  # a challenger's error-rate disparity may grow by this factor
    bias_bounds: tuple[float, float] = (0.8, 1.25)  # four-fifths convention
    shap_sample: int = 2_000  # test cases explained for global importance (about 2 ms each)


@dataclass(frozen=True)
class ServingDefaults:
    """The scoring service and the supervisor page (`timpora serve`)."""

    host: str = "127.0.0.1"  # loopback unless an operator decides otherwise
    port: int = 3000
    data_dir: str = "var/demo"  # the data set served, relative to the project
    keys_file: str = "var/serving/keys.json"  # hashed API keys with their roles
    audit_log: str = "var/serving/audit.jsonl"  # append-only record of every scoring request
    max_ids: int = 10_000  # person ids per /score request
    max_k: int = 1_000  # cases per inspection list (each listed case gets reasons, about 0.5 ms)
    default_k: int = 50
    exploration_share: float = 0.1  # list slots drawn at random from the rest, for unbiased labels
    max_exploration_share: float = 0.5
    exploration_design: Literal["boundary", "uniform"] = "boundary"  # see models.listing.ExplorationDesign
    boundary_share: float = 2 / 3  # of the exploration slots drawn just below the model's picks
    boundary_depth: float = 4.0  # the boundary stratum ends at rank boundary_depth * k (the rest: uniform)
    max_body_bytes: int = 2 * 1024 * 1024  # 10,000 ids of 64 characters fit with room to spare
    n_reasons: int = 3
    cached_dates: int = 4  # scored dates kept in memory (about 1 s to score 30k cases)
    reasons_cached: int = 20_000  # cases per date whose reasons stay in memory (about 5 KB each)
    max_concurrency: int = 64  # requests in flight; beyond it BentoML answers 503 (the client retries)
    access_log: bool = False  # BentoML's per-request log; the audit log records every scoring request
    request_timeout_s: int = 60


@dataclass(frozen=True)
class DriftDefaults:
    """Population stability of the served cases against the champion's training cases (`timpora drift`)."""

    psi_moderate: float = 0.1  # PSI at or above this: moderate shift (the usual credit-scoring convention)
    psi_large: float = 0.25  # at or above this: large shift, the model is scoring a different population
    bins: int = 10  # quantile bins of a numeric feature, cut on the reference cases
    warn_level: Literal["moderate", "large"] = "large"  # the service and the page warn from this level on
    worst: int = 3  # features named in the summary
    features_for_level: int = 3  # features that must reach a level (or the scores must) to set it
    # Training dates the service's start-up drift check recomputes (spread over the window). All 12 took
    # 19.4 s and +790 MiB at 100k cases per date; 3 took 4.5 s and no extra peak (bench world, 350k persons).
    service_reference_dates: int | None = 3


@dataclass(frozen=True)
class Settings:
    simulation: SimulationDefaults = field(default_factory=SimulationDefaults)
    training: TrainingDefaults = field(default_factory=TrainingDefaults)
    serving: ServingDefaults = field(default_factory=ServingDefaults)
    drift: DriftDefaults = field(default_factory=DriftDefaults)


SETTINGS = Settings()
