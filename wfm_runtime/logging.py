"""structlog JSON logs; per-request fields are bound in one context variable."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

# One dict per request (replaced, never mutated, so concurrent requests never share fields).
# Cheaper than structlog.contextvars, which keeps a variable per field and copies the whole
# context to merge them into every line.
_REQUEST_FIELDS: ContextVar[dict[str, Any] | None] = ContextVar("wfm_log_fields", default=None)
_PROCESS_FIELDS: dict[str, Any] = {}


def start_request(**fields: Any) -> None:
    """The fields of every log line of the request this task now serves (replaces any)."""
    _REQUEST_FIELDS.set({**_PROCESS_FIELDS, **fields})


def bind(**fields: Any) -> None:
    """Adds fields to every later log line of the current request."""
    _REQUEST_FIELDS.set({**(_REQUEST_FIELDS.get() or _PROCESS_FIELDS), **fields})


def _merge_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in (_REQUEST_FIELDS.get() or _PROCESS_FIELDS).items():
        event_dict.setdefault(key, value)
    return event_dict


def configure(level: str = "info", service: str = "") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            _merge_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    if service:
        _PROCESS_FIELDS["service"] = service


def get(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
