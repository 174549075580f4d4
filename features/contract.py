"""The input data contract (version 2) in machine-readable form.

This module is the canonical definition of `../shared/data-contract.md`: the eight
required tables and the optional `districts` table, their columns, types,
nullability, closed enumerations, keys and row rules. Loading, validation, the
simulator and the feature pipeline all read it; nothing else may restate a
table's shape.

Version 2 (a v1 data set is a valid v2 data set): `inspections.trigger` gains
`LIST` with the optional column `list_id`; every event table may carry an
optional `recorded_date` (the day the row became known; see `RECORDED_DATE`),
permits an optional `cancelled_recorded_date`; and the optional `districts` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

CONTRACT_VERSION = "2"


class Kind(StrEnum):
    """The logical type of a column; `DTYPES` maps each to its in-memory dtype."""

    ID = "id"
    TEXT = "text"
    ENUM = "enum"
    DATE = "date"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"


# In-memory pandas dtype of each kind after loading. Dates are day-precision
# values kept as datetime64[s] so that far-future sentinels (9999-12-31) fit.
DTYPES: dict[Kind, Any] = {
    Kind.ID: "str",
    Kind.TEXT: "str",
    Kind.ENUM: "str",
    Kind.DATE: "datetime64[s]",
    Kind.INT: "Int64",
    Kind.FLOAT: "float64",
    Kind.BOOL: "bool",
}

SEX = ("F", "M", "X")
SPONSOR_TYPE = ("COMPANY", "INDIVIDUAL", "INSTITUTION")
PERMIT_TYPE = (
    "VOA",
    "VISIT",
    "ITAS_WORK",
    "ITAS_INVESTOR",
    "ITAS_FAMILY",
    "ITAS_STUDY",
    "ITAS_RETIREMENT",
    "ITAP",
)
DIRECTION = ("IN", "OUT")
REPORTER = ("HOTEL", "LANDLORD", "SPONSOR", "SELF")
AGENCY = (
    "POLICE",
    "MILITARY",
    "INTELLIGENCE",
    "NARCOTICS",
    "PROSECUTOR",
    "MANPOWER",
    "RELIGIOUS_AFFAIRS",
    "CUSTOMS",
    "PORT_AUTHORITY",
    "LOCAL_GOV",
    "PUBLIC",
)
REPORT_CATEGORY = ("ILLEGAL_WORK", "PERMIT_MISUSE", "ADDRESS", "PUBLIC_ORDER", "OTHER")
LABOUR_VIOLATION = (
    "NO_RPTKA",
    "UNAPPROVED_POSITION",
    "LEVY_UNPAID",
    "NO_LOCAL_COUNTERPART",
    "OTHER",
)
TRIGGER = ("RANDOM", "TARGETED", "TIP", "ROUTINE", "LIST")
VIOLATION_TYPE = (
    "OVERSTAY",
    "PERMIT_MISUSE",
    "UNAPPROVED_WORK",
    "UNREPORTED_ADDRESS",
    "DOCUMENT_FRAUD",
    "OTHER",
)
ACTION = ("DEPORTATION", "FINE", "WARNING", "NONE")

# Visit-type permits: short stays without a work or residence purpose.
VISIT_PERMIT_TYPES = ("VOA", "VISIT")


@dataclass(frozen=True)
class Column:
    """One column of a table as the contract defines it."""

    name: str
    kind: Kind
    nullable: bool = False
    optional: bool = False  # the column may be absent from the file altogether
    values: tuple[str, ...] | None = None  # closed enumeration, for Kind.ENUM
    unique: bool = False
    references: str | None = None  # "table.column" this foreign key points to
    protected: bool = False  # audit only: never a model feature
    min_exclusive: float | None = None
    max_inclusive: float | None = None
    # "table.column" the values should appear in when that (optional) table is
    # present: a value missing there is a warning, not an error (district codes).
    listed_in: str | None = None

    @property
    def dtype(self) -> Any:
        return DTYPES[self.kind]


@dataclass(frozen=True)
class DateOrder:
    """`later` must be on or after `earlier` wherever both are set."""

    earlier: str
    later: str


@dataclass(frozen=True)
class Dependency:
    """`column` depends on column `on`: required where the condition holds and/or null where it does not.

    The condition is "`on` is one of `values`", or, with `values` None, "`on` is set".
    """

    column: str
    on: str
    values: tuple[str, ...] | None = None
    required: bool = False  # must be set on every row where the condition holds
    only: bool = False  # must be null on every row where it does not

    @property
    def condition(self) -> str:
        """The condition in words, for messages."""
        if self.values is None:
            return f"{self.on} is set"
        return f"{self.on} is {' or '.join(self.values)}"

    @property
    def negation(self) -> str:
        if self.values is None:
            return f"{self.on} is null"
        return f"{self.on} is not {' or '.join(self.values)}"


@dataclass(frozen=True)
class Table:
    """One table of a data set: its columns and the rules that span columns."""

    name: str
    columns: tuple[Column, ...]
    event_date: str | None = None  # the date that places a row in time
    date_orders: tuple[DateOrder, ...] = ()
    at_least_one_of: tuple[str, ...] = ()  # at least one of these must be set per row
    dependencies: tuple[Dependency, ...] = ()
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(col.name for col in self.columns)

    @property
    def key(self) -> str | None:
        """The unique identifier column, if the table has one."""
        for col in self.columns:
            if col.unique:
                return col.name
        return None


def _id(name: str, **kw: object) -> Column:
    return Column(name, Kind.ID, **kw)  # type: ignore[arg-type]


def _enum(name: str, values: tuple[str, ...], **kw: object) -> Column:
    return Column(name, Kind.ENUM, values=values, **kw)  # type: ignore[arg-type]


def _date(name: str, **kw: object) -> Column:
    return Column(name, Kind.DATE, **kw)  # type: ignore[arg-type]


# v2: the day an event table's row became known to the office (optional, nullable).
# As of T a row counts only if its event date <= T and its recorded_date, when
# set, <= T; null or absent means known on the event date.
RECORDED_DATE = "recorded_date"
# v2: the day a permit's cancellation became known (null: known on cancelled_date).
CANCELLED_RECORDED_DATE = "cancelled_recorded_date"
LIST_TRIGGER = "LIST"


def _recorded() -> Column:
    return _date(RECORDED_DATE, nullable=True, optional=True)


def _district(name: str, **kw: object) -> Column:
    return Column(name, Kind.TEXT, listed_in="districts.district_code", **kw)  # type: ignore[arg-type]


PERSONS = Table(
    "persons",
    (
        _id("person_id", unique=True),
        Column("nationality", Kind.TEXT, protected=True),
        _enum("sex", SEX, protected=True),
        Column("birth_year", Kind.INT, protected=True),
    ),
    description="one row per foreign national",
)

SPONSORS = Table(
    "sponsors",
    (
        _id("sponsor_id", unique=True),
        _enum("sponsor_type", SPONSOR_TYPE),
        Column("sector", Kind.TEXT, nullable=True),
        _district("district"),
        _date("registered_date"),
        Column("rptka_quota", Kind.INT, nullable=True),
    ),
    description="one row per sponsor (penjamin)",
)

PERMITS = Table(
    "permits",
    (
        _id("permit_id", unique=True),
        _id("person_id", references="persons.person_id"),
        _id("sponsor_id", nullable=True, references="sponsors.sponsor_id"),
        _enum("permit_type", PERMIT_TYPE),
        Column("visa_index", Kind.TEXT, nullable=True, optional=True),
        Column("position", Kind.TEXT, nullable=True),
        _district("work_district", nullable=True),
        _date("issue_date"),
        _date("expiry_date"),
        _date("cancelled_date", nullable=True),
        _recorded(),
        _date(CANCELLED_RECORDED_DATE, nullable=True, optional=True),
    ),
    event_date="issue_date",
    date_orders=(
        DateOrder("issue_date", "expiry_date"),
        DateOrder("issue_date", "cancelled_date"),
        DateOrder("issue_date", RECORDED_DATE),
        DateOrder("cancelled_date", CANCELLED_RECORDED_DATE),
    ),
    dependencies=(Dependency(CANCELLED_RECORDED_DATE, "cancelled_date", only=True),),
    description="visas and stay permits (izin tinggal)",
)

BORDER_CROSSINGS = Table(
    "border_crossings",
    (
        _id("person_id", references="persons.person_id"),
        _date("crossing_date"),
        _enum("direction", DIRECTION),
        Column("port", Kind.TEXT),
        _recorded(),
    ),
    event_date="crossing_date",
    date_orders=(DateOrder("crossing_date", RECORDED_DATE),),
    description="entries and exits at checkpoints (TPI)",
)

ADDRESS_REPORTS = Table(
    "address_reports",
    (
        _id("person_id", references="persons.person_id"),
        _date("report_date"),
        _district("district"),
        _enum("reporter", REPORTER),
        _recorded(),
    ),
    event_date="report_date",
    date_orders=(DateOrder("report_date", RECORDED_DATE),),
    description="residence reports (APOA, sponsor and self reports)",
)

AGENCY_REPORTS = Table(
    "agency_reports",
    (
        _id("report_id", unique=True),
        _date("report_date"),
        _enum("agency", AGENCY),
        _id("person_id", nullable=True, references="persons.person_id"),
        _id("sponsor_id", nullable=True, references="sponsors.sponsor_id"),
        _enum("category", REPORT_CATEGORY),
        _recorded(),
    ),
    event_date="report_date",
    date_orders=(DateOrder("report_date", RECORDED_DATE),),
    at_least_one_of=("person_id", "sponsor_id"),
    description="reports from partner agencies and the public",
)

LABOUR_VIOLATIONS = Table(
    "labour_violations",
    (
        _id("sponsor_id", references="sponsors.sponsor_id"),
        _date("finding_date"),
        _enum("violation", LABOUR_VIOLATION),
        _recorded(),
    ),
    event_date="finding_date",
    date_orders=(DateOrder("finding_date", RECORDED_DATE),),
    description="Manpower office findings against employers",
)

INSPECTIONS = Table(
    "inspections",
    (
        _id("inspection_id", unique=True),
        _id("person_id", references="persons.person_id"),
        _id("sponsor_id", nullable=True, references="sponsors.sponsor_id"),
        _date("inspection_date"),
        _enum("trigger", TRIGGER),
        Column("violation_found", Kind.BOOL),
        _enum("violation_type", VIOLATION_TYPE, nullable=True),
        _enum("action", ACTION, nullable=True),
        Column(
            "selection_propensity",
            Kind.FLOAT,
            nullable=True,
            optional=True,
            min_exclusive=0.0,
            max_inclusive=1.0,
        ),
        _id("list_id", nullable=True, optional=True),
        _recorded(),
    ),
    event_date="inspection_date",
    date_orders=(DateOrder("inspection_date", RECORDED_DATE),),
    dependencies=(
        Dependency("selection_propensity", "trigger", (LIST_TRIGGER,), required=True),
        Dependency("list_id", "trigger", (LIST_TRIGGER,), required=True, only=True),
    ),
    description="immigration inspections and their outcomes (the labels)",
)

DISTRICTS = Table(
    "districts",
    (
        Column("district_code", Kind.TEXT, unique=True),
        Column("name", Kind.TEXT),
        Column("province", Kind.TEXT, nullable=True),
        Column("office", Kind.TEXT, nullable=True),
        Column("parent_code", Kind.TEXT, nullable=True, references="districts.district_code"),
    ),
    description="names and jurisdiction of district codes (optional table, v2)",
)

# The required tables: every data set holds a file for each (possibly with zero rows).
TABLES: tuple[Table, ...] = (
    PERSONS,
    SPONSORS,
    PERMITS,
    BORDER_CROSSINGS,
    ADDRESS_REPORTS,
    AGENCY_REPORTS,
    LABOUR_VIOLATIONS,
    INSPECTIONS,
)
# Tables whose file may be absent altogether (absent: an empty table).
OPTIONAL_TABLES: tuple[Table, ...] = (DISTRICTS,)
ALL_TABLES: tuple[Table, ...] = TABLES + OPTIONAL_TABLES
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in ALL_TABLES)
TABLES_BY_NAME: dict[str, Table] = {t.name: t for t in ALL_TABLES}
# Event tables: those with an event date, which may carry `recorded_date`.
EVENT_TABLES: tuple[Table, ...] = tuple(t for t in TABLES if t.event_date is not None)

# Columns that are protected attributes (audit only). Anything derived from
# them is protected too; the feature allow-list never names any of them.
PROTECTED_COLUMNS: frozenset[str] = frozenset(
    col.name for t in ALL_TABLES for col in t.columns if col.protected
)

# The evaluation-only ground truth a simulated data set may carry.
TRUTH_DIR = "_truth"
TRUTH = Table(
    "violations",
    (
        _id("person_id"),
        _enum("violation_type", VIOLATION_TYPE),
        _date("start_date"),
        _date("end_date", nullable=True),
    ),
    date_orders=(DateOrder("start_date", "end_date"),),
    description="hidden ground truth: who was in violation, of what, when (evaluation only)",
)


def table(name: str) -> Table:
    """The contract's definition of table `name`."""
    try:
        return TABLES_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; the contract has {', '.join(TABLE_NAMES)}") from None
