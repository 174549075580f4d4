"""Committed inspection lists: what was issued, with what chances, and what became of it.

A list is committed when it is issued, with the data set it was drawn from,
under `DATA/_lists/` (loaders only open `<table>.<format>` files):

- `<list_id>.cases.parquet`: every ELIGIBLE case of the list's scope as of its
  date (`CASE_COLUMNS`): rank, score, stratum, inclusion probability, and for
  the listed ones the selection (`MODEL` or `EXPLORATION`) and place on the
  list. The off-policy estimators need the probabilities of the unlisted too.
- `<list_id>.json`: the metadata (as-of date, scope, k, model version,
  exploration design, seed, strata, who drew it and why).
- `events.jsonl`: what happened to lists later, one JSON object a line:
  `superseded` (by a deliberate re-draw, with its reason) and `not_visited`
  (listed cases the office could not inspect, with the reason).

The store is append-only: a list's files are written once (temporary file,
fsync, rename: the JSON last, so a list exists only once complete) and never
changed or deleted; a list's status and not-visited cases are the replay of the
events. Writers hold the data set's lock (`features.transaction.lock`), so an
ingest of outcomes and a list being committed never interleave.

The same (as-of date, scope, k, design, model version) is one key: asking for it
again returns the committed list. List ids are readable and deterministic:
`L-<as_of>-<8 hex of the key's sha256>`, with `-r<n>` for the n-th re-draw.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.clock import utc_timestamp
from features.contract import TABLES_BY_NAME
from features.loading import FORMATS, load_table_file
from features.transaction import append_line, current_user, fsync_directory, lock, write_atomic
from features.validation import Issue, row_issue

LISTS_DIR = "_lists"
EVENTS_FILE = "events.jsonl"
COMMITTED = "committed"
SUPERSEDED = "superseded"
FORMAT_VERSION = 1
CASE_COLUMNS = (
    "person_id",
    "rank",  # overall rank among all cases as of the date
    "eligible_rank",  # place among the eligible cases (the strata are ranges of it)
    "score",
    "percentile",
    "district",
    "permit_type",
    "stratum",
    "inclusion_probability",
    "selection",  # MODEL, EXPLORATION, or "" for a case not listed
    "listed",
    "list_rank",  # place on the list, 1..n; 0 for a case not listed
)
NOT_VISITED_COLUMNS = ("person_id", "reason", "recorded_at")
TEMPLATE_ONLY_COLUMNS = ("visited", "not_visited_reason")
TEMPLATE_COLUMNS = (
    "inspection_id",
    "person_id",
    "sponsor_id",
    "inspection_date",
    "trigger",
    "violation_found",
    "violation_type",
    "action",
    "selection_propensity",
    "list_id",
    *TEMPLATE_ONLY_COLUMNS,
)
MODEL = "MODEL"  # the selections of `models.listing` (features sit below models: no import)
EXPLORATION = "EXPLORATION"
_TEMP_PREFIX = ".tmp-"
_PROPENSITY_RTOL = 1e-9


class _Record(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Draw(Protocol):
    """What a list is committed from: `models.listing.ListDraw`."""

    @property
    def rows(self) -> pd.DataFrame: ...  # listed cases in list order, `selection` column, indexed by person
    @property
    def seed(self) -> int: ...
    @property
    def design(self) -> _Record: ...
    @property
    def strata(self) -> Sequence[_Record]: ...
    @property
    def inclusion(self) -> pd.DataFrame: ...  # every eligible case: person_id, rank, stratum, probability


class UnknownListError(LookupError):
    """No committed list has this id in the data set."""

    def __init__(self, list_id: str, directory: Path) -> None:
        super().__init__(f"no committed list {list_id!r} in {directory} (see `timpora lists {directory}`)")
        self.list_id = list_id


@dataclass(frozen=True)
class CommittedList:
    """A committed list: its key, its draw over every eligible case, its status and unvisited cases."""

    list_id: str
    as_of: dt.date
    scope: dict[str, Any]  # district, permit_types (and whatever else the request had)
    k: int
    model_version: str
    design: dict[str, Any]  # ExplorationDesign.to_dict()
    seed: int
    status: str  # committed or superseded
    created_at: str  # UTC, ISO 8601
    superseded_by: str | None
    redraw_reason: str | None  # set on a deliberate re-draw
    cases: pd.DataFrame  # CASE_COLUMNS, one row per eligible case, in rank order
    not_visited: pd.DataFrame  # NOT_VISITED_COLUMNS: listed cases recorded as not inspected (latest reason)
    key: str = ""  # sha256 of the canonical (as_of, scope, k, design, model_version)
    created_by: str | None = None
    replaces: str | None = None  # the list a re-draw superseded
    supersede_reason: str | None = None  # why this list was superseded
    strata: tuple[dict[str, Any], ...] = ()  # Stratum.to_dict() of each stratum, model picks first
    extra: dict[str, Any] = field(default_factory=dict)  # other metadata given at commit

    @property
    def listed(self) -> pd.DataFrame:
        """The listed cases in list order."""
        listed = self.cases[self.cases["listed"].to_numpy(dtype=bool)]
        return listed.sort_values("list_rank", kind="stable").reset_index(drop=True)

    @property
    def n_eligible(self) -> int:
        return len(self.cases)

    @property
    def n_model(self) -> int:
        return int((self.cases["selection"] == MODEL).sum())

    @property
    def n_exploration(self) -> int:
        return int((self.cases["selection"] == EXPLORATION).sum())


# Keys and ids


def canonical_scope(scope: Mapping[str, Any]) -> dict[str, Any]:
    """The scope with lists sorted and empty filters as null, so equal scopes hash equally."""
    out: dict[str, Any] = {}
    for name in sorted(scope):
        value = scope[name]
        if isinstance(value, list | tuple | set | frozenset):
            value = sorted(str(v) for v in value)
        out[name] = value if value not in ("", []) else None
    return out


def _design_dict(design: _Record | Mapping[str, Any]) -> dict[str, Any]:
    """A design's canonical dict (`ExplorationDesign.to_dict()`), from the design or that dict."""
    return dict(design) if isinstance(design, Mapping) else design.to_dict()


def list_key(
    as_of: dt.date,
    scope: Mapping[str, Any],
    k: int,
    design: _Record | Mapping[str, Any],
    model_version: str,
) -> str:
    """sha256 (hex) of the request a committed list answers."""
    payload = {
        "as_of": as_of.isoformat(),
        "scope": canonical_scope(scope),
        "k": int(k),
        "design": _design_dict(design),
        "model_version": str(model_version),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# Reading


def lists_dir(data_dir: Path) -> Path:
    return Path(data_dir) / LISTS_DIR


def _metadata(data_dir: Path) -> list[dict[str, Any]]:
    """Every list's metadata, oldest first."""
    folder = lists_dir(data_dir)
    if not folder.is_dir():
        return []
    records = [json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("L-*.json")]
    return sorted(records, key=lambda r: (r["created_at"], r["list_id"]))


def _record(data_dir: Path, list_id: str) -> dict[str, Any] | None:
    """One list's metadata, or None if there is no such list."""
    path = lists_dir(data_dir) / f"{list_id}.json"
    if not list_id.startswith("L-") or "/" in list_id or not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def _events(data_dir: Path) -> list[dict[str, Any]]:
    path = lists_dir(data_dir) / EVENTS_FILE
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # a line cut short by a killed writer: it never happened
            continue
    return events


@dataclass
class _State:
    superseded_by: str | None = None
    supersede_reason: str | None = None
    not_visited: dict[str, tuple[str, str]] = field(default_factory=dict)  # person -> (reason, time)


def _states(events: list[dict[str, Any]]) -> dict[str, _State]:
    states: dict[str, _State] = {}
    for event in events:
        state = states.setdefault(event["list_id"], _State())
        if event["event"] == "superseded" and state.superseded_by is None:
            state.superseded_by = event.get("by") or ""
            state.supersede_reason = event.get("reason")
        elif event["event"] == "not_visited":
            for person, reason in zip(event["person_ids"], event["reasons"], strict=True):
                state.not_visited[person] = (reason, event["time"])
    return states


def _status(record: Mapping[str, Any], state: _State | None) -> str:
    return SUPERSEDED if state is not None and state.superseded_by is not None else COMMITTED


def _build(data_dir: Path, record: dict[str, Any], state: _State | None) -> CommittedList:
    list_id = record["list_id"]
    cases = pd.read_parquet(lists_dir(data_dir) / f"{list_id}.cases.parquet")
    visits = state.not_visited if state else {}
    not_visited = pd.DataFrame(
        {
            "person_id": pd.Series(list(visits), dtype="str"),
            "reason": pd.Series([v[0] for v in visits.values()], dtype="str"),
            "recorded_at": pd.Series([v[1] for v in visits.values()], dtype="str"),
        }
    )
    known = {
        "list_id",
        "key",
        "as_of",
        "scope",
        "k",
        "model_version",
        "design",
        "seed",
        "created_at",
        "created_by",
        "redraw_reason",
        "replaces",
        "strata",
        "format_version",
        "n_eligible",
        "n_listed",
    }
    return CommittedList(
        list_id=list_id,
        as_of=dt.date.fromisoformat(record["as_of"]),
        scope=record["scope"],
        k=int(record["k"]),
        model_version=str(record["model_version"]),
        design=record["design"],
        seed=int(record["seed"]),
        status=_status(record, state),
        created_at=record["created_at"],
        superseded_by=(state.superseded_by or None) if state else None,
        redraw_reason=record.get("redraw_reason"),
        cases=cases,
        not_visited=not_visited,
        key=record["key"],
        created_by=record.get("created_by"),
        replaces=record.get("replaces"),
        supersede_reason=state.supersede_reason if state else None,
        strata=tuple(record.get("strata", ())),
        extra={name: value for name, value in record.items() if name not in known},
    )


def read_list(data_dir: Path, list_id: str) -> CommittedList:
    """One committed list (superseded or not); `UnknownListError` if the data set has none by that id."""
    data_dir = Path(data_dir)
    with lock(data_dir, exclusive=False):
        record = _record(data_dir, list_id)
        state = _states(_events(data_dir)).get(list_id)
    if record is None:
        raise UnknownListError(list_id, data_dir)
    return _build(data_dir, record, state)


def read_lists(data_dir: Path, include_superseded: bool = False) -> list[CommittedList]:
    """The data set's committed lists, oldest first (superseded ones only if asked for)."""
    data_dir = Path(data_dir)
    with lock(data_dir, exclusive=False):
        records, states = _metadata(data_dir), _states(_events(data_dir))
    lists = []
    for record in records:
        state = states.get(record["list_id"])
        if include_superseded or _status(record, state) == COMMITTED:
            lists.append(_build(data_dir, record, state))
    return lists


def find_committed(
    data_dir: Path,
    as_of: dt.date,
    scope: Mapping[str, Any],
    k: int,
    design: _Record | Mapping[str, Any],
    model_version: str,
) -> CommittedList | None:
    """The list in force for this request (not superseded), or None if none was committed."""
    data_dir = Path(data_dir)
    key = list_key(as_of, scope, k, design, model_version)
    with lock(data_dir, exclusive=False):
        record, state = _current(data_dir, key, as_of)
    return None if record is None else _build(data_dir, record, state)


def _current(data_dir: Path, key: str, as_of: dt.date) -> tuple[dict[str, Any] | None, _State | None]:
    """The list in force for a key: only the files named after the key are read (its re-draws too)."""
    folder = lists_dir(data_dir)
    if not folder.is_dir():
        return None, None
    named = folder.glob(f"{_base_id(as_of, key)}*.json")
    records = sorted(
        (json.loads(p.read_text(encoding="utf-8")) for p in named), key=lambda r: r["created_at"]
    )
    states = _states(_events(data_dir))
    for record in reversed(records):
        state = states.get(record["list_id"])
        if record["key"] == key and _status(record, state) == COMMITTED:
            return record, state
    return None, None


# Writing


def commit_list(
    data_dir: Path,
    draw: Draw,
    *,
    as_of: dt.date,
    scope: Mapping[str, Any],
    k: int,
    model_version: str,
    design: _Record | Mapping[str, Any] | None = None,
    seed: int | None = None,
    redraw_reason: str | None = None,
    created_by: str | None = None,
    ranked: pd.DataFrame | None = None,
    extra: Mapping[str, Any] | None = None,
) -> CommittedList:
    """Commit a drawn list, or return the one already committed for the same key.

    Without `redraw_reason`, a key that already has a list in force returns that
    list and writes nothing (so two concurrent requests end with one list). With
    a reason, the draw is committed as a re-draw that supersedes the list in
    force (recorded with the reason; nothing is deleted). `ranked`, the
    eligible cases the draw was made from, gives every eligible case its score,
    percentile, district and permit type (without it, only the listed ones).
    """
    data_dir = Path(data_dir)
    design_dict = _design_dict(design if design is not None else draw.design)
    if design_dict != draw.design.to_dict():
        raise ValueError(f"the draw used design {draw.design.to_dict()}, not {design_dict}")
    seed = draw.seed if seed is None else int(seed)
    if seed != draw.seed:
        raise ValueError(f"the draw used seed {draw.seed}, not {seed}")
    if redraw_reason is not None and not redraw_reason.strip():
        raise ValueError("a re-draw needs a reason (it is recorded)")
    key = list_key(as_of, scope, k, design_dict, model_version)
    cases = list_cases(draw, ranked)
    folder = lists_dir(data_dir)
    with lock(data_dir, exclusive=True):
        current, state = _current(data_dir, key, as_of)
        if current is not None and redraw_reason is None:
            return _build(data_dir, current, state)
        pattern = f"{_base_id(as_of, key)}*.json"
        taken = {p.name.removesuffix(".json") for p in folder.glob(pattern)} if folder.is_dir() else set()
        list_id = _new_id(as_of, key, taken)
        record = {
            "format_version": FORMAT_VERSION,
            "list_id": list_id,
            "key": key,
            "as_of": as_of.isoformat(),
            "scope": canonical_scope(scope),
            "k": int(k),
            "model_version": str(model_version),
            "design": design_dict,
            "seed": seed,
            "created_at": utc_timestamp("milliseconds"),
            "created_by": created_by,
            "redraw_reason": redraw_reason.strip() if redraw_reason else None,
            "replaces": current["list_id"] if current is not None else None,
            "strata": [s.to_dict() for s in draw.strata],
            "n_eligible": len(cases),
            "n_listed": len(draw.rows),
            **dict(extra or {}),
        }
        folder.mkdir(exist_ok=True)
        _write_atomic(folder / f"{list_id}.cases.parquet", lambda path: cases.to_parquet(path, index=False))
        _write_atomic(folder / f"{list_id}.json", lambda path: path.write_text(json.dumps(record, indent=1)))
        fsync_directory(folder)
        if current is not None:
            _append_event(
                data_dir,
                {
                    "event": "superseded",
                    "list_id": current["list_id"],
                    "by": list_id,
                    "reason": record["redraw_reason"],
                },
            )
        states = _states(_events(data_dir))
    return _build(data_dir, record, states.get(list_id))


def list_cases(draw: Draw, ranked: pd.DataFrame | None = None) -> pd.DataFrame:
    """The `CASE_COLUMNS` frame of a draw: every eligible case, with the listed ones marked."""
    cases = draw.inclusion.copy()
    cases["stratum"] = cases["stratum"].astype(str)
    source = ranked if ranked is not None else draw.rows
    aligned = ranked is not None and len(ranked) == len(cases)  # the inclusion frame is `ranked`, in order
    for name in ("score", "percentile", "district", "permit_type"):
        values = source[name] if name in source else pd.Series(None, index=source.index, dtype=object)
        if not aligned:
            values = values.set_axis(values.index.astype(str)).reindex(cases["person_id"])
        cases[name] = values.set_axis(cases.index)
    rows = draw.rows
    if "eligible_rank" in rows:  # places among the eligible cases: no lookup by id
        where = rows["eligible_rank"].to_numpy(dtype=np.int64) - 1
    else:
        where = pd.Index(cases["person_id"]).get_indexer(pd.Index(rows.index.astype(str)))
    listed = np.zeros(len(cases), dtype=bool)
    listed[where] = True
    list_rank = np.zeros(len(cases), dtype=np.int64)
    list_rank[where] = np.arange(1, len(rows) + 1)
    selection = np.full(len(cases), "", dtype=object)
    selection[where] = rows["selection"].to_numpy(dtype=object)
    cases["selection"] = selection
    cases["listed"] = listed
    cases["list_rank"] = list_rank
    for name in ("score", "percentile"):
        cases[name] = pd.to_numeric(cases[name], errors="coerce").astype(float)
    for name in ("district", "permit_type"):
        cases[name] = cases[name].astype("str")
    return cases[list(CASE_COLUMNS)]


def _base_id(as_of: dt.date, key: str) -> str:
    return f"L-{as_of.isoformat()}-{key[:8]}"


def _new_id(as_of: dt.date, key: str, taken: set[str]) -> str:
    base = _base_id(as_of, key)
    if base not in taken:
        return base
    n = 1
    while f"{base}-r{n}" in taken:
        n += 1
    return f"{base}-r{n}"


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through `.tmp-<name>` in the same folder, fsync it, then rename it into place."""
    write_atomic(path, path.with_name(f"{_TEMP_PREFIX}{path.name}"), write)


def _append_event(data_dir: Path, event: Mapping[str, Any]) -> None:
    """One JSON line appended to the events file and synced (the caller holds the exclusive lock)."""
    now = utc_timestamp("milliseconds")
    full = {"time": now, "user": current_user(), **event}
    folder = lists_dir(data_dir)
    folder.mkdir(exist_ok=True)
    append_line(folder / EVENTS_FILE, json.dumps(full))


def supersede(data_dir: Path, list_id: str, *, reason: str, by: str | None = None) -> CommittedList:
    """Mark a list superseded (withdrawn, or replaced by list `by`), with the reason; nothing is deleted."""
    data_dir = Path(data_dir)
    if not reason.strip():
        raise ValueError("superseding a list needs a reason (it is recorded)")
    committed = read_list(data_dir, list_id)
    if committed.status == SUPERSEDED:
        raise ValueError(f"list {list_id} is already superseded (by {committed.superseded_by or 'nothing'})")
    with lock(data_dir, exclusive=True):
        _append_event(
            data_dir, {"event": "superseded", "list_id": list_id, "by": by, "reason": reason.strip()}
        )
    return read_list(data_dir, list_id)


def record_not_visited(
    data_dir: Path, list_id: str, not_visited: pd.DataFrame, *, source: str | None = None
) -> CommittedList:
    """Record listed cases of `list_id` that were not inspected (`person_id`, `reason`); idempotent."""
    data_dir = Path(data_dir)
    frame = not_visited.assign(list_id=list_id)
    issues = _not_visited_issues(data_dir, frame)
    if issues:
        raise ValueError("; ".join(issue.render() for issue in issues))
    with lock(data_dir, exclusive=True):
        append_not_visited(data_dir, frame, source)
    return read_list(data_dir, list_id)


def _not_visited_issues(data_dir: Path, frame: pd.DataFrame) -> list[Issue]:
    rows = frame.assign(trigger="LIST", selection_propensity=np.nan)
    return [i for i in check_list_rows(data_dir, rows) if i.rule != "list_propensity_mismatch"]


def append_not_visited(data_dir: Path, frame: pd.DataFrame, source: str | None) -> int:
    """Append the entries (`list_id`, `person_id`, `reason`) that change a list's record; how many did.

    The caller holds the exclusive lock (`record_not_visited` takes it; an ingest
    of an outcomes template already holds it) and has checked the persons are on
    their lists. `source` is recorded with the event (the template's sha256).
    """
    if frame.empty:
        return 0
    states = _states(_events(data_dir))
    reasons = frame["reason"].fillna("").astype(str).str.strip() if "reason" in frame else ""
    entries = frame.assign(reason=reasons).drop_duplicates(["list_id", "person_id"], keep="last")
    added = 0
    for list_id, group in entries.groupby("list_id", sort=True):
        held = states.get(str(list_id), _State()).not_visited
        recorded = group["person_id"].map({person: entry[0] for person, entry in held.items()})
        new = group[recorded.isna().to_numpy() | (recorded != group["reason"]).to_numpy(dtype=bool)]
        if len(new):
            event = {
                "event": "not_visited",
                "list_id": str(list_id),
                "person_ids": new["person_id"].astype(str).tolist(),
                "reasons": new["reason"].astype(str).tolist(),
                "source": source,
            }
            _append_event(data_dir, event)
            added += len(new)
    return added


# Checking inspections against the lists


def check_list_rows(data_dir: Path, inspections: pd.DataFrame, *, lock_held: bool = False) -> list[Issue]:
    """Errors for `LIST` rows that do not match their committed list (see `_check_list_rows`).

    The lists are read under the data set's shared lock, or, with `lock_held`,
    under the lock the caller already holds (ingest holds it exclusively; the
    lock is not re-entrant).
    """
    if lock_held:
        return _check_list_rows(data_dir, inspections)
    with lock(Path(data_dir), exclusive=False):
        return _check_list_rows(data_dir, inspections)


def _check_list_rows(data_dir: Path, inspections: pd.DataFrame) -> list[Issue]:
    """Errors for `LIST` rows that do not match their committed list.

    Each LIST row must name a list of this data set that is in force (not
    superseded), its person must be on that list, and its selection_propensity
    must equal the list's for that person. Rows are 0-based positions of
    `inspections`; the issues name them 1-based like every validation issue.
    The caller holds the data set's lock.
    """
    if inspections.empty or "trigger" not in inspections:
        return []
    is_list = (inspections["trigger"] == "LIST").fillna(False).to_numpy(dtype=bool)
    if not is_list.any():
        return []
    n = len(inspections)
    raw_ids = inspections["list_id"] if "list_id" in inspections else pd.Series(None, index=inspections.index)
    ids: np.ndarray = raw_ids.astype(object).where(raw_ids.notna(), None).to_numpy()
    persons = inspections["person_id"].astype(str).to_numpy()
    propensity = pd.to_numeric(
        inspections.get("selection_propensity", pd.Series(np.nan, index=inspections.index)), errors="coerce"
    ).to_numpy(dtype=float)
    issues: list[Issue] = []
    table = "inspections"
    missing = np.flatnonzero(is_list & pd.isna(ids))
    if len(missing):
        issues.append(row_issue(table, "list_id", "missing_list_id", "LIST row without a list_id", missing))
    data_dir = Path(data_dir)
    named_ids = {str(i) for i in pd.unique(ids[is_list & ~pd.isna(ids)])}
    records = {i: r for i in named_ids if (r := _record(data_dir, i)) is not None}
    states = _states(_events(data_dir))
    named = is_list & ~pd.isna(ids)
    unknown, superseded, not_listed, mismatch = [], [], [], []
    expected = np.full(n, np.nan)
    for list_id in pd.unique(ids[named]):
        rows = np.flatnonzero(named & (ids == list_id))
        if list_id not in records:
            unknown.append(rows)
            continue
        if _status(records[list_id], states.get(list_id)) == SUPERSEDED:
            superseded.append(rows)
            continue
        cases = pd.read_parquet(
            lists_dir(data_dir) / f"{list_id}.cases.parquet",
            columns=["person_id", "inclusion_probability", "listed"],
        )
        cases = cases[cases["listed"].to_numpy(dtype=bool)]
        where = pd.Index(cases["person_id"].astype(str)).get_indexer(pd.Index(persons[rows]))
        not_listed.append(rows[where < 0])
        on_list = rows[where >= 0]
        expected[on_list] = cases["inclusion_probability"].to_numpy()[where[where >= 0]]
        stated = propensity[on_list]
        wrong = np.isnan(stated) | ~np.isclose(stated, expected[on_list], rtol=_PROPENSITY_RTOL, atol=0.0)
        mismatch.append(on_list[wrong])

    def add(parts: list[np.ndarray], column: str, rule: str, message: str, values: np.ndarray) -> None:
        rows = np.sort(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        if len(rows):
            issues.append(row_issue(table, column, rule, message, rows, list(values[rows][:9])))

    add(unknown, "list_id", "unknown_list", "LIST row naming no committed list of this data set", ids)
    add(
        superseded,
        "list_id",
        "superseded_list",
        "LIST row naming a list that was superseded by a re-draw",
        ids,
    )
    add(not_listed, "person_id", "not_on_list", "LIST row for a person who is not on the list", persons)
    shown = np.full(n, None, dtype=object)  # quoted values of the first few mismatches only
    first = np.sort(np.concatenate(mismatch))[:9] if mismatch else np.empty(0, np.int64)
    shown[first] = [f"{propensity[i]!r} (list: {expected[i]!r})" for i in first]
    add(
        mismatch,
        "selection_propensity",
        "list_propensity_mismatch",
        "LIST row whose selection_propensity differs from the list's for that person",
        shown,
    )
    return issues


# Outcomes and the inspections template


def list_outcomes(lists: Sequence[CommittedList], inspections: pd.DataFrame | None) -> pd.DataFrame:
    """Per list: listed, visited (LIST inspections), found (of them, a violation), not visited (recorded)."""
    if inspections is not None and "list_id" in inspections and len(inspections):
        rows = inspections[(inspections["trigger"] == "LIST").fillna(False).to_numpy(dtype=bool)]
        found = rows["violation_found"].fillna(False).to_numpy(dtype=bool)
        visited = rows.groupby("list_id")["person_id"].nunique()
        found_by = rows[found].groupby("list_id")["person_id"].nunique()  # persons, not inspections
    else:
        visited = found_by = pd.Series(dtype=int)
    out = []
    for committed in lists:
        seen = int(visited.get(committed.list_id, 0))
        out.append(
            {
                "list_id": committed.list_id,
                "listed": int(committed.cases["listed"].sum()),
                "visited": seen,
                "found": int(found_by.get(committed.list_id, 0)),
                "not_visited": len(committed.not_visited),
            }
        )
    columns = ["list_id", "listed", "visited", "found", "not_visited"]
    return pd.DataFrame(out, columns=columns)


def read_outcomes(data_dir: Path, lists: Sequence[CommittedList]) -> pd.DataFrame:
    """`list_outcomes` of the lists with the data set's inspections table as it is on disk now."""
    data_dir = Path(data_dir)
    paths = [p for p in (data_dir / f"inspections.{fmt}" for fmt in FORMATS) if p.exists()]
    with lock(data_dir, exclusive=False):
        frame = load_table_file(paths[0], TABLES_BY_NAME["inspections"]).frame if paths else None
    return list_outcomes(lists, frame)


def current_sponsors(permits: pd.DataFrame, as_of: dt.date) -> pd.Series:
    """Each person's sponsor on their latest permit issued on or before `as_of` (null if none)."""
    issued = pd.to_datetime(permits["issue_date"]) <= pd.Timestamp(as_of)
    latest = permits[issued.to_numpy(dtype=bool)].sort_values(["person_id", "issue_date"], kind="stable")
    sponsor = latest.groupby("person_id", sort=False)["sponsor_id"].last()
    return sponsor.set_axis(sponsor.index.astype(str))


def outcomes_template(committed: CommittedList, permits: pd.DataFrame | None = None) -> pd.DataFrame:
    """The listed cases as an inspections file to fill in (`TEMPLATE_COLUMNS`), in list order.

    inspection_id is `<list_id>-<place on the list>`: unique and the same every
    time. The office fills inspection_date, violation_found, violation_type and
    action for the visited cases, and `visited` (true/false) and
    `not_visited_reason` for every case.
    """
    listed = committed.listed
    width = max(3, len(str(len(listed))))
    ids = [f"{committed.list_id}-{int(r):0{width}d}" for r in listed["list_rank"]]
    person = listed["person_id"].astype(str)
    if permits is not None and len(permits):
        sponsor = current_sponsors(permits, committed.as_of).reindex(person).to_numpy()
    else:
        sponsor = np.full(len(listed), None, dtype=object)
    empty = np.full(len(listed), None, dtype=object)
    return pd.DataFrame(
        {
            "inspection_id": ids,
            "person_id": person.to_numpy(),
            "sponsor_id": sponsor,
            "inspection_date": empty,
            "trigger": "LIST",
            "violation_found": empty,
            "violation_type": empty,
            "action": empty,
            "selection_propensity": listed["inclusion_probability"].to_numpy(dtype=float),
            "list_id": committed.list_id,
            "visited": empty,
            "not_visited_reason": empty,
        },
        columns=list(TEMPLATE_COLUMNS),
    )
