"""Where registered models live and how to read them: the MLflow store and the registry's read side.

The default store runs on a laptop without a server: a SQLite database and an
artefact directory under the home's `mlflow/` folder, both absolute paths so
nothing depends on the current directory; a tracking URI points at a server
instead. Serving, drift and the CLI load a model by alias or version through
this module; registering and promoting (the write side) are in
`training.model_registry`. Nothing here touches MLflow or the disk at import.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import mlflow
from mlflow.exceptions import MlflowException
from sqlalchemy import event
from sqlalchemy.engine import Engine

from models.pyfunc import RiskModelPyfunc
from models.ranker import RiskModel

_QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",  # otherwise each process tries a telemetry host once
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
SQLITE_PREFIX = "sqlite:///"
# A registry whose SQLite file another process holds locked: each statement waits this long (MLflow's own
# wait is 20 s per statement), and an operation is tried this often, 0.1 s then 0.2 s apart, before it is
# reported busy. About 2 s in all: a CLI answers in one line and /model stays fast.
LOCK_WAIT_MS = 500
LOCK_ATTEMPTS = 3
_LOCK_WAIT_PRAGMA = "PRAGMA busy_timeout"  # MLflow sets 20000 on every session (mlflow.store.db.utils)

_T = TypeVar("_T")

CHAMPION = "champion"
CHALLENGER = "challenger"

# Run tags
REGISTERED_TAG = "registered"
REGISTERED_VERSION_TAG = "registered_version"
GATE_FAILURES_TAG = "gate_failures"
DECISION_TAG = "decision"  # JSON: the registration decision with its evidence
# Model version tags
METRICS_TAG = "metrics"  # JSON: the headline summary, `model/<metric>`, `champion/<metric>`, ...
BIAS_FLAGS_TAG = "bias_flags"  # JSON list: this version's flags on its hold-out
CHAMPION_BIAS_FLAGS_TAG = "champion_bias_flags"  # JSON list: the champion's flags on the same hold-out
COMPARED_WITH_TAG = "compared_with"  # the champion version evaluated on this version's hold-out
GATES_TAG = "gates"
VERSUS_CHAMPION_TAG = "versus_champion"  # JSON: challenger - champion evidence on the same hold-out
FAIRNESS_BLOCKS_TAG = "fairness_blocks"  # JSON list: fairness checks that block promotion
PROMOTION_DECISION_TAG = "promotion_decision"  # JSON: the promotion decision with its evidence
PREVIOUS_CHAMPION_TAG = "previous_champion"
PROMOTED_AT_TAG = "promoted_at"
PROMOTED_BY_TAG = "promoted_by"
PROMOTION_REFUSED_TAG = "promotion_refused"
FORCED_REASON_TAG = "forced_reason"
FORCED_BY_TAG = "forced_by"
FORCED_AT_TAG = "forced_at"
FORCED_OVER_TAG = "forced_over"  # JSON list: the objections a forced promotion overrode
ROLLED_BACK_FROM_TAG = "rolled_back_from"
ROLLED_BACK_TO_TAG = "rolled_back_to"
ROLLED_BACK_AT_TAG = "rolled_back_at"
ROLLED_BACK_BY_TAG = "rolled_back_by"


@dataclass(frozen=True)
class TrackingConfig:
    """Where MLflow runs, artefacts and registered models live."""

    tracking_uri: str
    artifact_root: Path
    experiment: str = "timpora"
    model_name: str = "timpora-risk"


def local_tracking(home: Path) -> TrackingConfig:
    """The embedded store under a home folder: `<home>/mlflow/mlflow.db` and `<home>/mlflow/artifacts`."""
    store = home.expanduser().resolve() / "mlflow"
    return TrackingConfig(
        tracking_uri=f"{SQLITE_PREFIX}{(store / 'mlflow.db').as_posix()}", artifact_root=store / "artifacts"
    )


class _DropLockTraceback(logging.Filter):
    """Drop MLflow's logged traceback of a locked SQLite registry (about 100 lines per failed statement).

    The lock is reported once, as `RegistryBusyError`, by whoever asked; other database
    errors keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not registry_locked(error)


class _DropPickleNotice(logging.Filter):
    """Drop MLflow's notice that a python_model object is cloudpickled.

    `RiskModelPyfunc` is stateless (the model is in its artefact files), so the
    notice says nothing useful on every training run.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Passing a Python object as `python_model`")


def quiet_mlflow() -> None:
    """No telemetry, no progress bars, only warnings from MLflow and its migrations. Call at the edge.

    Explicit settings in the environment win. MLflow creates its telemetry client
    at import, so it is re-created here under the new setting.
    """
    for name, value in _QUIET_ENV.items():
        os.environ.setdefault(name, value)
    if "mlflow" in sys.modules:
        from mlflow.telemetry import set_telemetry_client

        set_telemetry_client()
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, kind in (("mlflow.pyfunc", _DropPickleNotice), ("mlflow.store.db.utils", _DropLockTraceback)):
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())


def store_exists(config: TrackingConfig) -> bool:
    """False for a SQLite store whose file is absent: reading it would first create an empty one, slowly."""
    if not config.tracking_uri.startswith(SQLITE_PREFIX):
        return True
    return Path(config.tracking_uri.removeprefix(SQLITE_PREFIX)).exists()


def tracking_client(config: TrackingConfig) -> mlflow.MlflowClient:
    """A client on the configured store; also points MLflow's process-wide URIs (model loading) at it.

    On a SQLite store, every SQLite connection of this process then waits at most
    LOCK_WAIT_MS for a lock (see `_short_lock_waits`).
    """
    if config.tracking_uri.startswith(SQLITE_PREFIX):
        _short_lock_waits()
    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    return mlflow.MlflowClient(config.tracking_uri, config.tracking_uri)


class RegistryError(RuntimeError):
    """A registry operation that cannot go ahead."""


class NoModelError(RegistryError):
    """Nothing registered under the name, or no version behind the alias or number asked for."""


class RegistryBusyError(RegistryError):
    """The registry's database stayed locked by another process through a short retry: try again later."""


def _lock_wait_on_connect(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")


def _shorter_lock_wait(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _executemany: bool
) -> tuple[str, Any]:
    if statement.startswith(_LOCK_WAIT_PRAGMA):
        return f"{_LOCK_WAIT_PRAGMA} = {LOCK_WAIT_MS};", parameters
    return statement, parameters


def _short_lock_waits() -> None:
    """Make every SQLite connection of this process wait LOCK_WAIT_MS, not 5-20 s, for another's lock.

    MLflow offers no setting for it: it sets a 20 s wait on each session, which this
    rewrites, and sqlite3 waits 5 s when a connection opens, which the connect hook
    replaces. Installed once, on SQLAlchemy's Engine class (MLflow makes its engines).
    """
    if not event.contains(Engine, "connect", _lock_wait_on_connect):
        event.listen(Engine, "connect", _lock_wait_on_connect)
    if not event.contains(Engine, "before_cursor_execute", _shorter_lock_wait):
        event.listen(Engine, "before_cursor_execute", _shorter_lock_wait, retval=True)


def registry_locked(error: BaseException) -> bool:
    """True when the error, or one it was raised from, is SQLite's "database is locked"."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if "database is locked" in str(current) or "database table is locked" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def retry_when_locked(
    config: TrackingConfig, what: str, call: Callable[[], _T], attempts: int = LOCK_ATTEMPTS
) -> _T:
    """`call()`, tried `attempts` times while the registry is locked; then RegistryBusyError.

    Only a lock is retried: any other error propagates at once. `what` completes
    the sentence "could not ..." of the error.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as error:
            if not registry_locked(error):
                raise
            if attempt >= attempts:
                tries = "once" if attempts == 1 else f"in {attempts} tries"
                raise RegistryBusyError(
                    f"the model registry ({config.tracking_uri}) is locked by another process: could not "
                    f"{what} {tries}; try again in a moment"
                ) from error
            time.sleep(0.1 * 2 ** (attempt - 1))
    raise AssertionError("unreachable: the last attempt returns or raises")


def stored_flags(text: str | None) -> list[str]:
    return [str(flag) for flag in json.loads(text)] if text else []


def stored_summary(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    return {k: (math.nan if v is None else float(v)) for k, v in json.loads(text).items()}


@dataclass(frozen=True)
class VersionRecord:
    """What the registry functions read of a model version (MLflow returns the number as int or str)."""

    number: str
    tags: dict[str, str]


def registered_aliases(client: mlflow.MlflowClient, name: str) -> dict[str, str]:
    """Alias -> version number of the registered model; NoModelError when nothing is registered."""
    try:
        return {alias: str(v) for alias, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NoModelError(f"no model registered as {name!r}: train and register one first") from error
        raise


def version_record(client: mlflow.MlflowClient, name: str, version: str) -> VersionRecord:
    try:
        found = client.get_model_version(name, version)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise NoModelError(f"{name!r} has no version {version}") from error
        raise
    return VersionRecord(number=str(found.version), tags=dict(found.tags))


def version_by_alias(client: mlflow.MlflowClient, name: str, alias: str) -> VersionRecord | None:
    version = registered_aliases(client, name).get(alias)
    return None if version is None else version_record(client, name, version)


@dataclass(frozen=True)
class VersionDetails:
    """What a service shows about the version it serves: its aliases, headline metrics and bias flags."""

    version: str
    aliases: tuple[str, ...]
    metrics: dict[str, float]
    bias_flags: list[str]


def alias_version(config: TrackingConfig, alias: str = CHAMPION) -> str | None:
    """The version number the alias points to now (None if none); RegistryBusyError while locked."""

    def read() -> str | None:
        return registered_aliases(tracking_client(config), config.model_name).get(alias)

    return retry_when_locked(config, f"read the {alias} alias", read)


def version_details(config: TrackingConfig, version: str, attempts: int = LOCK_ATTEMPTS) -> VersionDetails:
    """The aliases, recorded headline metrics and bias flags of a registered version.

    RegistryBusyError when the registry stays locked through `attempts` tries (a
    caller with a fallback, such as the service's /model, tries once).
    """
    return retry_when_locked(
        config, f"read version {version}", lambda: _version_details(config, version), attempts
    )


def _version_details(config: TrackingConfig, version: str) -> VersionDetails:
    client = tracking_client(config)
    found = version_record(client, config.model_name, str(version))
    aliases = sorted(
        a for a, number in registered_aliases(client, config.model_name).items() if number == found.number
    )
    return VersionDetails(
        version=found.number,
        aliases=tuple(aliases),
        metrics={k: v for k, v in stored_summary(found.tags.get(METRICS_TAG)).items() if not math.isnan(v)},
        bias_flags=[_flag_text(flag) for flag in stored_flags(found.tags.get(BIAS_FLAGS_TAG))],
    )


def _flag_text(stored: str) -> str:
    """A stored flag as a sentence: the record's `text` (older versions stored the sentence itself)."""
    try:
        data = json.loads(stored)
    except json.JSONDecodeError:
        return stored
    if not isinstance(data, dict):
        return stored
    if "text" in data:
        return str(data["text"])
    # A record written before flags carried their sentence: its key and ratio.
    key = f"{data.get('view')}: {data.get('attribute')}={data.get('group')}: {data.get('metric')}"
    return f"{key} {data.get('ratio')}x"


def load_risk_model(
    config: TrackingConfig, alias: str = CHAMPION, version: str | None = None
) -> tuple[RiskModel, str]:
    """The RiskModel behind an alias (or a pinned version number) and that version.

    Loads `models:/<name>/<version>` after resolving the alias once, so the
    version returned is the one loaded even if the alias moves meanwhile.
    RegistryBusyError when the registry stays locked through a short retry.
    """
    if not store_exists(config):
        raise NoModelError(f"no tracking store at {config.tracking_uri}: train and register a model first")
    which = f"version {version}" if version else f"the {alias}"
    return retry_when_locked(config, f"load {which}", lambda: _load_risk_model(config, alias, version))


def _load_risk_model(config: TrackingConfig, alias: str, version: str | None) -> tuple[RiskModel, str]:
    name = config.model_name
    client = tracking_client(config)
    if version is None:
        found = version_by_alias(client, name, alias)
        if found is None:
            raise NoModelError(f"{name!r} has no version with alias {alias!r}")
    else:
        found = version_record(client, name, str(version))
    python_model = mlflow.pyfunc.load_model(f"models:/{name}/{found.number}").unwrap_python_model()
    if not isinstance(python_model, RiskModelPyfunc):
        raise RegistryError(f"{name} v{found.number} is not a Timpora RiskModel pyfunc")
    return python_model.risk_model, found.number
