"""Unknown filter values are refused with close valid values, by the same rule in the CLI and the API.

A district filter is a code or code prefix that starts a known district code, or
a name the `districts` table maps to one code; a permit type is a value of the
contract's enumeration. The unit tests use the tiny world (codes 3171, 3672, 3673
and 5103) with a hand-made `districts` table; one HTTP test asks the live service,
and the CLI runs in process with the live service's champion on the tiny world.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import LiveService
from tiny_world import AS_OF, tiny_tables
from typer.testing import CliRunner, Result

from features.contract import PERMIT_TYPE
from features.filters import CheckedFilters, KnownFilters, UnknownFilterError
from features.tables import Tables, write_tables
from features.timeline import build_timeline
from timpora.cli import app
from timpora.cli_common import settings

DISTRICTS = pd.DataFrame(
    [
        ("31", "DKI Jakarta", "DKI Jakarta", None, None),
        ("3171", "Kota Jakarta Selatan", "DKI Jakarta", "Kanim Jakarta Selatan", "31"),
        ("3672", "Kota Cilegon", "Banten", "Kanim Cilegon", None),
        ("3672010", "Ciwandan", "Banten", "Kanim Cilegon", "3672"),
        ("3674", "Kota Tangerang Selatan", "Banten", "Kanim Tangerang", None),
        ("3674020", "Serpong", "Banten", "Kanim Tangerang", "3674"),
        ("5103020", "Serpong", "Bali", "Kanim Denpasar", None),  # the same name twice: ambiguous
    ],
    columns=["district_code", "name", "province", "office", "parent_code"],
)
Cli = Callable[..., Result]


def known(tables: Tables) -> KnownFilters:
    return KnownFilters.of(tables.districts, build_timeline(tables).districts)


@pytest.fixture(scope="module")
def named() -> KnownFilters:
    return known(tiny_tables().replace(districts=DISTRICTS))


@pytest.fixture(scope="module")
def bare() -> KnownFilters:
    return known(tiny_tables())  # no districts table: codes only


def refusal(
    filters: KnownFilters, district: str | None, permit_types: list[str] | None = None
) -> UnknownFilterError:
    with pytest.raises(UnknownFilterError) as raised:
        filters.check(district, permit_types)
    return raised.value


# -- the rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("district", "code"),
    [
        (None, None),
        ("", None),
        ("36", "36"),  # a province prefix
        ("3672", "3672"),
        (" 3672 ", "3672"),
        ("5103", "5103"),
        ("3672010", "3672010"),  # known from the districts table only: valid, may match no case
        ("36740", "36740"),  # a prefix of Serpong's code
        ("Kota Cilegon", "3672"),
        ("kota jakarta selatan", "3171"),  # names case-insensitively
        ("Ciwandan", "3672010"),
    ],
)
def test_known_districts_pass_and_names_become_codes(
    named: KnownFilters, district: str | None, code: str
) -> None:
    assert named.check(district, None) == CheckedFilters(code, ())


def test_an_unknown_district_code_names_the_field_and_the_nearest_codes_at_its_level(
    named: KnownFilters,
) -> None:
    error = refusal(named, "9999")
    assert error.field == "district"
    # No 4-digit code is alike (difflib ratio < 0.5), so the numerically nearest of the five 4-digit ones.
    assert error.message.endswith(
        "close valid values: 5103, 3674 (Kota Tangerang Selatan), 3673, 3672 (Kota Cilegon), "
        "3171 (Kota Jakarta Selatan)"
    )
    assert "'9999'" in error.message
    # A near miss is offered what it resembles: 3679 shares three digits with 3672-3674, two with 3171.
    assert refusal(named, "3679").message.endswith(
        "close valid values: 3672 (Kota Cilegon), 3673, 3674 (Kota Tangerang Selatan), "
        "3171 (Kota Jakarta Selatan)"
    )


def test_an_unknown_district_name_is_refused_with_close_names(
    named: KnownFilters, bare: KnownFilters
) -> None:
    error = refusal(named, "Jakarta Selatan")
    assert error.field == "district"
    assert error.message.split("close valid values: ")[1].startswith("Kota Jakarta Selatan")
    assert "no districts table" not in error.message
    # Without a districts table a name cannot be known: the refusal says to give a code, and lists codes.
    plain = refusal(bare, "Kota Cilegon")
    assert "the data set has no districts table: give a code" in plain.message
    assert plain.message.endswith("close valid values: 3171, 3672, 3673, 5103")


def test_a_name_of_several_districts_asks_for_one_of_their_codes(named: KnownFilters) -> None:
    error = refusal(named, "serpong")
    assert error.field == "district"
    assert error.message.endswith(
        "names 2 districts: give one of their codes, 3674020 (Serpong), 5103020 (Serpong)"
    )


@pytest.mark.parametrize(
    ("permit_types", "hint"),
    [
        (["ITAS_WRK"], "close valid values: ITAS_WORK"),
        (["VISIT", "itas_work"], "close valid values: ITAS_WORK, ITAS_INVESTOR"),  # the enumeration is exact
        (["XYZ"], "close valid values: " + ", ".join(PERMIT_TYPE)),  # nothing alike: every permit type
    ],
)
def test_an_unknown_permit_type_names_the_field_and_the_close_contract_values(
    bare: KnownFilters, permit_types: list[str], hint: str
) -> None:
    error = refusal(bare, None, permit_types)
    assert error.field == "permit_types"
    assert error.message.endswith(hint)
    assert repr(permit_types[-1]) in error.message


def test_known_permit_types_pass_once_each_in_order(bare: KnownFilters) -> None:
    checked = bare.check("36", ["ITAS_STUDY", "VISIT", "ITAS_STUDY"])
    assert checked == CheckedFilters("36", ("ITAS_STUDY", "VISIT"))


def test_the_no_case_sentence_names_the_filters_and_the_date() -> None:
    day = dt.date(2024, 6, 30)
    assert CheckedFilters("3672", ("ITAS_STUDY",)).no_case_sentence(day) == (
        "No case in district 3672 on permit type ITAS_STUDY as of 2024-06-30."
    )
    assert CheckedFilters(None, ("VOA", "VISIT")).no_case_sentence(day) == (
        "No case on permit types VOA, VISIT as of 2024-06-30."
    )
    assert CheckedFilters("51", ()).no_case_sentence(day) == "No case in district 51 as of 2024-06-30."


# -- the API and the CLI --------------------------------------------------------------------------


def test_the_api_refuses_unknown_filters_with_400_and_close_values(live_service: LiveService) -> None:
    headers = {"Authorization": f"Bearer {live_service.keys['supervisor']}"}

    def ask(body: dict[str, object]) -> httpx.Response:
        return httpx.post(f"{live_service.url}/inspection_list", json=body, headers=headers, timeout=60)

    district = ask({"k": 5, "district": "9999"})
    assert district.status_code == 400, district.text
    assert district.json()["field"] == "district"
    hints = district.json()["error"].split("close valid values: ")[1].split(", ")
    assert len(hints) == 5 and all(hint[:4].isdigit() for hint in hints)  # the small world's codes
    permit = ask({"k": 5, "permit_types": ["ITAS_WRK"]})
    assert permit.status_code == 400, permit.text
    assert permit.json()["field"] == "permit_types"
    assert permit.json()["error"].endswith("close valid values: ITAS_WORK")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny_filters")
    write_tables(tiny_tables().replace(districts=DISTRICTS), out, "parquet")
    return out


@pytest.fixture
def timpora(monkeypatch: pytest.MonkeyPatch, live_service: LiveService) -> Iterator[Cli]:
    """The CLI in process with the live service's registry (its champion scores the tiny world)."""
    for name in ("TIMPORA_TRACKING_URI", "TIMPORA_ARTIFACT_ROOT"):
        monkeypatch.setenv(name, live_service.env[name])
    settings.cache_clear()
    yield lambda *args: CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    settings.cache_clear()


def test_rank_exits_2_on_an_unknown_filter_with_the_api_sentence(timpora: Cli, tiny_dir: Path) -> None:
    filters = known(tiny_tables().replace(districts=DISTRICTS))
    for option, value, field in (
        ("--district", "9999", "district"),
        ("--permit-type", "ITAS_WRK", "permit_types"),
    ):
        run = timpora("rank", str(tiny_dir), "--as-of", AS_OF, option, value)
        assert run.exit_code == 2, run.output
        expected = refusal(filters, *(("9999", None) if field == "district" else (None, ["ITAS_WRK"])))
        assert " ".join(expected.message.split()) in " ".join(run.output.split())
        assert "Empty DataFrame" not in run.output


def test_rank_says_so_when_a_valid_filter_matches_no_case(timpora: Cli, tiny_dir: Path) -> None:
    # Kota Cilegon (3672) holds cases, but nobody in the tiny world holds an ITAS_STUDY permit.
    run = timpora(
        "rank", str(tiny_dir), "--as-of", AS_OF, "--district", "Kota Cilegon", "--permit-type", "ITAS_STUDY"
    )
    assert run.exit_code == 0, run.output
    assert (
        run.output.strip().splitlines()[-1]
        == "No case in district 3672 on permit type ITAS_STUDY as of 2024-06-30."
    )
    assert "Empty DataFrame" not in run.output
    found = timpora("rank", str(tiny_dir), "--as-of", AS_OF, "--district", "Kota Cilegon")
    assert found.exit_code == 0, found.output
    assert "Ranked cases as of 2024-06-30" in found.output and " 3672 " in found.output
