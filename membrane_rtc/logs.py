"""Logging set-up: stdlib ``logging``, one line per event, as text or as JSON.

Connection events and refusals are logged with :func:`log_event`, which puts the event's name
and fields on the record (``record.event``, ``record.fields``) so that the JSON format can emit
them as keys while the text format stays readable: ``peer_refused status=404 room='x' ...``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

__all__ = ["configure_logging", "log_event", "JsonFormatter", "LOG_FORMATS"]

LOG_FORMATS = ("text", "json")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log one structured event: ``event`` names it, ``fields`` are its data."""
    if logger.isEnabledFor(level):
        text = " ".join([event] + [f"{key}={value!r}" for key, value in fields.items()])
        logger.log(level, text, extra={"event": event, "fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        event = getattr(record, "event", None)
        if event is not None:
            entry["event"] = event
            entry.update(getattr(record, "fields", {}))
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send every log line to stderr in ``log_format`` (``text`` or ``json``) at ``level``."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
