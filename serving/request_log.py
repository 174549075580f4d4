"""Append-only audit log of the scoring service: one JSON object per line, one line per request.

A record says who asked (key id, label, role), what for (endpoint, as-of date,
number of ids, exploration settings) and what they got (status, number of cases,
model version, list id). The log never holds readable person ids: a list of ids
appears only as the field `ids_hmac`, `hash_ids(ids, secret)`: an HMAC-SHA256
keyed with the service's audit secret (a file of its own, mode 0600, outside the
log: `load_or_create_secret`). An auditor holding the list and the secret can
recompute it to check it; without the secret the log is not a register of who
was looked at (a plain hash of ids like `P0004132` is reversed by trying them all).

Refused requests (401, 403, 413, 415, 503 from `serving.access`) are logged too,
with `"event": "refused"`, the key id when the token names one (never the token),
the endpoint, status and reason, and the caller's address as `source`. A
`RefusalLimiter` bounds them per source and minute; past the limit one line with
`"event": "refusals_suppressed"` is written, and the next logged refusal from that
source carries the number left out (`suppressed_before`), so a flood cannot fill the disk.

The file is created mode 0600 and only ever opened for appending or reading.
Appends take a thread lock and an exclusive `flock`, so several service workers
can share one file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hmac
import json
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import BinaryIO

from features.clock import utc_timestamp

_BLOCK = 64 * 1024  # bytes read at a time when tailing from the end
SECRET_BYTES = 32  # the audit secret: 256 random bits, stored as 64 hex digits
_SECRET_HEX = frozenset("0123456789abcdef")


class AuditSecretError(RuntimeError):
    """The audit secret file cannot be read, created or is malformed (the message names the file)."""


def hash_ids(ids: Iterable[str], secret: bytes) -> str:
    """HMAC-SHA256 (hex), keyed with the audit secret, of the ids joined by newlines, in order.

    Checkable by whoever holds the list and the secret; not reversible from the log alone.
    """
    if isinstance(ids, str | bytes):
        raise TypeError("hash_ids takes an iterable of ids, not a single string")
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise TypeError("hash_ids needs the audit secret as bytes (see load_or_create_secret)")
    return hmac.new(secret, "\n".join(ids).encode("utf-8"), "sha256").hexdigest()


def read_secret(path: Path) -> bytes:
    """The audit secret stored in a file as hex; AuditSecretError if it is missing or malformed."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise AuditSecretError(f"no audit secret file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditSecretError(f"cannot read audit secret file {path}: {exc}") from None
    if len(text) != 2 * SECRET_BYTES or not set(text) <= _SECRET_HEX:
        raise AuditSecretError(f"malformed audit secret file {path}: expected {2 * SECRET_BYTES} hex digits")
    return bytes.fromhex(text)


def load_or_create_secret(path: Path) -> bytes:
    """The audit secret in `path`, created first if there is none: random, mode 0600, never printed.

    Created atomically: written to a temporary file in the same folder, then hard-linked
    into place, which fails if another process created it first (then its secret is used).
    """
    path = Path(path)
    if path.exists():
        return read_secret(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise AuditSecretError(f"cannot create audit secret file {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(SECRET_BYTES) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # created meanwhile by another worker: use theirs
            os.link(tmp, path)
    except OSError as exc:
        raise AuditSecretError(f"cannot create audit secret file {path}: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return read_secret(path)


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
            # Created 0600 (O_CREAT's mode, before the umask); an older, wider file is narrowed.
            with open(self.path, "ab", buffering=0, opener=_private_opener) as f:
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


def _private_opener(path: str, flags: int) -> int:
    fd = os.open(path, flags, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    except OSError:  # not the owner: leave the mode as it is, appending still works
        pass
    return fd


class RefusalLimiter:
    """At most `limit` refusal lines per source per window; then one "suppressed" line, then silence.

    `admit(source)` answers ("log", n): write the refusal, with n the refusals left out in
    the source's previous window; ("notice", 0): write one suppressed line now; or ("drop", 0).
    Memory is bounded: past `max_sources` sources, those of past windows are forgotten, and
    if all are current the newcomers share one bucket.
    """

    OVERFLOW = "(other sources)"

    def __init__(
        self,
        limit: int = 20,
        window_s: float = 60.0,
        max_sources: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window_s, self.max_sources, self.clock = limit, window_s, max_sources, clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, int, int]] = {}  # source -> (window start, count, carried)

    def admit(self, source: str) -> tuple[str, int]:
        with self._lock:
            now = self.clock()
            if source not in self._buckets and len(self._buckets) >= self.max_sources:
                self._buckets = {s: b for s, b in self._buckets.items() if now - b[0] < self.window_s}
                if len(self._buckets) >= self.max_sources:
                    source = self.OVERFLOW
            start, count, carried = self._buckets.get(source, (now, 0, 0))
            if now - start >= self.window_s:  # a new window: report what the last one left out
                start, count, carried = now, 0, carried + max(0, count - self.limit - 1)
            count += 1
            if count <= self.limit:
                self._buckets[source] = (start, count, 0)
                return "log", carried
            self._buckets[source] = (start, count, carried)
            return ("notice", 0) if count == self.limit + 1 else ("drop", 0)


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
