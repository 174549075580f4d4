"""`timpora settings`: the settings in force, after the environment, `.env` and the TOML file."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from timpora.cli_common import say, settings


def _plain(value: Any) -> Any:
    """JSON-ready: paths and dates as text, tuples as lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def show_settings(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of aligned lines.")] = False,
) -> None:
    """Print the settings in force (TIMPORA_* variables, .env, TIMPORA_CONFIG or ./timpora.toml) and the
    paths they resolve to."""
    loaded = settings()
    tracking = loaded.tracking
    values = _plain(loaded.model_dump()) | {
        "resolved": {
            "home": str(loaded.home_dir),
            "data": str(loaded.data_dir),
            "keys_file": str(loaded.keys_path),
            "audit_log": str(loaded.audit_path),
            "tracking_uri": tracking.tracking_uri,
            "artifact_root": str(tracking.artifact_root),
        }
    }
    if as_json:
        say(json.dumps(values, indent=2, sort_keys=True))
        return
    for section, content in values.items():
        if isinstance(content, dict):
            for key, value in content.items():
                say(f"{section}.{key} = {json.dumps(value)}")
        else:
            say(f"{section} = {json.dumps(content)}")
