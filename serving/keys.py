"""API keys with roles for the scoring service.

A key is a bearer token `tpk_<8 hex>_<secret>`, shown once when it is created.
The keys file keeps the public key id (`k_<8 hex>`), label, role, dates and the
SHA-256 of the secret, never the secret itself. The service authenticates every
request, so the parsed file is cached and re-read only when it changes on disk:
`timpora keys revoke` takes effect in a running server without a restart.
"""

from __future__ import annotations

import builtins
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from features.clock import utc_timestamp

FILE_VERSION = 1
TOKEN_PREFIX = "tpk_"
KEY_ID_PREFIX = "k_"
_ID_HEX = re.compile(r"[0-9a-f]{8}")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_MAX_TOKEN_CHARS = 256  # real tokens are 56; longer input is rejected before hashing
MAX_LABEL_CHARS = 200
_FIELDS = ("key_id", "label", "role", "created_at", "revoked_at", "sha256")


class Role(StrEnum):
    SYSTEM = "system"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"


@dataclass(frozen=True)
class ApiKey:
    """A key's public record: everything but the secret and its hash."""

    key_id: str
    label: str
    role: Role
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyStoreError(RuntimeError):
    """The keys file cannot be read or the requested change is not allowed."""


def _parse_role(value: Role | str) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise KeyStoreError(f"unknown role {str(value)!r}; valid roles: {valid}") from None


def _hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a fast hash is right: there is nothing to
    # brute-force, and a slow KDF would cost every request milliseconds.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Entry:
    key: ApiKey
    sha256: str


def _parse_entry(raw: object) -> _Entry:
    if not isinstance(raw, dict) or set(raw) != set(_FIELDS):
        raise ValueError(f"a key must be an object with the fields {', '.join(_FIELDS)}")
    strings = ("key_id", "label", "role", "created_at", "sha256")
    if not all(isinstance(raw[f], str) for f in strings):
        raise ValueError(f"key fields {', '.join(strings)} must be strings")
    if raw["revoked_at"] is not None and not isinstance(raw["revoked_at"], str):
        raise ValueError("revoked_at must be a string or null")
    if not _SHA256_HEX.fullmatch(raw["sha256"]):
        raise ValueError(f"key {raw['key_id']!r} has a malformed sha256")
    if not (raw["key_id"].startswith(KEY_ID_PREFIX) and _ID_HEX.fullmatch(raw["key_id"][2:])):
        raise ValueError(f"malformed key id {raw['key_id']!r}")
    if raw["role"] not in set(Role):
        raise ValueError(f"key {raw['key_id']!r} has an unknown role {raw['role']!r}")
    role = Role(raw["role"])
    key = ApiKey(raw["key_id"], raw["label"], role, raw["created_at"], raw["revoked_at"])
    return _Entry(key, raw["sha256"])


def _parse_file(text: str) -> dict[str, _Entry]:
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
        raise ValueError(f"expected an object with version {FILE_VERSION}")
    if not isinstance(data.get("keys"), list):
        raise ValueError("expected a 'keys' list")
    entries: dict[str, _Entry] = {}
    for raw in data["keys"]:
        entry = _parse_entry(raw)
        if entry.key.key_id in entries:
            raise ValueError(f"duplicate key id {entry.key.key_id!r}")
        entries[entry.key.key_id] = entry
    return entries


def _dump_file(entries: dict[str, _Entry]) -> str:
    keys = [{**dataclasses.asdict(e.key), "sha256": e.sha256} for e in entries.values()]
    return json.dumps({"version": FILE_VERSION, "keys": keys}, indent=2, ensure_ascii=False) + "\n"


def _parse_token(token: str) -> tuple[str, str] | None:
    """The key id and secret of a well-formed token, else None."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS or not token.startswith(TOKEN_PREFIX):
        return None
    id_hex, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not _ID_HEX.fullmatch(id_hex) or not secret or not secret.isascii():
        return None
    return KEY_ID_PREFIX + id_hex, secret


def token_key_id(token: str) -> str | None:
    """The public key id a token names (`k_<8 hex>`), if it is well formed; never the secret."""
    parsed = _parse_token(token)
    return parsed[0] if parsed else None


def _label_problem(label: str) -> str | None:
    """Why a label may not be stored (it is printed in tables and logs), or None."""
    if not label:
        return "a key needs a non-empty label"
    if len(label) > MAX_LABEL_CHARS:
        return f"a key label has at most {MAX_LABEL_CHARS} characters, not {len(label)}"
    bad = next((c for c in label if not c.isprintable()), None)
    if bad is not None:
        return (
            f"a key label may not hold control or invisible characters (found {bad!r}): "
            "newlines and terminal escapes would forge lines in listings and logs"
        )
    return None


class KeyStore:
    """The keys file: create, list, revoke and authenticate keys. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._entries: dict[str, _Entry] = {}

    def create(self, role: Role | str, label: str) -> tuple[ApiKey, str]:
        """Add a key; returns its record and the token, which is not stored and cannot be shown again."""
        parsed_role = _parse_role(role)
        label = label.strip()
        problem = _label_problem(label)
        if problem is not None:
            raise KeyStoreError(problem)
        with self._lock, self._file_lock():
            entries = dict(self._load(fresh=True))
            id_hex = secrets.token_hex(4)
            while KEY_ID_PREFIX + id_hex in entries:
                id_hex = secrets.token_hex(4)
            secret = secrets.token_urlsafe(32)
            key = ApiKey(KEY_ID_PREFIX + id_hex, label, parsed_role, utc_timestamp())
            entries[key.key_id] = _Entry(key, _hash_secret(secret))
            self._write(entries)
        return key, f"{TOKEN_PREFIX}{id_hex}_{secret}"

    def list(self, include_revoked: bool = True) -> builtins.list[ApiKey]:
        """Keys in the order they were created; revoked ones only if asked for."""
        with self._lock:
            entries = self._load()
        return [e.key for e in entries.values() if include_revoked or e.key.active]

    def revoke(self, key_id: str) -> ApiKey:
        """Mark a key revoked from now on; its record stays in the file for the audit trail."""
        with self._lock, self._file_lock():
            entries = dict(self._load(fresh=True))
            entry = entries.get(key_id)
            if entry is None:
                raise KeyStoreError(f"no key with id {key_id!r} in {self.path}")
            if not entry.key.active:
                raise KeyStoreError(f"key {key_id!r} was already revoked at {entry.key.revoked_at}")
            key = dataclasses.replace(entry.key, revoked_at=utc_timestamp())
            entries[key_id] = _Entry(key, entry.sha256)
            self._write(entries)
        return key

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key a token belongs to; None if it is malformed, unknown, revoked or wrong."""
        parsed = _parse_token(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        with self._lock:
            entry = self._load().get(key_id)
        if entry is None or not hmac.compare_digest(_hash_secret(secret), entry.sha256):
            return None
        return entry.key if entry.key.active else None

    def _load(self, fresh: bool = False) -> dict[str, _Entry]:
        """The file's keys, re-read only if its inode, mtime or size changed. Caller holds the lock."""
        if fresh:  # before a change: never build on a cached copy
            self._stamp = None
        try:
            with self.path.open("rb") as f:
                st = os.fstat(f.fileno())
                stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                if stamp != self._stamp:
                    self._entries, self._stamp = _parse_file(f.read().decode("utf-8")), stamp
        except FileNotFoundError:
            self._entries, self._stamp = {}, None
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise KeyStoreError(f"corrupt keys file {self.path}: {exc}") from None
        except OSError as exc:
            raise KeyStoreError(f"cannot read keys file {self.path}: {exc.strerror or exc}") from None
        return self._entries

    def _write(self, entries: dict[str, _Entry]) -> None:
        """Replace the file atomically (temp file in the same directory, then rename), mode 0o600."""
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as exc:
            raise KeyStoreError(f"cannot write keys file {self.path}: {exc.strerror or exc}") from None
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(_dump_file(entries))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise KeyStoreError(f"cannot write keys file {self.path}: {exc.strerror or exc}") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        st = self.path.stat()
        self._entries, self._stamp = entries, (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Serialise changes across processes (two `timpora keys` commands must not lose an update)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = self.path.with_name(self.path.name + ".lock").open("a")
        except OSError as exc:
            raise KeyStoreError(f"cannot write keys file {self.path}: {exc.strerror or exc}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def create_demo_keys(store: KeyStore) -> dict[Role, str]:
    """One fresh key per role labelled `demo-<role>`; earlier active demo keys are revoked."""
    tokens: dict[Role, str] = {}
    for role in Role:
        label = f"demo-{role.value}"
        for key in store.list(include_revoked=False):
            if key.label == label:
                store.revoke(key.key_id)
        tokens[role] = store.create(role, label)[1]
    return tokens
