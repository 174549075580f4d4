"""The one clock: UTC timestamps as ISO 8601 text with a `Z`, for logs, lists, keys and registry tags."""

from __future__ import annotations

import datetime as dt
from typing import Literal


def utc_now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def utc_timestamp(
    timespec: Literal["seconds", "milliseconds"] = "seconds", at: dt.datetime | None = None
) -> str:
    """`2026-12-03T17:10:30Z` (or `...30.123Z`): the time `at` (default: now) in UTC."""
    moment = (at or utc_now()).astimezone(dt.UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
