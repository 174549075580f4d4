"""The one rule for a list's filters, shared by `timpora rank` and the API's /inspection_list.

A district filter is a BPS code or code prefix (2 digits province, 4 kabupaten/kota,
7 kecamatan) that starts at least one district code the data set knows (from the
address reports, permits, sponsors and the optional `districts` table), or a district
name that the `districts` table maps to exactly one code (case-insensitive). A permit
type is a value of the contract's `permit_type` enumeration. Anything else is refused
with a sentence naming the field and up to five close valid values, so a typo is not
answered with an empty list. A valid filter may still match no case on a date.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.contract import PERMIT_TYPE

DISTRICT_LEVELS = (2, 4, 7)  # BPS code lengths: province, kabupaten/kota, kecamatan
N_HINTS = 5


class UnknownFilterError(ValueError):
    """A filter value the data set does not know: `field` is "district" or "permit_types"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class CheckedFilters:
    """Filters the data set knows: the district as a code or code prefix (a name resolved), permit types."""

    district: str | None
    permit_types: tuple[str, ...]

    def no_case_sentence(self, as_of: dt.date) -> str:
        """What to say when these filters match no case on the date."""
        where = f" in district {self.district}" if self.district else ""
        what = f" on permit type{'s' if len(self.permit_types) > 1 else ''} {', '.join(self.permit_types)}"
        return f"No case{where}{what if self.permit_types else ''} as of {as_of}."


@dataclass(frozen=True)
class KnownFilters:
    """The district codes and names a data set knows, computed once (an engine keeps it for its life)."""

    codes: npt.NDArray[np.str_]  # sorted, unique: prefix lookups by binary search
    names: dict[str, str]  # district code -> name, from the `districts` table
    by_name: dict[str, tuple[str, ...]]  # lower-case name -> its codes

    @classmethod
    def of(cls, districts: pd.DataFrame, codes: Iterable[str]) -> KnownFilters:
        """From the `districts` table (possibly empty) and the district codes the other tables use."""
        table = districts.dropna(subset=["district_code", "name"])
        listed = table["district_code"].astype(str)
        every = pd.Index(list(codes), dtype="str").append(pd.Index(listed, dtype="str")).unique()
        names = dict(zip(listed, table["name"].astype(str), strict=True))
        keys = table["name"].astype(str).str.strip().str.casefold().to_numpy()
        by_name = {str(key): tuple(group) for key, group in listed.groupby(keys, sort=False)}
        return cls(codes=np.sort(every.to_numpy(dtype=str)), names=names, by_name=by_name)

    def check(self, district: str | None, permit_types: Sequence[str] | None) -> CheckedFilters:
        """The filters, a district name resolved to its code; `UnknownFilterError` for an unknown value."""
        types = tuple(dict.fromkeys(permit_types or ()))
        unknown = [value for value in types if value not in PERMIT_TYPE]
        if unknown:
            raise UnknownFilterError("permit_types", _permit_type_refusal(unknown))
        value = (district or "").strip()
        return CheckedFilters(self._district_code(value) if value else None, types)

    def _starts_a_code(self, prefix: str) -> bool:
        at = int(np.searchsorted(self.codes, prefix))
        return at < len(self.codes) and str(self.codes[at]).startswith(prefix)

    def _district_code(self, value: str) -> str:
        if self._starts_a_code(value):
            return value
        codes = self.by_name.get(value.casefold(), ())
        if len(codes) == 1:
            return codes[0]
        if codes:
            raise UnknownFilterError(
                "district",
                f"district name {value!r} names {len(codes)} districts: give one of their codes, "
                + ", ".join(self._label(code) for code in sorted(codes)[:N_HINTS]),
            )
        hints = ", ".join(self._close_districts(value)) or "none"
        named = "" if self.names else " (the data set has no districts table: give a code)"
        raise UnknownFilterError(
            "district",
            f"unknown district {value!r}: no known district code starts with it and no district "
            f"has that name{named}; close valid values: {hints}",
        )

    def _close_districts(self, value: str) -> list[str]:
        """Up to five known codes (at the value's level) or names close to the value."""
        if value.isdigit():
            level = next((n for n in DISTRICT_LEVELS if n >= len(value)), None)
            at_level = {str(c)[:level] for c in self.codes if level is None or len(c) >= level}
            candidates = sorted(at_level or {str(c) for c in self.codes})
            close = _close_matches(value, candidates, 0.5)
            if not close:  # nothing alike: the numerically nearest codes
                close = sorted(candidates, key=lambda c: abs(int(c) - int(value)))[:N_HINTS]
            return [self._label(code) for code in close]
        names = {name.casefold(): name for name in self.names.values()}
        close = _close_matches(value.casefold(), list(names), 0.5)
        return [names[name] for name in close] or [self._label(str(c)) for c in self.codes[:N_HINTS]]

    def _label(self, code: str) -> str:
        name = self.names.get(code)
        return f"{code} ({name})" if name else code


def _close_matches(value: str, candidates: Sequence[str], cutoff: float) -> list[str]:
    """Up to five candidates at least `cutoff` alike (difflib's ratio), most alike first, ties in order."""
    alike = [(difflib.SequenceMatcher(None, value, c).ratio(), c) for c in candidates]
    return [c for ratio, c in sorted(alike, key=lambda pair: (-pair[0], pair[1])) if ratio >= cutoff][
        :N_HINTS
    ]


def _permit_type_refusal(unknown: Sequence[str]) -> str:
    """The sentence for permit types outside the contract's enumeration, with the close valid ones."""
    hints: list[str] = []
    for value in unknown:
        hints += _close_matches(value.strip().upper(), PERMIT_TYPE, 0.6)
    close = list(dict.fromkeys(hints))[:N_HINTS] or list(PERMIT_TYPE)
    return (
        f"unknown permit type{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
        f"not in the data contract's permit types; close valid values: {', '.join(close)}"
    )
