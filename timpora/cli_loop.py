"""`timpora simulate-loop`: the closed loop on simulated worlds, one policy against another.

Wiring only: the loop is imported inside the command so that `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from timpora.cli_common import data_errors, err_console, say, settings, tracking, usage_errors


def simulate_loop(
    out: Annotated[
        Path, typer.Option(help="Directory for the loop's worlds, registries, tables and plot.")
    ] = Path("var/loop"),
    persons: Annotated[
        int | None, typer.Option(min=1000, help="Persons in the simulated world. Default: settings (20,000).")
    ] = None,
    months: Annotated[
        int, typer.Option(min=1, max=24, help="Months the loop runs (the last months of the world).")
    ] = 12,
    capacity: Annotated[
        int | None,
        typer.Option(
            min=1, help="Inspections per month (K). Default: the office's non-tip inspections per month."
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="rule, model, model-uniform, model-boundary or random; repeatable. Default: all five."
        ),
    ] = None,
    exploration_share: Annotated[
        float, typer.Option(help="Share of the list's slots drawn for exploration (model-uniform/-boundary).")
    ] = 0.1,
    seed: Annotated[
        list[int] | None,
        typer.Option(
            help="World seed, repeatable (one world per seed, shared by every policy). Default: settings."
        ),
    ] = None,
    no_retrain: Annotated[bool, typer.Option("--no-retrain", help="Keep the first model all along.")] = False,
    no_tips: Annotated[
        bool, typer.Option("--no-tips", help="Drop the office's tip follow-ups after the loop starts.")
    ] = False,
    false_tips_on: Annotated[
        str | None,
        typer.Option(help="Nationality (ISO alpha-3) the public files false tips about (a biased world)."),
    ] = None,
) -> None:
    """The closed loop: each month list, inspect, ingest the outcomes, retrain, promote; paired over seeds."""
    from loop.run import POLICIES, LoopConfig, render_result, run_loop

    world = settings().simulation

    with usage_errors():
        config = LoopConfig(
            persons=world.persons if persons is None else persons,
            months=months,
            capacity=capacity,
            policies=tuple(policy or POLICIES),
            seeds=tuple(seed or (world.seed,)),
            exploration_share=exploration_share,
            retrain=not no_retrain,
            keep_tips=not no_tips,
            false_tip_nationality=false_tips_on,
            training=settings().training,
        )
    tracking()  # quiet MLflow before the loop trains
    with data_errors():
        result = run_loop(config, out, progress=lambda text: err_console.print(text, highlight=False))
    say(render_result(result))
    say(f"Wrote {out}/loop_*.csv and loop_episodes.png")
