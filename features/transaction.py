"""The filesystem side of changing a data set directory: its lock, atomic writes, fsync, the ingest log.

Every writer of a data set (`features.ingest`, `features.lists`,
`features.assignment`) holds the exclusive lock on `<dir>/.ingest.lock` while
it writes, and readers of what they write hold it shared, so a writer never
sees another half-way. A file is replaced through a temporary file in the same
directory: written, fsynced, renamed over the old name (`os.replace`), and the
directory fsynced. An appended line is flushed and fsynced before the writer
goes on.

Nothing here reads or checks data: this module knows files, not tables.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from features.tables import FileFormat, write_frame

LOCK_FILE = ".ingest.lock"
LOG_DIR = "_ingest"  # underscore-prefixed: loaders only open `<table>.<format>` files
LOG_FILE = "log.jsonl"
TEMP_PREFIX = ".ingest-tmp-"  # `<dir>/.ingest-tmp-<table>.<format>` while a table is being written


@contextmanager
def lock(directory: Path, exclusive: bool) -> Iterator[None]:
    """Hold `<dir>/.ingest.lock`: exclusive to write; shared (if the file exists) to read.

    The lock is `flock` on a file of its own, so it waits for another process
    holding it, and is released when the block ends (or the process dies). It is
    not re-entrant: code that holds it must not take it again.
    """
    path = Path(directory) / LOCK_FILE
    if exclusive:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    elif path.exists():
        fd = os.open(path, os.O_RDONLY)
    else:
        yield  # nothing has ever been written here: no writer to wait for, and no file to create
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)  # waits for another writer
        yield
    finally:
        os.close(fd)  # releases the lock


def fsync_directory(directory: Path) -> None:
    """fsync a directory, so the names created, renamed or removed in it are on disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path,
    temporary: Path,
    write: Callable[[Path], object],
    before_replace: Callable[[str], object] | None = None,
) -> str:
    """Write `path` through `temporary` (same directory): write, fsync, rename; the new file's sha256.

    `write` writes the whole content to the path it is given. `before_replace`,
    if given, is called with the new file's sha256 once it is on disk and before
    the rename (a correction logs the rows it replaces there). If anything fails
    the temporary file is removed and `path` is left as it was. The caller
    fsyncs the directory (once, after all of its renames).
    """
    try:
        write(temporary)
        with temporary.open("rb") as f:
            digest = sha256_of(f)
            os.fsync(f.fileno())  # the data is on disk before the name points at it
        if before_replace is not None:
            before_replace(digest)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return digest


def replace_table(
    path: Path, frame: pd.DataFrame, before_replace: Callable[[str], object] | None = None
) -> str:
    """Atomically replace a table file with `frame` in the same format; the new file's sha256.

    The frame is written as `write_tables` writes it. The temporary file is
    `<dir>/.ingest-tmp-<table>.<format>` (never `<table>.<format>`: no loader
    opens it), and the directory is fsynced after the rename. `before_replace`
    is as for `write_atomic`.
    """
    fmt: FileFormat = "csv" if path.suffix == ".csv" else "parquet"
    stem = path.parent / f"{TEMP_PREFIX}{path.stem}"
    temporary = stem.with_suffix(f".{fmt}")
    digest = write_atomic(path, temporary, lambda _: write_frame(frame, stem, fmt), before_replace)
    fsync_directory(path.parent)
    return digest


def remove_stale_temporaries(directory: Path) -> None:
    """Remove the temporary table files of a killed ingest; call it only under the exclusive lock."""
    for path in Path(directory).glob(f"{TEMP_PREFIX}*"):
        path.unlink(missing_ok=True)


def append_line(path: Path, line: str, mode: int = 0o666) -> None:
    """Append one line (its newline added) to a text file, flushed and fsynced; the folder must exist.

    A new file is created with `mode` (less the umask).
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def append_log(directory: Path, line: str) -> int:
    """Append one line to the data set's ingest log `<dir>/_ingest/log.jsonl` (created 0600 if needed).

    Returns the log's size before the line, for `truncate_log`.
    """
    path = log_path(directory)
    path.parent.mkdir(exist_ok=True)
    size = path.stat().st_size if path.exists() else 0
    append_line(path, line, mode=0o600)
    return size


def truncate_log(directory: Path, size: int) -> None:
    """Cut the ingest log back to `size` bytes: take back a line whose change did not happen.

    Only under the exclusive lock, right after `append_log` returned `size`. A log
    that line created is removed again.
    """
    path = log_path(directory)
    if size == 0:
        path.unlink(missing_ok=True)
        return
    with path.open("r+b") as f:
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())


def log_path(directory: Path) -> Path:
    """Where the data set's ingest log is (whether or not anything was ingested)."""
    return Path(directory) / LOG_DIR / LOG_FILE


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of a file's bytes."""
    with path.open("rb") as f:
        return sha256_of(f)


def sha256_of(f: io.BufferedReader) -> str:
    """The sha256 (hex) of what is left to read in an open binary file."""
    return hashlib.file_digest(f, "sha256").hexdigest()


def current_user() -> str:
    """The login name of the process, or "unknown" where there is none."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"
