"""Structured JSON logs with request ids, and nothing secret in them.

Every line is one JSON object (structlog), including lines from uvicorn,
SQLAlchemy and Alembic, so a log shipper parses one format. The request id
(taken from ``X-Request-ID`` when the caller sends a sane one) is bound for
the whole request and returned in the response, so a CRM admin can quote it.
API keys are never logged: the service logs the key's *name*, never headers,
and a last-line processor blanks anything that looks like a key anyway.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_KEY_LIKE = re.compile(r"dsk_[A-Za-z0-9_\-]{8,}")
_SECRET_FIELDS = {"api_key", "authorization", "x-api-key", "key", "password", "headers"}


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Blank secret-named fields and key-shaped strings in any field."""
    for name in list(event):
        if name.lower() in _SECRET_FIELDS:
            event[name] = "[redacted]"
            continue
        value = event[name]
        if isinstance(value, str) and "dsk_" in value:
            event[name] = _KEY_LIKE.sub("[redacted]", value)
    return event


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route structlog and the standard library's logging through one JSON (or console) renderer."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        # below the level, drop the event first: the access line of every request otherwise ran
        # every processor (time stamp, redaction) only for the handler to discard it
        processors=[structlog.stdlib.filter_by_level, *_SHARED, structlog.processors.format_exc_info, redact_secrets,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = _CurrentStderrHandler()
    handler.set_name("dealscore")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*_SHARED, redact_secrets],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != "dealscore"]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "sqlalchemy.engine", "alembic.runtime.migration", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


def request_id_from(header: str | None) -> str | None:
    """The caller's request id if it is safe to echo and log, else ``None``."""
    if header and _REQUEST_ID.match(header):
        return header
    return None
