"""How far a data set reaches: each table's last date and the known-through date, for `validate` and `ingest`.

The known-through date (`Tables.known_through`) is the default as-of date of
every command; a table that runs ahead of it is named in a warning, so that a
month of inspections ingested alone does not silently move, or fail to move,
anyone's dates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from timpora.cli_common import say, settings

if TYPE_CHECKING:
    from features.settings import DatasetSettings
    from features.tables import Tables


def data_dates(tables: Tables, dataset: DatasetSettings) -> list[str]:
    """The lines that show each dated table's last date, the known-through date and any run-ahead warning."""
    from features.tables import run_ahead_warning

    last = tables.last_dates()
    width = max(len(name) for name in last)
    lines = ["Last dates:"]
    for name, date in last.items():
        shown = date.date().isoformat() if date is not None else "no dated rows"
        fed = "  (continuously fed)" if name in dataset.continuous_tables else ""
        lines.append(f"  {name:<{width}}  {shown}{fed}")
    known = tables.known_through(dataset.continuous_tables)
    if known is None:
        lines.append("Known through: no date (the data set has no dated rows)")
        return lines
    lines.append(
        f"Known through: {known.date()} (the last date every continuously fed table covers; "
        "the default as-of date)"
    )
    if warning := run_ahead_warning(last, known):
        lines.append(f"Warning: {warning}")
    return lines


def print_data_dates(tables: Tables) -> None:
    """Print each table's last date, the known-through date and any run-ahead warning (`data_dates`)."""
    for line in data_dates(tables, settings().dataset):
        say(line)
