"""A printable summary of a simulated world: table sizes, cases, prevalence, inspections and hit rates."""

from __future__ import annotations

import pandas as pd
from rich.console import Group, RenderableType
from rich.table import Table

from features.contract import TRIGGER
from simulator.cases import cases_on, in_violation
from simulator.world import World

WINDOW_DAYS = 90


def world_rates(world: World) -> dict[str, float]:
    """Key rates: cases at the end date, share of them in violation within the last 90 days, hit rates."""
    end = pd.Timestamp(world.config.end)
    cases = cases_on(world.tables, end)
    case_ids = cases.index[cases.to_numpy()]
    violators = in_violation(world.truth, end - pd.Timedelta(days=WINDOW_DAYS - 1), end)
    inspections = world.tables.inspections
    rates: dict[str, float] = {
        "cases_at_end": float(len(case_ids)),
        "violation_share_90d": float(case_ids.isin(violators).mean()) if len(case_ids) else float("nan"),
        "inspections": float(len(inspections)),
        "hit_rate": _mean(inspections["violation_found"]),
    }
    for trigger in TRIGGER:
        chosen = inspections["trigger"] == trigger
        rates[f"share_{trigger}"] = float(chosen.mean()) if len(inspections) else float("nan")
        rates[f"hit_rate_{trigger}"] = _mean(inspections.loc[chosen, "violation_found"])
    return rates


def summarise_world(world: World) -> RenderableType:
    """Tables of the world's size and key rates, for the `simulate` command to print."""
    return Group(_sizes(world), _rates(world), _by_trigger(world))


def _sizes(world: World) -> Table:
    table = Table(title=f"Simulated world: {world.config.persons:,} persons, seed {world.config.seed}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, frame in world.tables.items():
        table.add_row(name, f"{len(frame):,}")
    table.add_row("_truth/violations (evaluation only)", f"{len(world.truth):,}", style="dim")
    return table


def _rates(world: World) -> Table:
    rates = world_rates(world)
    table = Table(title=f"Key rates (end date {world.config.end.isoformat()})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("cases (persons in the country) at the end date", f"{rates['cases_at_end']:,.0f}")
    table.add_row(
        f"cases in violation at any time in the last {WINDOW_DAYS} days", _pct(rates["violation_share_90d"])
    )
    table.add_row("inspections", f"{rates['inspections']:,.0f}")
    table.add_row("hit rate, all inspections", _pct(rates["hit_rate"]))
    table.add_row("hit rate, RANDOM (the unbiased prevalence estimate)", _pct(rates["hit_rate_RANDOM"]))
    return table


def _by_trigger(world: World) -> Table:
    rates = world_rates(world)
    inspections = world.tables.inspections
    year = inspections["inspection_date"].dt.year.rename("year")
    counts = pd.crosstab(year, inspections["trigger"]).reindex(columns=list(TRIGGER), fill_value=0)
    table = Table(title="Inspections per year by trigger, with hit rates")
    table.add_column("year")
    for trigger in TRIGGER:
        table.add_column(trigger, justify="right")
    table.add_column("total", justify="right")
    for y, row in counts.iterrows():
        table.add_row(str(y), *(f"{int(v):,}" for v in row), f"{int(row.sum()):,}")
    table.add_section()
    table.add_row(
        "share", *(_pct(rates[f"share_{t}"]) for t in TRIGGER), _pct(1.0 if len(inspections) else None)
    )
    table.add_row("hit rate", *(_pct(rates[f"hit_rate_{t}"]) for t in TRIGGER), _pct(rates["hit_rate"]))
    return table


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else float("nan")


def _pct(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{100 * value:.1f}%"
