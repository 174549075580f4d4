"""The data set's settings: declared here with their defaults, loaded and passed down by the edges.

`serving.settings.ServiceSettings` loads them as its `dataset` section
(`TIMPORA_DATASET__CONTINUOUS_TABLES`, `TIMPORA_DATASET__OLD_DATE_YEAR`).
"""

from __future__ import annotations

from pydantic import field_validator
from pydantic.dataclasses import dataclass

from features.contract import EVENT_TABLES
from features.schemas import EARLIEST_DATE

DATED_TABLES = tuple(spec.name for spec in EVENT_TABLES)


# pydantic's dataclass, so that `TIMPORA_DATASET__CONTINUOUS_TABLES='["permits"]'` reaches the nested tuple.
@dataclass(frozen=True)
class DatasetSettings:
    """What the data set's dates mean: which tables are fed continuously, and which dates look old."""

    # Tables fed every day or week: the data set is known through the latest date all of them cover
    # (`Tables.known_through`), the default as-of date of every command. Sparse tables (labour findings,
    # agency reports) may be quiet for weeks, and one table's new month must not move every date.
    continuous_tables: tuple[str, ...] = ("border_crossings", "permits", "address_reports")
    # Event dates before this year are warned about (`old_date`): old permits are real, typos too.
    old_date_year: int = 1990

    @field_validator("continuous_tables")
    @classmethod
    def _dated_tables(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if not names:
            raise ValueError("name at least one dated table")
        if unknown := [name for name in names if name not in DATED_TABLES]:
            tables = ", ".join(DATED_TABLES)
            raise ValueError(f"{', '.join(map(repr, unknown))} not a dated table of the contract ({tables})")
        return names

    @field_validator("old_date_year")
    @classmethod
    def _after_earliest(cls, year: int) -> int:
        if year < EARLIEST_DATE.year:
            raise ValueError(f"dates before {EARLIEST_DATE.year} are refused already")
        return year


DEFAULT_DATASET = DatasetSettings()  # the declared defaults; the edges pass the loaded settings
