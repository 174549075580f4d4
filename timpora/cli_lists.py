"""`timpora lists`, `timpora outcomes-template` and `timpora assign`: the committed lists of a data set.

Wiring only: the store lives in `features.lists`, imported inside the commands
so that `--help` stays fast. Data is printed with markup off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from timpora.cli_common import fail, say


def lists(
    data: Annotated[Path, typer.Argument(help="Data set directory whose committed lists to show.")],
    all_lists: Annotated[
        bool, typer.Option("--all", help="Show superseded lists too (they are never deleted).")
    ] = False,
) -> None:
    """The committed inspection lists of a data set: id, as-of date, k, model version, status, outcomes."""
    import pandas as pd

    from features.lists import read_lists, read_outcomes

    if not data.is_dir():
        fail(f"no data set at {data}")
    committed = read_lists(data, include_superseded=all_lists)
    if not committed:
        say(f"No committed lists in {data}" + ("." if all_lists else " (--all shows superseded ones)."))
        return
    outcomes = read_outcomes(data, committed).set_index("list_id")
    table = pd.DataFrame(
        {
            "list_id": [c.list_id for c in committed],
            "as_of": [c.as_of.isoformat() for c in committed],
            "k": [c.k for c in committed],
            "model": [c.model_version for c in committed],
            "design": [f"{c.design.get('kind')} {float(c.design.get('share', 0)):.0%}" for c in committed],
            "explored": [c.n_exploration for c in committed],
            "status": [c.status for c in committed],
            "visited": outcomes["visited"].to_numpy(),
            "found": outcomes["found"].to_numpy(),
            "not_visited": outcomes["not_visited"].to_numpy(),
            "created": [c.created_at[:16] for c in committed],
        }
    )
    arms = [c.extra.get("arm") for c in committed]
    if any(arms):  # lists of a randomised comparison with the office rule
        table.insert(4, "arm", [arm or "-" for arm in arms])
    say(table.to_string(index=False))
    for c in committed:
        if c.redraw_reason:
            say(f"{c.list_id} re-drew {c.replaces or 'no earlier list'}: {c.redraw_reason}")
        if c.status == "superseded":
            by = f"by {c.superseded_by}" if c.superseded_by else "(withdrawn)"
            say(f"{c.list_id} superseded {by}: {c.supersede_reason or ''}")
    if any(arms):
        say(f"Randomised comparison: {_randomised_line(data)}")


def _randomised_line(data: Path) -> str:
    """The randomised comparison of the data set's lists, in words (`Evidence.describe()`)."""
    from features.loading import load_tables
    from training.evidence import randomised_comparison

    tables = load_tables(data).tables
    if tables is None:
        return "the data set does not pass validation (see `timpora validate`)"
    evidence = randomised_comparison(data, tables)
    if evidence is None:
        return "no outcomes yet from lists assigned to an arm"
    return evidence.describe()


def assign(
    data: Annotated[Path, typer.Argument(help="Data set directory whose lists the assignment governs.")],
    by: Annotated[
        str, typer.Option(help="The unit assigned: 'month' (YYYY-MM) or 'district' (code prefix).")
    ],
    unit: Annotated[
        list[str], typer.Option("--unit", help="A month or district to assign; repeat for each unit.")
    ],
    seed: Annotated[int, typer.Option(help="Seed of the random assignment (logged).")],
    reason: Annotated[str, typer.Option(help="Why the assignment is made (logged).")],
) -> None:
    """Assign months or districts at random to the office rule's list or the model's list.

    Half of the units go to each arm, shuffled with the seed; the assignment is
    logged in DATA/_lists/assignments.jsonl and a unit is assigned only once.
    Lists issued afterwards for a unit are ranked by its arm and record it, and
    `timpora lists DATA` estimates model minus rule from their outcomes.
    """
    import pandas as pd

    from features.assignment import AssignmentError
    from features.assignment import assign as assign_units

    if by not in ("month", "district"):
        fail(f"--by must be 'month' or 'district', not {by!r}")
    if not data.is_dir():
        fail(f"no data set at {data}")
    try:
        made = assign_units(data, "month" if by == "month" else "district", unit, seed, reason)
    except AssignmentError as exc:
        fail(str(exc))
    table = pd.DataFrame({by: list(made.units), "arm": list(made.arms)}).sort_values(by)
    say(table.to_string(index=False))
    say(f"Assignment {made.assignment_id} (seed {made.seed}, by {made.created_by}): {made.reason}")


def outcomes_template(
    data: Annotated[Path, typer.Argument(help="Data set directory holding the list.")],
    list_id: Annotated[str, typer.Argument(help="The committed list (see `timpora lists DATA`).")],
    out: Annotated[Path, typer.Option(help="CSV file to write the template to.")],
) -> None:
    """Write a committed list's cases as an inspections file to fill in, then `timpora ingest DATA FILE`.

    Prefilled: inspection_id, person_id, sponsor_id, trigger LIST, list_id and
    selection_propensity. For each case fill `visited` (true or false); for a
    visited case inspection_date, violation_found, violation_type and action;
    for a case not visited, `not_visited_reason`. Ingest adds the visited cases
    as inspections and records the others on the list.
    """
    from features.contract import TABLES_BY_NAME
    from features.lists import SUPERSEDED, UnknownListError, outcomes_template, read_list
    from features.loading import FORMATS, load_table_file

    try:
        committed = read_list(data, list_id)
    except UnknownListError as exc:
        fail(str(exc))
    if committed.status == SUPERSEDED:
        fail(
            f"list {list_id} was superseded by {committed.superseded_by or 'nothing'}: use the list in force"
        )
    paths = [p for p in (data / f"permits.{fmt}" for fmt in FORMATS) if p.exists()]
    permits = load_table_file(paths[0], TABLES_BY_NAME["permits"]).frame if paths else None
    template = outcomes_template(committed, permits)
    out.parent.mkdir(parents=True, exist_ok=True)
    template.to_csv(out, index=False)
    say(
        f"Wrote {len(template):,} cases of list {list_id} ({committed.as_of}, k={committed.k}) to {out}. "
        f"Fill visited (true/false) and the outcomes, then: timpora ingest {data} {out}"
    )
