"""Strict checks of a JSON request body before BentoML parses it: one answer, no values echoed.

BentoML validates a body against the input model it builds from an API method's
signature, but leniently: `true` and `"5"` pass as integers, `1` as a boolean,
the last of two equal keys wins and unknown fields are dropped; and a refusal
answers with links to pydantic's website and logs a traceback that carries the
input. `check_body` refuses all of these first, with the same input model
(validated in strict JSON mode), so what reaches BentoML is already valid and
the answer names the field without repeating what was sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

MAX_NAME = 64  # characters of a caller's field name repeated in an answer or a log line


@dataclass(frozen=True)
class BodyError:
    """Why a body was refused: the message and field for the caller, a short reason for the audit log."""

    message: str
    field: str | None  # None when the body as a whole is wrong
    reason: str  # e.g. "schema: field k": names declared fields only, never a value or a caller's key
    detail: tuple[dict[str, object], ...] = ()  # per error: loc, msg, type

    def answer(self) -> dict[str, object]:
        """The JSON answer: `error` and `field`, and pydantic's location and message per error."""
        return {"error": self.message, "field": self.field, "detail": list(self.detail)}


class _DuplicateKey(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` that refuses an object naming a key twice (json keeps the last one)."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _DuplicateKey(name)
        result[name] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json accepts them, JSON does not


def _name(text: object) -> str:
    """A caller-supplied field name, shortened and printable (it is only ever a key, never a value)."""
    shown = str(text)[:MAX_NAME]
    return shown if shown.isprintable() else shown.encode("unicode_escape").decode("ascii")


def check_body(body: bytes, model: type[BaseModel]) -> BodyError | None:
    """None if `body` is a JSON object that `model` accepts strictly, else why not.

    An empty body is `{}`, as BentoML reads it. Refused: text that is not JSON (or not
    UTF-8), anything but an object, a key given twice at any depth, a field the model does
    not declare, and a value of the wrong type (no coercion of booleans, numbers or text).
    """
    raw = body or b"{}"
    try:
        data = json.loads(raw, object_pairs_hook=_unique_pairs, parse_constant=_no_constant)
    except _DuplicateKey as duplicate:
        name = _name(duplicate.name)
        declared = f" {name}" if name in model.model_fields else ""  # a caller's own key: not logged
        return BodyError(
            f"the key {name!r} is given more than once", name, f"schema: duplicate key{declared}"
        )
    except (UnicodeDecodeError, ValueError):
        return BodyError("the body is not valid JSON", None, "schema: body not JSON")
    if not isinstance(data, dict):
        return BodyError(
            "the body must be a JSON object of the endpoint's fields", None, "schema: body not an object"
        )
    unknown = sorted(set(data) - set(model.model_fields))
    if unknown:
        name = _name(unknown[0])
        known = ", ".join(model.model_fields)
        return BodyError(f"unknown field {name!r} (fields: {known})", name, "schema: unknown field")
    try:
        model.model_validate_json(raw, strict=True)
    except ValidationError as error:
        return validation_error(error)
    return None


def closed(model: type[BaseModel]) -> type[BaseModel]:
    """The input model with unknown fields forbidden, changed in place and returned.

    In place, so that BentoML's own validation and the OpenAPI document it builds from
    the model (`additionalProperties: false`) say what `check_body` enforces.
    """
    if model.model_config.get("extra") != "forbid":
        model.model_config["extra"] = "forbid"
        model.model_rebuild(force=True)
    return model


def validation_error(error: ValidationError) -> BodyError:
    """A pydantic error as a BodyError: locations, messages and types only (no input, no URL)."""
    errors = error.errors(include_url=False, include_context=False, include_input=False)
    detail = tuple(dict[str, object](loc=list(e["loc"]), msg=e["msg"], type=e["type"]) for e in errors)
    loc = errors[0]["loc"]
    name = _name(loc[0]) if loc else None
    where = ".".join(str(part) for part in loc) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return BodyError(f"{where}: {errors[0]['msg']}{more}", name, f"schema: field {name}", detail)
