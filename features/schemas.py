"""Pandera schemas of the contract tables, generated from `features.contract`.

The schemas check values, not files: they run on frames that loading has
already coerced to `LOADED_DTYPES`. Every check is named after the validation
rule it enforces and carries the message as its description, so a failure maps
straight to an `Issue`; a check on several columns is named `rule:column`, the
column the report should name (or `rule:` for none).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pandera.pandas as pa

from features.contract import DTYPES, Column, Dependency, Kind, Table

# The dtypes of a loaded frame while it is validated: the contract's, except
# booleans, which stay nullable until the null check has run.
LOADED_DTYPES: dict[Kind, str] = {**DTYPES, Kind.BOOL: "boolean"}

# Columns that may be set only when a boolean flag is true: (column, flag).
# Not (yet) in the contract's `Table`; kept here, the only place that needs it.
SET_ONLY_WHEN: dict[str, tuple[tuple[str, str], ...]] = {
    "inspections": (("violation_type", "violation_found"),),
}

# Columns that must be set when a boolean flag is true: (column, flag). A violation
# found must say which (the reverse of `SET_ONLY_WHEN`).
REQUIRED_WHEN_TRUE: dict[str, tuple[tuple[str, str], ...]] = {
    "inspections": (("violation_type", "violation_found"),),
}

# No event of this data set happened before this day: an earlier date is a typo
# or a placeholder (0001-01-01), never a fact.
EARLIEST_DATE = pd.Timestamp("1900-01-01")

# Control characters (C0, DEL and C1): never part of an identifier; a newline or
# a NUL in an id breaks every file and report that shows it.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"

RowCheck = Callable[[pd.DataFrame], pd.Series]


def table_schema(spec: Table) -> pa.DataFrameSchema:
    """The pandera schema of table `spec`: dtypes, nulls, keys, enumerations, ranges, row rules."""
    return pa.DataFrameSchema(
        {col.name: _column_schema(col) for col in spec.columns},
        checks=_row_checks(spec),
        name=spec.name,
    )


def split_check_name(name: str) -> tuple[str, str | None]:
    """(rule, column) of a row check named `rule:column` by `table_schema`."""
    rule, _, column = name.partition(":")
    return rule, column or None


def _column_schema(col: Column) -> pa.Column:
    checks = []
    if col.values is not None:
        allowed = list(col.values)
        checks.append(
            pa.Check(
                lambda s: s.isin(allowed),
                name="unknown_value",
                description=f"not one of {', '.join(allowed)}",
            )
        )
    if col.min_exclusive is not None or col.max_inclusive is not None:
        checks.append(_range_check(col.min_exclusive, col.max_inclusive))
    if col.kind == Kind.ID:
        checks.append(
            pa.Check(
                lambda s: ~s.str.contains(CONTROL_CHARACTERS, regex=True),
                name="control_character",
                description="contains a control character (a line break, a tab or another non-printing one)",
            )
        )
    if col.kind == Kind.DATE:
        checks.append(
            pa.Check(
                lambda s: s >= EARLIEST_DATE,
                name="implausible_date",
                description=f"before {EARLIEST_DATE.date().isoformat()}",
            )
        )
    return pa.Column(
        LOADED_DTYPES[col.kind],
        checks,
        nullable=col.nullable,
        unique=col.unique,
        report_duplicates="all",
        name=col.name,
    )


def _range_check(low: float | None, high: float | None) -> pa.Check:
    def inside(s: pd.Series) -> pd.Series:
        ok = pd.Series(True, index=s.index)
        if low is not None:
            ok &= s > low
        if high is not None:
            ok &= s <= high
        return ok

    bounds = f"({'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
    return pa.Check(inside, name="out_of_range", description=f"outside {bounds}")


def _row_check(rule: str, column: str | None, message: str, passes: RowCheck) -> pa.Check:
    # ignore_na=False: pandera would otherwise drop every row with a null
    # anywhere, which are exactly the rows some of these rules are about.
    return pa.Check(passes, name=f"{rule}:{column or ''}", description=message, ignore_na=False)


def _row_checks(spec: Table) -> list[pa.Check]:
    checks = [_date_order(order.earlier, order.later) for order in spec.date_orders]
    if spec.at_least_one_of:
        checks.append(_at_least_one_of(list(spec.at_least_one_of)))
    checks += [_set_only_when(column, flag) for column, flag in SET_ONLY_WHEN.get(spec.name, ())]
    checks += [_required_when_true(column, flag) for column, flag in REQUIRED_WHEN_TRUE.get(spec.name, ())]
    for dependency in spec.dependencies:
        checks += _dependency_checks(dependency)
    return checks


def _date_order(earlier: str, later: str) -> pa.Check:
    def in_order(df: pd.DataFrame) -> pd.Series:
        return ~(df[later] < df[earlier])  # NaT compares False: a date not set passes

    return _row_check("date_order", later, f"{later} before {earlier}", in_order)


def _at_least_one_of(columns: list[str]) -> pa.Check:
    def any_set(df: pd.DataFrame) -> pd.Series:
        return df[columns].notna().any(axis=1)

    return _row_check("missing_subject", None, f"none of {', '.join(columns)} is set", any_set)


def _set_only_when(column: str, flag: str) -> pa.Check:
    def consistent(df: pd.DataFrame) -> pd.Series:
        return ~(df[column].notna() & df[flag].eq(False).fillna(False))

    return _row_check("inconsistent_outcome", column, f"{column} set while {flag} is false", consistent)


def _required_when_true(column: str, flag: str) -> pa.Check:
    def present(df: pd.DataFrame) -> pd.Series:
        return ~(df[column].isna() & df[flag].eq(True).fillna(False))

    return _row_check("required_when", column, f"missing on rows where {flag} is true", present)


def _dependency_checks(dep: Dependency) -> list[pa.Check]:
    """`required_when`: null where the condition holds; `set_only_when`: set where it does not."""

    def holds(df: pd.DataFrame) -> pd.Series:
        on = df[dep.on]
        return on.notna() if dep.values is None else on.isin(list(dep.values)).fillna(False).astype(bool)

    checks = []
    if dep.required:

        def present(df: pd.DataFrame) -> pd.Series:
            return ~(holds(df) & df[dep.column].isna())

        message = f"missing on rows where {dep.condition}"
        checks.append(_row_check("required_when", dep.column, message, present))
    if dep.only:

        def absent(df: pd.DataFrame) -> pd.Series:
            return ~(~holds(df) & df[dep.column].notna())

        message = f"set on rows where {dep.negation}"
        checks.append(_row_check("set_only_when", dep.column, message, absent))
    return checks
