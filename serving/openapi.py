"""Timpora's face on BentoML's OpenAPI document (`/docs.json`): title, version, auth and refusals.

BentoML describes its own framework: a title from the service name, version "None",
a description of badge images from third-party sites and its team's contact
address, and no word of the API keys. `timpora_openapi` rewrites that document into
this service's: the project's title and description, the package and model
versions, a `bearerAuth` scheme on the operations `serving.access` protects (and on
no public one), and the refusals those operations answer (401, 403, 404; 413 and
415 on POST) with the JSON error body they carry. A pure function of the document,
so it is tested without a server; `serving.index.IndexPage` applies it per request,
since the model version served can change while the service runs.
"""

from __future__ import annotations

import copy
from importlib import metadata
from typing import Any

from serving.access import allowed_roles

TITLE = "Timpora scoring API"
DISTRIBUTION = "timpora"  # [project] name in pyproject.toml
DESCRIPTION = (
    "Inspection priority scores with their reasons for partner systems, the committed inspection "
    "lists of the supervisor page, and the model in service. Every call needs "
    "`Authorization: Bearer <key>`. Scores order work; they never decide an outcome."
)
SCHEME = "bearerAuth"
ERROR_SCHEMA = "Error"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REFUSALS: dict[str, str] = {  # status -> what it means on a protected operation
    "401": "No API key, or a key that is unknown, revoked or expired.",
    "403": "The key's role (or scope) may not call this operation.",
    "404": "The case or list named is unknown, or not visible to this key.",
    "413": "The request body is larger than the service accepts (2 MiB by default).",
    "415": "The request body is not JSON (send Content-Type: application/json).",
}
BODY_REFUSALS = ("413", "415")  # only a request with a body can be refused for it


def package_version() -> str:
    """The installed version of the Timpora package, or "unknown" when it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def api_version(package: str, model_version: str | None) -> str:
    """The version `/docs.json` shows: the package's, and the model's when one is served."""
    return package if model_version is None else f"{package} (model v{model_version})"


def timpora_openapi(spec: dict[str, Any], version: str) -> dict[str, Any]:
    """BentoML's OpenAPI document as Timpora's: a new document, the one given is left unchanged."""
    out = copy.deepcopy(spec)
    info = out.setdefault("info", {})
    info.update(title=TITLE, version=version, description=DESCRIPTION)
    info.pop("contact", None)  # BentoML's own address, not this service's operator
    components = out.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `timpora keys create`, sent as `Authorization: Bearer <key>`.",
    }
    components.setdefault("schemas", {})[ERROR_SCHEMA] = {
        "type": "object",
        "title": ERROR_SCHEMA,
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "What was refused and why."},
            "field": {"type": "string", "nullable": True, "description": "The field at fault, if any."},
        },
    }
    for path, operations in out.get("paths", {}).items():
        if allowed_roles(path) is None:  # public: health, metrics (see serving.access), no key
            continue
        for method, operation in operations.items():
            if method in HTTP_METHODS and isinstance(operation, dict):
                _protect(operation, with_body=method == "post")
    return out


def _protect(operation: dict[str, Any], with_body: bool) -> None:
    """Mark an operation as needing a key and document the refusals it can answer."""
    operation["security"] = [{SCHEME: []}]
    responses = operation.setdefault("responses", {})
    for status, description in REFUSALS.items():
        if status in BODY_REFUSALS and not with_body:
            continue
        responses.pop(int(status), None)  # BentoML's in-process document keys statuses by int
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
        }
