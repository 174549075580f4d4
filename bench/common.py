"""Shared helpers for the benchmark scripts: timing, peak memory, result files."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from collections.abc import Iterator
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
