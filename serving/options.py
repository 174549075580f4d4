"""The service's own settings piece: limits, defaults and switches of the API and the page.

Declared here with their defaults; `serving.settings.ServiceSettings` loads them
(e.g. `TIMPORA_SERVING__PORT`) at the service's edge and passes them down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ServingSettings:
    """The scoring service and the supervisor page (`timpora serve`)."""

    host: str = "127.0.0.1"  # loopback unless an operator decides otherwise
    port: int = 3000
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
    # who may read /metrics: "loopback" callers only (the service binds 127.0.0.1 by default; a
    # Prometheus on the same host), "analyst" keys (Authorization: Bearer), or "public"
    metrics_access: Literal["public", "analyst", "loopback"] = "loopback"
    header_timeout_s: float = 10.0  # a connection must send a request's headers within this (0: no limit)
    follow_interval_s: float = 30.0  # serving the champion: check where its alias points this often; 0: never
