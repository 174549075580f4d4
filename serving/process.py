"""`timpora serve` as a child process: start it, wait until it answers /readyz, stop its process group.

Used by the test suite and the serving benchmark, so both exercise the real
command an operator runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class ServiceProcess:
    url: str
    pid: int  # leader of the service's process group
    startup_s: float  # from launch to the first 200 from /readyz


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    """Poll /readyz; raise with the tail of the service's log if it exits or is not ready in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the service exited with {process.returncode}:\n{log_path.read_text()[-4000:]}"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the service was not ready within {timeout_s} s:\n{log_path.read_text()[-4000:]}")


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float = 20) -> None:
    """SIGTERM the process group, SIGKILL after `grace_s`; a group that already exited is fine."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def running_service(
    command: list[str], env: Mapping[str, str], port: int, log_path: Path, timeout_s: float = 120
) -> Iterator[ServiceProcess]:
    """Run a serving command (e.g. `serve_command(...)`) in its own process group until the block ends."""
    url, start = f"http://127.0.0.1:{port}", time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until_ready(url, process, log_path, timeout_s)
        yield ServiceProcess(url, process.pid, time.perf_counter() - start)
    finally:
        stop_process_group(process)


def serve_command(data_dir: Path, port: int) -> list[str]:
    """`timpora serve` from this interpreter's environment, on loopback."""
    timpora = str(Path(sys.executable).parent / "timpora")
    return [timpora, "serve", "--data", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
