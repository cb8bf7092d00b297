"""Structured logs of ``serve``: one JSON object per line (or plain text), with request ids.

A line of the JSON format holds ``ts`` (UTC, ISO 8601), ``level``, ``logger`` and
``msg``, then ``request_id`` when the line was logged during a call, then the fields a
record carries in its ``call`` attribute (the call log of ``service.observe``: method,
code, ms, collection, hits...), then ``exc`` for a traceback.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latent.settings import Settings

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "assetsearch_request_id", default=None
)
"""The id of the call the current thread works on (set by ``service.observe``)."""


class RequestIdFilter(logging.Filter):
    """Gives each record the ``request_id`` of the call it was logged in (or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``record.request_id``; never drops a record."""
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The extra fields of a record: its request id and its ``call`` fields."""
    fields: dict[str, Any] = {}
    request_id = getattr(record, "request_id", None)
    if request_id is not None:
        fields["request_id"] = request_id
    fields.update(getattr(record, "call", None) or {})
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (see the module docstring for its keys)."""
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC)
        out: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """Plain text: time, level, logger and message, then the extra fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as one text line (a traceback follows on its own lines)."""
        text = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in record_fields(record).items() if v is not None)
        if not fields:
            return text
        head, sep, rest = text.partition("\n")
        return f"{head} {fields}{sep}{rest}"


def log_level(name: str) -> int:
    """The logging level named ``name`` (DEBUG, INFO, WARNING, ERROR, CRITICAL or a number).

    Raises:
        ValueError: no such level.
    """
    text = name.strip().upper()
    if text.isdigit():
        return int(text)
    level = logging.getLevelNamesMapping().get(text)
    if level is None:
        raise ValueError(
            f"log_level: unknown level {name!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    return level


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in ``settings.log_format`` at its level.

    Replaces the root logger's handlers, so each record is written once.

    Returns:
        The handler installed.

    Raises:
        ValueError: ``settings.log_level`` names no level.
    """
    level = log_level(settings.log_level)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
