"""Randomised assignment of months or districts to the office rule's list or the model's list.

So that "the model finds more than the rule" can be estimated from real
outcomes, whole units (calendar months `YYYY-MM`, or district codes and code
prefixes) are assigned at random to an arm: `rule` (the list is ranked by the
office rule) or `model` (ranked by the model). Lists issued for a unit carry
its arm (`CommittedList.extra["arm"]`).

The design is balanced: of n units, n // 2 go to each arm (the odd one out to
an arm drawn with the seed), shuffled with the seed. With the few units an
office has (a dozen months), a balanced split keeps both arms populated where
independent coin flips could leave one nearly empty. The units are sorted
before the shuffle, so the same units and seed give the same arms whatever the
order they were named in.

Assignments are logged append-only in `DATA/_lists/assignments.jsonl`, under the
data set's lock (`features.transaction.lock`), like the committed lists. A unit is
assigned once: a month already assigned, or a district that is, contains or is
contained in an assigned district prefix, is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from features.clock import utc_now, utc_timestamp
from features.lists import lists_dir
from features.transaction import append_line, current_user, fsync_directory, lock

ASSIGNMENTS_FILE = "assignments.jsonl"
RULE = "rule"
MODEL_ARM = "model"
ARMS = (RULE, MODEL_ARM)
By = Literal["month", "district"]
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class AssignmentError(ValueError):
    """An assignment that cannot be made: a unit badly written, repeated, or already assigned."""


@dataclass(frozen=True)
class Assignment:
    """One logged random assignment: each unit and its arm, with the seed and why it was made."""

    assignment_id: str
    by: str  # "month" or "district"
    units: tuple[str, ...]
    arms: tuple[str, ...]  # aligned with units: "rule" or "model"
    seed: int
    created_at: str  # UTC, ISO 8601
    created_by: str | None
    reason: str

    def arm_of(self) -> dict[str, str]:
        return dict(zip(self.units, self.arms, strict=True))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["units"], out["arms"] = list(self.units), list(self.arms)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assignment:
        return cls(
            assignment_id=str(data["assignment_id"]),
            by=str(data["by"]),
            units=tuple(str(u) for u in data["units"]),
            arms=tuple(str(a) for a in data["arms"]),
            seed=int(data["seed"]),
            created_at=str(data["created_at"]),
            created_by=data.get("created_by"),
            reason=str(data.get("reason", "")),
        )


def draw_arms(units: Sequence[str], seed: int) -> tuple[str, ...]:
    """The balanced, seeded arms of the units (aligned with `units` as given)."""
    n = len(units)
    rng = np.random.default_rng(seed)
    arms = np.where(np.arange(n) < n // 2, RULE, MODEL_ARM).astype(object)
    if n % 2:
        arms[-1] = ARMS[int(rng.integers(2))]
    shuffled = rng.permutation(arms)
    order = np.argsort(np.asarray(units, dtype=str), kind="stable")  # sorted units get the shuffled arms
    out = np.empty(n, dtype=object)
    out[order] = shuffled
    return tuple(str(a) for a in out)


def _path(data_dir: Path) -> Path:
    return lists_dir(Path(data_dir)) / ASSIGNMENTS_FILE


def _read(data_dir: Path) -> list[Assignment]:
    path = _path(data_dir)
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(Assignment.from_dict(json.loads(line)))
        except ValueError:  # a line cut short by a killed writer: it never happened
            continue
    return out


def read_assignments(data_dir: Path) -> list[Assignment]:
    """The data set's assignments, oldest first."""
    data_dir = Path(data_dir)
    with lock(data_dir, exclusive=False):
        return _read(data_dir)


def _check_units(by: str, units: Sequence[str]) -> list[str]:
    if by not in ("month", "district"):
        raise AssignmentError(f"assign by 'month' or 'district', not {by!r}")
    cleaned = [str(u).strip() for u in units]
    if not cleaned:
        raise AssignmentError("name at least one unit to assign")
    if by == "month":
        bad = [u for u in cleaned if not _MONTH.fullmatch(u)]
        if bad:
            raise AssignmentError(f"months are written YYYY-MM: {', '.join(map(repr, bad))}")
    else:
        bad = [u for u in cleaned if not u or any(c.isspace() for c in u)]
        if bad:
            raise AssignmentError(f"district codes cannot be empty or hold spaces: {bad!r}")
    repeated = sorted({u for u in cleaned if cleaned.count(u) > 1})
    if repeated:
        raise AssignmentError(f"unit named more than once: {', '.join(repeated)}")
    if by == "district":
        nested = sorted(a for a in cleaned for b in cleaned if a != b and b.startswith(a))
        if nested:
            raise AssignmentError(f"district prefixes overlap within the request: {', '.join(nested)}")
    return cleaned


def _taken(units: Sequence[str], by: str, earlier: Sequence[Assignment]) -> list[str]:
    """The units (with the assignment holding them) that earlier assignments already cover."""
    taken = []
    for old in earlier:
        if old.by != by:
            continue
        for unit in units:
            for held in old.units:
                overlap = unit == held if by == "month" else unit.startswith(held) or held.startswith(unit)
                if overlap:
                    taken.append(f"{unit} (as {held} in {old.assignment_id}, arm {old.arm_of()[held]})")
    return taken


def assign(
    data_dir: Path,
    by: By,
    units: Sequence[str],
    seed: int,
    reason: str,
    created_by: str | None = None,
) -> Assignment:
    """Assign the units at random (balanced, seeded) to the rule or the model, and log it."""
    data_dir = Path(data_dir)
    if not reason.strip():
        raise AssignmentError("an assignment needs a reason (it is recorded)")
    cleaned = _check_units(by, units)
    if not data_dir.is_dir():
        raise AssignmentError(f"no data set at {data_dir}")
    with lock(data_dir, exclusive=True):
        taken = _taken(cleaned, by, _read(data_dir))
        if taken:
            raise AssignmentError(f"already assigned, cannot be assigned again: {'; '.join(taken)}")
        now = utc_now()
        assignment = Assignment(
            assignment_id=f"A-{now:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}",
            by=by,
            units=tuple(cleaned),
            arms=draw_arms(cleaned, int(seed)),
            seed=int(seed),
            created_at=utc_timestamp("milliseconds", now),
            created_by=created_by or current_user(),
            reason=reason.strip(),
        )
        folder = lists_dir(data_dir)
        folder.mkdir(exist_ok=True)
        append_line(_path(data_dir), json.dumps(assignment.to_dict()))  # one line, one write, synced
        fsync_directory(folder)
    return assignment


def arm_in(assignments: Sequence[Assignment], as_of: dt.date, district: str | None) -> str | None:
    """The arm of a list for that date and district scope under these assignments (None: unassigned).

    A month unit holds the lists dated in it; a district unit holds the lists
    whose district scope starts with it (a list for the whole jurisdiction is in
    no district unit). The first assignment that holds the list decides.
    """
    month = f"{as_of:%Y-%m}"
    for assignment in assignments:
        for unit, arm in zip(assignment.units, assignment.arms, strict=True):
            if assignment.by == "month" and unit == month:
                return arm
            if assignment.by == "district" and district and str(district).startswith(unit):
                return arm
    return None


def arm_for(data_dir: Path, as_of: dt.date, district: str | None) -> str | None:
    """The arm of a list issued for that date and district scope (None if no unit holds it)."""
    return arm_in(read_assignments(data_dir), as_of, district)
