"""Shared helpers for the benchmark scripts: timing, peak memory, result files."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(record: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    record[f"{name}_s"] = round(time.perf_counter() - start, 2)
    record[f"{name}_peak_rss_mib"] = round(peak_rss_mib(), 1)


def save(benchmark: str, record: dict[str, object]) -> None:
    """Append one JSON line to bench/results/<benchmark>.jsonl and print it."""
    RESULTS.mkdir(exist_ok=True)
    if _WINDOW:
        record = {**record, **_others_since_start()}
    record = {
        "benchmark": benchmark,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **record,
    }
    with (RESULTS / f"{benchmark}.jsonl").open("a") as out:
        out.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=2))


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    """CPU ticks (user + system) of every process now, with a short command name."""
    ticks: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks[int(entry.name)] = (cmdline.strip()[:120] or stat.split()[1], int(fields[11]) + int(fields[12]))
    return ticks


def machine_state(sample_s: float = 1.0) -> dict[str, object]:
    """What else runs on the machine just before a measurement.

    `load_before`: the 1/5/15-minute load averages (they include this benchmark's
    own earlier processes); `other_busy_cpus`: CPUs used by other processes over
    `sample_s` seconds sampled now; `other_busy`: those processes (over 20% of a CPU).
    """
    me = os.getpid()
    hz = os.sysconf("SC_CLK_TCK")
    before = _cpu_ticks()
    time.sleep(sample_s)
    after = _cpu_ticks()
    busy = []
    total = 0.0
    for pid, (name, ticks) in after.items():
        if pid == me or pid not in before:
            continue
        used = (ticks - before[pid][1]) / hz / sample_s
        total += used
        if used > 0.2:
            busy.append(f"{pid} {used:.2f} {name}")
    return {
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "other_busy_cpus": round(total, 2),
        "other_busy": busy,
    }


def wait_quiet(max_wait_s: float = 0.0, threshold: float = 0.5) -> dict[str, object]:
    """Wait (up to max_wait_s) until other processes use under `threshold` CPUs; return the state."""
    deadline = time.monotonic() + max_wait_s
    state = machine_state()
    while float(state["other_busy_cpus"]) >= threshold and time.monotonic() < deadline:  # type: ignore[arg-type]
        time.sleep(10)
        state = machine_state()
    if float(state["other_busy_cpus"]) >= threshold or state["load_before"][0] > 1.5:  # type: ignore[index, arg-type]
        state["note"] = "machine busy before this measurement: figures may be slower than on an idle machine"
    return state


CODE_PATHS = ("features", "models", "training", "simulator", "timpora")


def git_state(paths: Sequence[str] = CODE_PATHS) -> dict[str, object]:
    """The commit measured, and whether the code under measurement (`paths`) had uncommitted changes."""
    import subprocess

    root = Path(__file__).parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *paths],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return {}
    changed = sorted(line[3:] for line in dirty if line.strip())
    return {"commit": commit, "uncommitted": changed}


def before_measurement(code_paths: Sequence[str] = CODE_PATHS) -> dict[str, object]:
    """Machine state and code version for a record; waits for a quiet machine if asked.

    BENCH_WAIT_QUIET_S (seconds, default 0) makes it wait up to that long for other
    processes to go quiet first (`run_all.py --wait-quiet` sets it).
    """
    state = {**wait_quiet(float(os.environ.get("BENCH_WAIT_QUIET_S", "0"))), **git_state(code_paths)}
    _WINDOW.update(start=time.perf_counter(), busy=_system_busy_s(), own=_own_cpu_s())
    return state


_WINDOW: dict[str, float] = {}
_ALSO_OWN: list[Callable[[], float]] = []


def count_as_own(cpu_seconds: Callable[[], float]) -> None:
    """Count the CPU seconds `cpu_seconds()` reports (e.g. a server this benchmark started) as its own.

    Children not yet waited for are not in RUSAGE_CHILDREN, so without this a
    server under measurement would show up in `other_cpus_during`.
    """
    _ALSO_OWN.append(cpu_seconds)


def _system_busy_s() -> float:
    """CPU seconds all processes have used since boot (every state but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    also = sum(cpu_seconds() for cpu_seconds in _ALSO_OWN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + also


def _others_since_start() -> dict[str, float]:
    """CPUs other processes used on average since `before_measurement` (0 = quiet, 2 = both cores)."""
    wall = time.perf_counter() - _WINDOW["start"]
    others = (_system_busy_s() - _WINDOW["busy"]) - (_own_cpu_s() - _WINDOW["own"])
    return {"other_cpus_during": round(max(others, 0.0) / max(wall, 1e-9), 2), "window_s": round(wall, 1)}


PROFILES = Path(__file__).parent.parent / "var" / "bench" / "profiles"


@contextmanager
def profiled(name: str | None, top: int = 45) -> Iterator[None]:
    """cProfile the block when name is given; text reports go to var/bench/profiles/<name>.txt."""
    if not name:
        yield
        return
    import cProfile
    import io
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        PROFILES.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(PROFILES / f"{name}.prof")
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text).strip_dirs()
        for key in ("cumulative", "tottime"):
            text.write(f"\n===== sorted by {key} =====\n")
            stats.sort_stats(key).print_stats(top)
        (PROFILES / f"{name}.txt").write_text(text.getvalue())
        print(f"profile: {PROFILES / name}.txt")
