"""What the service log says about requests: refusals in one line, failures without request values.

`serving.access` logs each refused body at INFO with the endpoint and the field
(`install` lets the `timpora` loggers' INFO lines through: BentoML's own
configuration passes only warnings from loggers that are not its own).

BentoML logs every failed API call with `logger.error(..., exc_info=True)`; for a
pydantic ValidationError the traceback's last line lists each input
(`input_value='P0004132'`), and any exception's message may carry a person id.
`RedactValues`, a filter on those loggers, rewrites such records in place:

- a ValidationError (a 4xx) becomes one INFO line with the endpoint and the
  fields, no traceback and no values;
- any other exception (a 5xx) keeps its traceback (files, lines, code) and the
  exception types of the chain, but not their messages.

`serving.access` refuses bad bodies before BentoML parses them, so the first
case is a second line of defence (e.g. a response model that fails to validate).
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType

from pydantic import ValidationError

LOGGERS = ("bentoml._internal.server.http_app", "uvicorn.error")  # where a failed request is logged
OUR_LOGGERS = "timpora"  # serving.access, serving.service: refusals and the model served, at INFO
WITHHELD = "(message withheld: it may carry request values)"


def _tb_text(exc: BaseException | None) -> str:
    """The traceback of `exc` and of its causes, with exception types but no messages."""
    parts: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
        parts.append(f"Traceback (most recent call last):\n{frames}{type(exc).__qualname__} {WITHHELD}")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return "\n\nwhich happened while handling, or was caused by:\n\n".join(reversed(parts))


def _fields(error: ValidationError) -> str:
    locs = {".".join(str(p) for p in e["loc"]) or "body" for e in error.errors(include_input=False)}
    return ", ".join(sorted(locs))


class RedactValues(logging.Filter):
    """Rewrite records of failed requests so that no request value reaches the log (see the module)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc_info = record.exc_info
        if not exc_info or exc_info[1] is None:
            return True
        exc: BaseException = exc_info[1]
        if isinstance(exc, ValidationError):
            record.msg = (
                f"{record.getMessage()}: refused, {exc.error_count()} invalid field(s): {_fields(exc)}"
            )
            record.args = None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
            return True
        tb: TracebackType | None = exc.__traceback__
        record.exc_text = _tb_text(exc) if tb is not None else f"{type(exc).__qualname__} {WITHHELD}"
        return True


def install(loggers: tuple[str, ...] = LOGGERS) -> None:
    """Add one `RedactValues` filter to each logger (again is a no-op); `timpora` loggers log INFO."""
    logging.getLogger(OUR_LOGGERS).setLevel(logging.INFO)
    for name in loggers:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactValues) for f in target.filters):
            target.addFilter(RedactValues())
