"""Audit log: concurrent appends stay whole lines, tail reads the end, ids are only ever hashed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import serving.request_log as audit_module
from serving.request_log import AuditLog, hash_ids


def test_append_adds_time_first(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a" / "b" / "audit.jsonl")
    log.append({"endpoint": "/score", "status": 200, "as_of": dt.date(2025, 3, 1)})
    [line] = log.path.read_text().splitlines()
    record = json.loads(line)
    assert list(record) == ["time", "endpoint", "status", "as_of"]
    assert record["as_of"] == "2025-03-01"
    time = dt.datetime.fromisoformat(record["time"])
    assert time.tzinfo is not None and time.utcoffset() == dt.timedelta(0)
    assert len(record["time"]) == len("2025-01-01T00:00:00.000Z")


def test_append_keeps_a_given_time(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"endpoint": "/list", "time": "2025-01-01T00:00:00.000Z"})
    assert log.tail() == [{"endpoint": "/list", "time": "2025-01-01T00:00:00.000Z"}]


def test_newlines_in_values_stay_on_one_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append({"key_label": "two\nlines [red]x[/]", "status": 200})
    assert len(log.path.read_text().splitlines()) == 1
    assert log.tail()[0]["key_label"] == "two\nlines [red]x[/]"


@pytest.mark.parametrize("value", [float("nan"), object()])
def test_non_json_values_are_refused(tmp_path: Path, value: object) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises((TypeError, ValueError)):
        log.append({"status": value})
    assert not log.path.exists() or log.path.read_text() == ""


def test_concurrent_appends_give_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    threads_n, per_thread = 8, 200
    padding = "x" * 300  # long enough that interleaved writes would show

    shared = AuditLog(path)

    def worker(t: int) -> None:
        # Half the threads share one instance, half have their own: then only the file lock serialises.
        log = shared if t % 2 else AuditLog(path)
        for i in range(per_thread):
            log.append({"thread": t, "i": i, "pad": padding})

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == threads_n * per_thread
    records = [json.loads(line) for line in lines]
    assert {(r["thread"], r["i"]) for r in records} == {
        (t, i) for t in range(threads_n) for i in range(per_thread)
    }
    for t in range(threads_n):  # each thread's records in the order it wrote them
        assert [r["i"] for r in records if r["thread"] == t] == list(range(per_thread))


def test_tail_returns_the_last_n_oldest_first(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    assert log.tail() == []
    for i in range(50):
        log.append({"i": i})
    assert [r["i"] for r in log.tail()] == list(range(30, 50))
    assert [r["i"] for r in log.tail(3)] == [47, 48, 49]
    assert [r["i"] for r in log.tail(1000)] == list(range(50))
    assert log.tail(0) == []


def test_tail_reads_backwards_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_module, "_BLOCK", 64)  # many blocks, lines split across them
    log = AuditLog(tmp_path / "audit.jsonl")
    for i in range(200):
        log.append({"i": i, "label": "é" * (i % 7)})  # multi-byte characters across block edges
    for n in (1, 5, 37, 199, 200, 500):
        assert [r["i"] for r in log.tail(n)] == list(range(max(0, 200 - n), 200)), n
    assert log.tail(2)[-1]["label"] == "é" * (199 % 7)


def test_tail_does_not_read_the_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    line = json.dumps({"pad": "x" * 1000}) + "\n"
    path.write_text(line * 5_000)  # about 5 MB
    bytes_read = 0
    real_open = open

    class CountingFile:
        def __init__(self, f) -> None:  # type: ignore[no-untyped-def]
            self._f = f

        def read(self, size: int = -1) -> bytes:
            nonlocal bytes_read
            data = self._f.read(size)
            bytes_read += len(data)
            return data

        def __getattr__(self, name: str) -> object:
            return getattr(self._f, name)

        def __enter__(self) -> CountingFile:
            return self

        def __exit__(self, *exc: object) -> None:
            self._f.close()

    monkeypatch.setattr(audit_module, "open", lambda *a, **k: CountingFile(real_open(*a, **k)), raising=False)
    assert len(AuditLog(path).tail(20)) == 20
    assert 0 < bytes_read <= 2 * audit_module._BLOCK


def test_tail_marks_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"i": 1}\nnot json\n\n[1, 2]\n{"i": 2}\n{"i": 3')  # last line cut short
    assert AuditLog(path).tail(10) == [
        {"i": 1},
        {"malformed": "not json"},
        {"malformed": "[1, 2]"},
        {"i": 2},
        {"malformed": '{"i": 3'},
    ]


def test_log_is_only_appended_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"time": "2024-01-01T00:00:00.000Z", "old": true}\n')
    modes: list[str] = []
    real_open = open

    def spy(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        modes.append(mode)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(audit_module, "open", spy, raising=False)
    log = AuditLog(path)
    log.append({"new": 1})
    log.append({"new": 2})
    log.tail()
    assert modes and all(m.startswith("a") or m == "rb" for m in modes), modes
    assert not any(c in m for m in modes for c in "w+x")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[0] == {"time": "2024-01-01T00:00:00.000Z", "old": True}
    assert [r.get("new") for r in records[1:]] == [1, 2]


SECRET = bytes(range(32))


def test_hash_ids_is_an_hmac_of_the_ordered_lines() -> None:
    assert hash_ids(["p1", "p2"], SECRET) == hmac.new(SECRET, b"p1\np2", hashlib.sha256).hexdigest()
    assert hash_ids(["p1", "p2"], SECRET) != hash_ids(["p2", "p1"], SECRET)
    assert hash_ids(iter(["p1", "p2"]), SECRET) == hash_ids(("p1", "p2"), SECRET)
    assert hash_ids([], SECRET) == hmac.new(SECRET, b"", hashlib.sha256).hexdigest()
    with pytest.raises(TypeError):
        hash_ids("p1", SECRET)
    with pytest.raises(TypeError):
        hash_ids(["p1"], b"")  # no unkeyed hashing by mistake


def test_appends_from_several_processes_give_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    script = (
        "import sys\nfrom pathlib import Path\nfrom serving.request_log import AuditLog\n"
        "log = AuditLog(Path(sys.argv[1]))\n"
        "for i in range(200):\n    log.append({'worker': int(sys.argv[2]), 'i': i, 'pad': 'y' * 500})\n"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(path), str(w)], cwd=Path(__file__).parents[1])
        for w in range(4)
    ]
    assert [w.wait(timeout=60) for w in workers] == [0] * 4
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((r["worker"], r["i"]) for r in records) == [(w, i) for w in range(4) for i in range(200)]
