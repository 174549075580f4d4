"""`timpora serve`: the scoring API and the supervisor page, as a BentoML process.

Wiring only: checks that there is a data set and a model, hands the service its
resolved settings through the environment, and replaces this process with it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from timpora.cli_common import fail, say, settings, tracking


def serve(
    data: Annotated[
        Path | None,
        typer.Option(help="Data set directory to serve. Default: TIMPORA_DATA, else <home>/demo."),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on. Default: settings (loopback, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to listen on. Default: settings (3000).")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option(help="Serve this registered version instead of the champion.")
    ] = None,
) -> None:
    """Start the scoring API and the supervisor page (BentoML) on HOST:PORT; Ctrl+C stops it."""
    import os

    import serving

    config = settings()
    host = host or config.serving.host
    port = port or config.serving.port
    directory = (data or config.data_dir).resolve()
    if not directory.is_dir():
        fail(f"no data set at {directory}: run `make run` or `timpora simulate --out {directory}` first")
    _check_model_loads(model_version)
    # The service loads its own settings from the environment: hand it the resolved paths.
    store = config.tracking
    env = {
        **os.environ,
        "TIMPORA_DATA": str(directory),
        "TIMPORA_HOME": str(config.home_dir),
        "TIMPORA_KEYS_FILE": str(config.keys_path.resolve()),
        "TIMPORA_AUDIT_LOG": str(config.audit_path.resolve()),
        "TIMPORA_TRACKING_URI": store.tracking_uri,
        "TIMPORA_ARTIFACT_ROOT": str(store.artifact_root),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    env.setdefault("BENTOML_HOME", str(config.bentoml_home))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep, not spin on a shared core
    if model_version is not None:
        env["TIMPORA_MODEL_VERSION"] = model_version
    base = f"http://{host}:{port}"
    say(
        f"Serving {directory} with model {'v' + model_version if model_version else 'champion'}.\n"
        f"  Supervisor page: {base}/ui/\n  API (OpenAPI):   {base}/  ({base}/docs.json)\n"
        "  Keys: `timpora keys create --role system|supervisor|analyst`;"
        " calls send 'Authorization: Bearer <key>'."
    )
    sys.stdout.flush()
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:InspectionPriority"]
    command += [
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(Path(serving.__file__).resolve().parents[1]),
    ]
    os.execvpe(command[0], command, env)


def _check_model_loads(model_version: str | None) -> None:
    """Load the model the service would serve, before starting it: a missing or unreadable artefact is
    one sentence and exit 1 here, not a worker that restarts forever behind a hanging /readyz."""
    from models.mlflow_store import CHAMPION, NoModelError, RegistryBusyError, load_risk_model

    which = f"version {model_version}" if model_version else "the champion"
    try:
        load_risk_model(tracking(), alias=CHAMPION, version=model_version)
    except NoModelError as exc:  # nothing registered, no champion, no such version
        fail(f"{exc} (see `timpora models`; train and promote with `timpora train DIR`, `timpora promote`)")
    except RegistryBusyError as exc:  # locked by another process through a short retry
        fail(str(exc))
    except Exception as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fail(f"{which} cannot be loaded from the registry ({detail[:300]}): restore its artefacts or retrain")
