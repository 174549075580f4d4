"""Loading: files to typed `Tables`, lossless or not at all.

A tiny hand-built data set is written as CSV and as parquet with the project's
own writer; the loaders must give back exactly the frames that were written.
Then the ways a file can differ from that (other dtypes, extra or absent
columns, broken files) are accepted when nothing is lost and reported when
something would be.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_world import tiny_tables as tiny_world

from features.contract import TABLES, TRUTH_DIR
from features.loading import DataContractError, load_tables, load_valid_tables
from features.tables import Tables, make_tables, write_tables
from features.validation import Issue


def sample_tables() -> Tables:
    day = pd.to_datetime
    return make_tables(
        {
            "persons": pd.DataFrame(
                {
                    "person_id": ["P1", "P2", "P3"],
                    "nationality": ["CHN", "KOR", "NA"],  # "NA" is a value, not a null
                    "sex": ["M", "F", "X"],
                    "birth_year": [1980, 1990, 1975],
                }
            ),
            "sponsors": pd.DataFrame(
                {
                    "sponsor_id": ["S1", "S2"],
                    "sponsor_type": ["COMPANY", "INDIVIDUAL"],
                    "sector": ["C", None],
                    "district": ["3672", "3671"],
                    "registered_date": day(["2010-01-01", "2015-06-01"]),
                    "rptka_quota": pd.array([5, None], dtype="Int64"),
                }
            ),
            "permits": pd.DataFrame(
                {
                    "permit_id": ["K1", "K2", "K3"],
                    "person_id": ["P1", "P2", "P3"],
                    "sponsor_id": ["S1", None, "S2"],
                    "permit_type": ["ITAS_WORK", "VOA", "ITAS_FAMILY"],
                    "visa_index": ["E23", None, None],
                    "position": ["ENG", None, None],
                    "work_district": ["3672", None, None],
                    "issue_date": day(["2022-01-01", "2022-03-01", "2022-02-01"]),
                    "expiry_date": day(["2022-12-31", "2022-03-30", "9999-12-31"]),  # far-future sentinel
                    "cancelled_date": day(pd.Series([None, None, "2022-06-01"])),
                }
            ),
            "border_crossings": pd.DataFrame(
                {
                    "person_id": ["P1", "P2", "P2"],
                    "crossing_date": day(["2022-01-05", "2022-03-01", "2022-03-20"]),
                    "direction": ["IN", "IN", "OUT"],
                    "port": ["CGK", "DPS", "DPS"],
                }
            ),
            "address_reports": pd.DataFrame(
                {
                    "person_id": ["P1"],
                    "report_date": day(["2022-01-06"]),
                    "district": ["3672"],
                    "reporter": ["SPONSOR"],
                }
            ),
            "agency_reports": pd.DataFrame(
                {
                    "report_id": ["R1", "R2"],
                    "report_date": day(["2022-05-01", "2022-05-02"]),
                    "agency": ["POLICE", "MANPOWER"],
                    "person_id": ["P1", None],
                    "sponsor_id": [None, "S1"],
                    "category": ["ADDRESS", "ILLEGAL_WORK"],
                }
            ),
            # labour_violations: zero rows, which is valid.
            "inspections": pd.DataFrame(
                {
                    "inspection_id": ["I1", "I2"],
                    "person_id": ["P1", "P2"],
                    "sponsor_id": ["S1", None],
                    "inspection_date": day(["2022-08-01", "2022-03-15"]),
                    "trigger": ["RANDOM", "TIP"],
                    "violation_found": [True, False],
                    "violation_type": ["UNAPPROVED_WORK", None],
                    "action": ["FINE", "NONE"],
                    "selection_propensity": [0.05, 1.0],
                }
            ),
        }
    )


def written(directory: Path, fmt: str = "parquet") -> Path:
    write_tables(sample_tables(), directory, fmt)  # type: ignore[arg-type]
    return directory


def replace_file(directory: Path, name: str, frame: pd.DataFrame) -> None:
    """Swap one table's file for a parquet file of `frame`, written as pandas writes it."""
    for old in directory.glob(f"{name}.*"):
        old.unlink()
    frame.to_parquet(directory / f"{name}.parquet", index=False)


def errors(result_issues: list[Issue]) -> list[tuple[str, str | None, str | None, tuple[int, ...]]]:
    return [(i.rule, i.table, i.column, i.rows) for i in result_issues if i.severity == "error"]


def assert_tables_equal(left: Tables, right: Tables) -> None:
    for name, frame in left.items():
        pd.testing.assert_frame_equal(frame, right[name], check_exact=True, obj=name)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_valid_data_set_loads_with_contract_dtypes(tmp_path: Path, fmt: str) -> None:
    result = load_tables(written(tmp_path, fmt))
    assert result.report.issues == []
    assert result.report.ok
    assert result.report.rows_per_table == {
        "persons": 3,
        "sponsors": 2,
        "permits": 3,
        "border_crossings": 3,
        "address_reports": 1,
        "agency_reports": 2,
        "labour_violations": 0,
        "inspections": 2,
    }
    assert result.tables is not None
    for spec in TABLES:
        frame = result.tables[spec.name]
        assert list(frame.columns) == list(spec.column_names)
        assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
            col.name: col.dtype for col in spec.columns
        }
    assert_tables_equal(result.tables, sample_tables())
    assert result.tables.persons["nationality"].tolist() == ["CHN", "KOR", "NA"]
    assert result.tables.permits["expiry_date"].iloc[2] == pd.Timestamp("9999-12-31")


def test_csv_and_parquet_of_the_same_data_load_identically(tmp_path: Path) -> None:
    from_csv = load_valid_tables(written(tmp_path / "csv", "csv"))
    from_parquet = load_valid_tables(written(tmp_path / "parquet", "parquet"))
    assert_tables_equal(from_csv, from_parquet)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_shared_tiny_world_round_trips(tmp_path: Path, fmt: str) -> None:
    write_tables(tiny_world(), tmp_path, fmt)  # type: ignore[arg-type]
    assert_tables_equal(load_valid_tables(tmp_path), tiny_world())


@pytest.mark.slow
def test_the_simulated_world_is_valid_and_round_trips_through_csv(
    small_world_dir: Path, tmp_path: Path
) -> None:
    result = load_tables(small_world_dir)
    assert result.report.issues == []
    assert result.tables is not None
    write_tables(result.tables, tmp_path, "csv")
    assert_tables_equal(load_valid_tables(tmp_path), result.tables)


def test_load_valid_tables_raises_with_the_report(tmp_path: Path) -> None:
    data = written(tmp_path)
    (data / "persons.parquet").unlink()
    with pytest.raises(DataContractError) as caught:
        load_valid_tables(data)
    assert errors(caught.value.report.issues) == [("missing_file", "persons", None, ())]
    assert str(caught.value) == caught.value.report.render()


@pytest.mark.parametrize(
    ("name", "path"),
    [("missing_directory", "nowhere"), ("not_a_directory", "persons.parquet")],
)
def test_a_path_that_is_not_a_data_set_directory(tmp_path: Path, name: str, path: str) -> None:
    result = load_tables(written(tmp_path / "data") / path)
    assert result.tables is None
    assert errors(result.report.issues) == [(name, None, None, ())]


# Accepted: conversions that lose nothing.


def test_whole_floats_in_an_int_column_are_integers(tmp_path: Path) -> None:
    # pandas writes a nullable integer column with NaN as float64.
    data = written(tmp_path)
    sponsors = sample_tables().sponsors.assign(rptka_quota=[5.0, np.nan])
    replace_file(data, "sponsors", sponsors)
    tables = load_valid_tables(data)
    assert tables.sponsors["rptka_quota"].dtype == "Int64"
    assert tables.sponsors["rptka_quota"].tolist() == [5, pd.NA]


def test_midnight_timestamps_and_integer_ids_are_accepted(tmp_path: Path) -> None:
    data = written(tmp_path)
    crossings = sample_tables().border_crossings.assign(
        crossing_date=lambda f: f["crossing_date"].astype("datetime64[ns]"),
    )
    replace_file(data, "border_crossings", crossings)
    permits = sample_tables().permits.assign(
        issue_date=lambda f: f["issue_date"].dt.tz_localize("Asia/Jakarta"),  # midnight where recorded
        permit_id=[17, 18, 19],
    )
    replace_file(data, "permits", permits)
    tables = load_valid_tables(data)
    assert_tables_equal(
        tables.replace(permits=tables.permits.assign(permit_id=["K1", "K2", "K3"])), sample_tables()
    )
    assert tables.permits["permit_id"].tolist() == ["17", "18", "19"]


def test_categorical_and_text_columns_from_parquet(tmp_path: Path) -> None:
    data = written(tmp_path)
    inspections = sample_tables().inspections.astype({"trigger": "category", "action": "category"})
    replace_file(data, "inspections", inspections.assign(inspection_date=["2022-08-01", "2022-03-15"]))
    assert_tables_equal(load_valid_tables(data), sample_tables())


def test_extra_columns_warn_and_optional_columns_may_be_absent(tmp_path: Path) -> None:
    data = written(tmp_path, "csv")
    persons = pd.read_csv(data / "persons.csv", dtype=str, keep_default_na=False)
    persons.assign(shoe_size="42").to_csv(data / "persons.csv", index=False)
    inspections = pd.read_csv(data / "inspections.csv", dtype=str, keep_default_na=False)
    inspections.drop(columns="selection_propensity").to_csv(data / "inspections.csv", index=False)
    result = load_tables(data)
    assert result.report.ok and result.tables is not None
    assert [(i.severity, i.rule, i.table, i.column) for i in result.report.issues] == [
        ("warning", "extra_column", "persons", "shoe_size")
    ]
    assert list(result.tables.persons.columns) == ["person_id", "nationality", "sex", "birth_year"]
    assert result.tables.inspections["selection_propensity"].isna().all()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "timpora"), "validate", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "extra_column" in done.stdout and "Traceback" not in done.stdout + done.stderr


def test_csv_conventions(tmp_path: Path) -> None:
    data = written(tmp_path, "csv")
    text = (data / "inspections.csv").read_text(encoding="utf-8")
    text = text.replace("True", "TRUE").replace("False", "0")
    (data / "inspections.csv").write_text("\ufeff" + text.replace("\n", "\r\n"), encoding="utf-8")
    assert_tables_equal(load_valid_tables(data), sample_tables())


def test_other_files_and_the_truth_directory_are_not_read(tmp_path: Path) -> None:
    data = written(tmp_path)
    (data / "notes.txt").write_text("not a table")
    (data / TRUTH_DIR).mkdir()
    (data / TRUTH_DIR / "violations.parquet").write_bytes(b"not parquet either")
    (data / TRUTH_DIR / "persons.parquet").write_bytes(b"nor this")
    assert load_tables(data).report.issues == []


# Rejected: values that would need a guess, and files that cannot be read.


@pytest.mark.parametrize(
    ("table", "column", "values", "rule", "rows"),
    [
        ("sponsors", "rptka_quota", [2.5, np.nan], "wrong_type", (1,)),
        ("sponsors", "rptka_quota", [True, False], "wrong_type", (1, 2)),
        ("sponsors", "registered_date", [20100101, 20150601], "wrong_type", (1, 2)),
        (
            "sponsors",
            "registered_date",
            pd.to_datetime(["2010-01-01 00:00", "2015-06-01 08:30"]),
            "wrong_type",
            (2,),
        ),
        ("sponsors", "registered_date", ["2010-01-01", "2015-6-1"], "unparseable_date", (2,)),
        ("sponsors", "sponsor_id", [1.5, 2.0], "wrong_type", (1,)),
        ("sponsors", "sponsor_type", ["COMPANY", ""], "null_value", (2,)),
        ("inspections", "violation_found", pd.array([True, None], dtype="boolean"), "null_value", (2,)),
        ("inspections", "violation_found", [1, 2], "wrong_type", (2,)),
        ("inspections", "selection_propensity", [0.5, np.inf], "out_of_range", (2,)),
    ],
)
def test_parquet_values_that_do_not_fit(
    tmp_path: Path, table: str, column: str, values: list[object], rule: str, rows: tuple[int, ...]
) -> None:
    data = written(tmp_path)
    frame = sample_tables()[table].copy()
    frame[column] = pd.Series(values)
    replace_file(data, table, frame)
    result = load_tables(data)
    assert result.tables is None
    assert errors(result.report.issues) == [(rule, table, column, rows)]


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"", "unreadable_file"),
        (b"person_id,nationality,sex,birth_year\nP1,CHN,M,1980\nP2,KOR\n", "unreadable_file"),
        ("person_id,nationality,sex,birth_year\nP1,CÔTE,M,1980\n".encode("latin-1"), "unreadable_file"),
        (b"PAR1 this is not parquet", "unreadable_file"),
        (b"person_id,nationality,sex,sex,birth_year\n", "duplicate_column"),
    ],
    ids=["empty", "ragged", "latin-1", "corrupt parquet", "column twice"],
)
def test_files_that_cannot_be_read(tmp_path: Path, content: bytes, rule: str) -> None:
    data = written(tmp_path, "csv")
    suffix = "parquet" if content.startswith(b"PAR1") else "csv"
    (data / "persons.csv").unlink()
    (data / f"persons.{suffix}").write_bytes(content)
    result = load_tables(data)
    problems = errors(result.report.issues)
    assert problems[0][:3] == (rule, "persons", "sex" if rule == "duplicate_column" else None)
    assert all(p[1] != "persons" for p in problems[1:])  # nothing else about the unreadable table
    assert "persons" not in result.report.rows_per_table


def test_both_formats_of_one_table_is_ambiguous(tmp_path: Path) -> None:
    data = written(tmp_path)
    sample_tables().persons.to_csv(data / "persons.csv", index=False)
    assert errors(load_tables(data).report.issues) == [("ambiguous_file", "persons", None, ())]


# Properties: whatever the files hold, loading returns a report.

CONTRACT_COLUMNS = sorted({col.name for spec in TABLES for col in spec.columns})
CELL = st.one_of(
    st.just(""),
    st.text(max_size=12),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["2022-01-01", "2022-02-30", "IN", "true", "P1", "S1", "NA", "\ufeff", '"']),
)


@st.composite
def malformed_csv(draw: st.DrawFn) -> tuple[str, str]:
    """A table's file: any text, or a CSV with some columns dropped, added or shuffled and odd cells."""
    spec = draw(st.sampled_from(TABLES))
    if draw(st.integers(0, 4)) == 0:
        return spec.name, draw(st.text(max_size=200))
    dropped = draw(st.sets(st.sampled_from(spec.column_names), max_size=2))
    extra = draw(st.lists(st.sampled_from([*CONTRACT_COLUMNS, "", "x"]), max_size=2))
    names = draw(st.permutations([c for c in spec.column_names if c not in dropped] + extra))
    rows = draw(st.lists(st.lists(CELL, min_size=len(names), max_size=len(names)), max_size=6))
    frame = pd.DataFrame(rows, columns=pd.Index(names, dtype=object), dtype=object)
    return spec.name, frame.to_csv(index=False)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(malformed_csv(), min_size=1, max_size=3))
def test_malformed_csv_never_raises(files: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = written(Path(tmp), "csv")
        for name, text in files:
            (data / f"{name}.csv").write_text(text, encoding="utf-8", errors="surrogatepass")
        result = load_tables(data)
    assert (result.tables is None) == (not result.report.ok)
    assert result.report.render()


def _column(kind: pa.DataType, values: st.SearchStrategy[object]) -> st.SearchStrategy[pa.Array]:
    return st.lists(st.one_of(st.none(), values), min_size=3, max_size=3).map(lambda v: pa.array(v, kind))


PARQUET_COLUMN = st.one_of(
    _column(pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    _column(pa.uint64(), st.integers(0, 2**64 - 1)),
    _column(pa.float64(), st.floats()),
    _column(pa.string(), st.text(max_size=5)),
    _column(pa.bool_(), st.booleans()),
    _column(pa.date32(), st.dates()),
    _column(pa.timestamp("us", tz="Asia/Jakarta"), st.datetimes()),
    _column(pa.binary(), st.binary(max_size=3)),
    st.just(pa.nulls(3)),
    st.just(pa.array([[1], None, []])),
)


@st.composite
def odd_parquet(draw: st.DrawFn) -> tuple[str, pa.Table]:
    """A table's columns stored as arbitrary arrow types, some missing."""
    spec = draw(st.sampled_from(TABLES))
    columns = {name: draw(PARQUET_COLUMN) for name in spec.column_names if draw(st.integers(0, 9))}
    return spec.name, pa.table(columns or {"x": pa.nulls(3)})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(odd_parquet(), min_size=1, max_size=2))
def test_parquet_of_any_column_types_never_raises(files: list[tuple[str, pa.Table]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = written(Path(tmp), "parquet")
        for name, table in files:
            pq.write_table(table, data / f"{name}.parquet")
        result = load_tables(data)
    assert (result.tables is None) == (not result.report.ok)
