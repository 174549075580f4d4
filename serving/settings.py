"""The service's settings: every path and switch it reads, declared once and loaded once at its edge.

`ServiceSettings` reads, in order of precedence, the arguments, `TIMPORA_*`
environment variables (nested pieces with `__`, e.g. `TIMPORA_SERVING__PORT=3001`),
a `.env` file, and a TOML file (`TIMPORA_CONFIG`, else `timpora.toml` in the
current directory when present). The service's constructor and the CLI build it;
modules below them receive typed pieces (`ServingSettings`, `DriftSettings`,
`DatasetSettings`, `TrackingConfig`, paths) and never read the environment.

Paths resolve against one home folder (`TIMPORA_HOME`): by default the `var/`
folder of the checkout when Timpora runs from one, else `~/.local/share/timpora`,
so the notebook, the service and the CLI agree wherever they are started from.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from features.settings import DatasetSettings
from models.drift import DriftSettings
from models.mlflow_store import TrackingConfig, local_tracking
from serving.options import ServingSettings

CONFIG_FILE_ENV = "TIMPORA_CONFIG"
CONFIG_FILE = "timpora.toml"
_CHECKOUT = Path(__file__).resolve().parents[1]


def default_home() -> Path:
    """`var/` of the checkout when running from one (an editable install), else the user's data folder."""
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "serving").is_dir():
        return _CHECKOUT / "var"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "timpora"


class SettingsError(ValueError):
    """Settings that cannot be loaded: the variable or file at fault and why, in one sentence each."""


class ServiceSettings(BaseSettings):
    """Everything the scoring service reads: paths, the tracking store, the service, drift, data set."""

    model_config = SettingsConfigDict(
        env_prefix="TIMPORA_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    home: Path = Field(default_factory=default_home, description="Folder of data, registry, keys, logs.")
    data: Path | None = Field(default=None, description="The data set served (default: <home>/demo).")
    model_version: str | None = Field(default=None, description="Serve this version instead of the champion.")
    tracking_uri: str | None = Field(default=None, description="MLflow server (default: SQLite in <home>).")
    artifact_root: Path | None = Field(default=None, description="Artefacts of the embedded store.")
    keys_file: Path | None = Field(default=None, description="Hashed API keys (default: <home>/serving).")
    audit_log: Path | None = Field(default=None, description="Request log (default: <home>/serving).")
    audit_secret: Path | None = Field(
        default=None, description="HMAC secret of the audit log's ids (default: beside the keys file)."
    )
    serving: ServingSettings = Field(default_factory=ServingSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    dataset: DatasetSettings = Field(default_factory=DatasetSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, dotenv_settings]
        if toml := config_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    # -- resolved paths ----------------------------------------------------------------------------

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def data_dir(self) -> Path:
        """The data set served: `TIMPORA_DATA`, else `<home>/demo` (what `make run` simulates)."""
        return self.data.expanduser() if self.data else self.home_dir / "demo"

    @property
    def keys_path(self) -> Path:
        return self.keys_file.expanduser() if self.keys_file else self.home_dir / "serving" / "keys.json"

    @property
    def audit_path(self) -> Path:
        return self.audit_log.expanduser() if self.audit_log else self.home_dir / "serving" / "audit.jsonl"

    @property
    def audit_secret_path(self) -> Path:
        """`TIMPORA_AUDIT_SECRET`, else `audit.secret` beside the keys file (default `<home>/serving`)."""
        return self.audit_secret.expanduser() if self.audit_secret else self.keys_path.parent / "audit.secret"

    @property
    def bentoml_home(self) -> Path:
        return self.home_dir / "bentoml"

    @property
    def tracking(self) -> TrackingConfig:
        """The MLflow store: `TIMPORA_TRACKING_URI`, else SQLite under `<home>/mlflow`."""
        local = local_tracking(self.home_dir)
        root = self.artifact_root.expanduser().resolve() if self.artifact_root else local.artifact_root
        return TrackingConfig(tracking_uri=self.tracking_uri or local.tracking_uri, artifact_root=root)


def config_file() -> Path | None:
    """The TOML settings file: `TIMPORA_CONFIG` (which must exist), else `./timpora.toml` when present."""
    named = os.environ.get(CONFIG_FILE_ENV)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise SettingsError(f"{CONFIG_FILE_ENV}={named}: no such settings file")
        return path
    local = Path(CONFIG_FILE)
    return local if local.is_file() else None


def describe_error(error: ValidationError) -> str:
    """One sentence per bad setting, named as its environment variable."""
    lines = []
    for problem in error.errors():
        where = "__".join(str(part) for part in problem["loc"]).upper()
        lines.append(f"TIMPORA_{where}: {problem['msg']} (got {problem.get('input')!r})")
    return "; ".join(lines)


def load_service_settings() -> ServiceSettings:
    """The service's settings from the environment and files; SettingsError names what is wrong."""
    try:
        return ServiceSettings()
    except ValidationError as error:
        raise SettingsError(f"invalid settings: {describe_error(error)}") from None
