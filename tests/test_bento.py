"""`bentoml build` packages the service from the checkout, and the built Bento serves real requests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import LiveService

from serving.process import free_port, running_service

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_built_bento_serves_scores(live_service: LiveService, tmp_path: Path) -> None:
    env = {
        **live_service.env,
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "TIMPORA_DATA": str(live_service.data_dir),
    }
    bentoml = str(Path(sys.executable).parent / "bentoml")
    build = subprocess.run(
        [bentoml, "build", str(ROOT)], env=env, capture_output=True, text=True, timeout=300
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    bentos = list((tmp_path / "bentoml" / "bentos" / "timpora-inspection-priority").glob("*/bento.yaml"))
    assert len(bentos) == 1
    source = bentos[0].parent / "src"
    assert (source / "serving" / "page" / "index.html").is_file()
    assert not (source / "tests").exists() and not (source / "var").exists()
    assert {p.name for p in source.iterdir() if p.is_dir()} == {"serving", "features", "models"}
    _imports_without_the_rest(source, env)

    port = free_port()
    command = [
        bentoml,
        "serve",
        "timpora-inspection-priority:latest",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with running_service(command, env, port, tmp_path / "bento.log") as bento:
        headers = {"Authorization": f"Bearer {live_service.keys['system']}"}
        listed = httpx.post(
            f"{live_service.url}/inspection_list",
            json={"k": 3, "exploration_share": 0},
            headers={"Authorization": f"Bearer {live_service.keys['supervisor']}"},
            timeout=30,
        ).json()
        ids = [row["person_id"] for row in listed["rows"]]
        from_bento = httpx.post(f"{bento.url}/score", json={"person_ids": ids}, headers=headers, timeout=30)
        from_serve = httpx.post(
            f"{live_service.url}/score", json={"person_ids": ids}, headers=headers, timeout=30
        )
        assert from_bento.status_code == 200, from_bento.text
        assert from_bento.json()["results"] == from_serve.json()["results"]


def _imports_without_the_rest(source: Path, env: dict[str, str]) -> None:
    """The Bento's service imports from its own sources alone: no training, simulator or command line.

    `python -S` skips site-packages' .pth files, so the editable install of this
    checkout is not on the path; the venv's site-packages is added by hand.
    """
    site = next(p for p in sys.path if p.endswith("site-packages"))
    probe = (
        "import sys, importlib.util\n"
        "import serving.service\n"
        "assert serving.service.__file__.startswith(sys.argv[1]), serving.service.__file__\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "loaded = sorted(top & {'training', 'simulator', 'loop', 'timpora'})\n"
        "assert not loaded, loaded\n"
        "assert importlib.util.find_spec('training') is None, 'training is importable'\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(source)],
        env={**env, "PYTHONPATH": f"{source}:{site}"},
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), (
        done.stdout[-2000:] + done.stderr[-3000:]
    )
