"""Append-only audit log of the scoring service: one JSON object per line, one line per request.

A record says who asked (key id, label, role), what for (endpoint, as-of date,
number of ids, exploration settings) and what they got (status, number of cases,
model version, list id). The log never holds readable person ids: a list of ids
appears only as `hash_ids(ids)`, which an auditor holding the list can recompute
to check it, without the log becoming a register of who was looked at.

The file is only ever opened for appending or reading. Appends take a thread
lock and an exclusive `flock`, so several service workers can share one file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from features.clock import utc_timestamp

_BLOCK = 64 * 1024  # bytes read at a time when tailing from the end


def hash_ids(ids: Iterable[str]) -> str:
    """SHA-256 (hex) of the ids joined by newlines, in order: checkable, but not readable."""
    if isinstance(ids, str | bytes):
        raise TypeError("hash_ids takes an iterable of ids, not a single string")
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def _json_default(value: object) -> str:
    if isinstance(value, dt.date):  # as-of dates; datetime is a date too
        return value.isoformat()
    raise TypeError(f"audit record values must be JSON types or dates, not {type(value).__name__}")


class AuditLog:
    """One JSON-lines audit file: `append` a record per request, `tail` the latest."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: Mapping[str, object]) -> None:
        """Write one record as one line, with the time (UTC, milliseconds) first unless it has one."""
        full = dict(record) if "time" in record else {"time": utc_timestamp("milliseconds"), **record}
        # ASCII only: no U+2028 or U+0085 in a line, which some line readers split on.
        line = json.dumps(full, ensure_ascii=True, allow_nan=False, default=_json_default) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Append mode, unbuffered: the whole line reaches the kernel in one write call, at the
            # end of the file, before the lock is released (there is no buffer left to flush).
            with open(self.path, "ab", buffering=0) as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                while data:  # one iteration unless the kernel writes short (legal, rare)
                    data = data[f.write(data) :]

    def tail(self, n: int = 20) -> list[dict[str, object]]:
        """The last n records, oldest first; a line that is not a JSON object is {"malformed": text}."""
        if n <= 0:
            return []
        try:
            with open(self.path, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH)  # no half-written line from a concurrent append
                lines = _last_lines(f, n)
        except FileNotFoundError:
            return []
        return [_parse_line(line) for line in lines]


def _last_lines(f: BinaryIO, n: int) -> list[bytes]:
    """The last n non-blank lines, read backwards from the end in blocks."""
    pos = f.seek(0, os.SEEK_END)
    chunks: list[bytes] = []
    newlines = 0
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
        if newlines > n or pos == 0:
            lines = b"".join(reversed(chunks)).split(b"\n")
            if pos > 0:
                lines = lines[1:]  # the first piece may start mid-line
            lines = [line for line in lines if line.strip()]
            if len(lines) >= n or pos == 0:
                return lines[-n:]
    return []


def _parse_line(line: bytes) -> dict[str, object]:
    text = line.decode("utf-8", errors="replace").rstrip("\r")
    try:
        record = json.loads(text)
    except ValueError:
        return {"malformed": text}
    return record if isinstance(record, dict) else {"malformed": text}
