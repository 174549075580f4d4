"""The training settings: declared here with their defaults, loaded and passed down by the edges."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingSettings:
    """How `timpora train` and `retrain` build, evaluate and decide (one place for every default)."""

    horizon_days: int = 90  # label window: a violation found within H days after T
    stride_days: int = 30  # spacing of training as-of dates
    max_train_dates: int = 12
    capacities: tuple[int | str, ...] = (50, 100, 500, "1%", "5%", "10%")
    main_capacity: str = "10%"  # the % list size reports and the labelled-view audit use
    # The office's inspections per horizon: decisions are taken at this list size. None: estimated
    # from the data as the mean number of inspections per horizon over the last year.
    capacity: int | None = None
    seed: int = 7  # every random choice of a run: LightGBM, the random baseline, SHAP sample, bootstrap
    # LightGBM's threads while fitting (the deployment target has two cores; bench/bench_contention.py
    # times other counts). Prediction and TreeSHAP use one: models.ranker.PREDICT_THREADS.
    num_threads: int = 2
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
