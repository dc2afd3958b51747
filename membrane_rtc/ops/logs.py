"""Logging set-up: stdlib ``logging``, one line per event, as text or as JSON.

Connection events and refusals are logged with :func:`log_event`, which puts the event's name
and fields on the record (``record.event``, ``record.fields``) so that the JSON format can emit
them as keys while the text format stays readable: ``peer_refused status=404 room='x' ...``.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .state_file import make_state_dir

__all__ = ["configure_logging", "log_event", "announce", "thespian_log_defs",
           "private_thespian_log", "JsonFormatter", "LOG_FORMATS", "Throttled"]

LOG_FORMATS = ("text", "json")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log one structured event: ``event`` names it, ``fields`` are its data."""
    if logger.isEnabledFor(level):
        text = " ".join([event] + [f"{key}={value!r}" for key, value in fields.items()])
        logger.log(level, text, extra={"event": event, "fields": fields})


class Throttled:
    """Logs a kind of failure the first time with its traceback, then at most once per
    ``period`` seconds with how many came meanwhile: a client that repeats a failing message
    fills no disk. Thread-safe."""

    def __init__(self, logger: logging.Logger, period: float = 60.0) -> None:
        self.logger = logger
        self.period = period
        self._lock = threading.Lock()
        self._kinds: dict[str, tuple[float, int]] = {}  # kind -> (when last logged, unlogged)

    def error(self, kind: str, message: str, *args: Any, exc_info: Any = None) -> None:
        """Log ``message % args`` at ERROR unless ``kind`` was logged within the period."""
        now = time.monotonic()
        with self._lock:
            last, unlogged = self._kinds.get(kind, (None, 0))
            if last is not None and now - last < self.period:
                self._kinds[kind] = (last, unlogged + 1)
                return
            if len(self._kinds) > 1000:  # kinds are few; bound them anyway
                self._kinds.clear()
            self._kinds[kind] = (now, 0)
        if unlogged:
            message += f" ({unlogged} more like it in the last {self.period:g} s, not logged)"
        self.logger.error(message, *args, exc_info=exc_info if last is None else None)


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


#: The chosen format and level, for :func:`announce` and the actor processes' logging (set by
#: :func:`configure_logging`).
_format = "text"
_level = "INFO"


class ShutdownNoise(logging.Filter):
    """Drops the one Thespian line that is noise: at a clean shutdown of a convention leader,
    each actor creation Thespian still had pending is reported as an ERROR "Pending Actor
    create ... failed (3585)" (3585: the actor system is shutting down). Nothing failed and
    no room is started then; the line only alarms whoever reads the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Pending Actor create") and "(3585)" in message)


def thespian_log_defs() -> dict[str, Any]:
    """The logging set-up of Thespian's logger process (multi-process mode), through which
    the actor processes' warnings and errors go: the same format, level and filter as this
    process's (without it, Thespian's default prints them in another format)."""
    formatter: dict[str, Any] = {"()": JsonFormatter} if _format == "json" \
        else {"format": _TEXT_FORMAT}
    return {
        "version": 1,
        "formatters": {"membrane": formatter},
        "filters": {"shutdown_noise": {"()": ShutdownNoise}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "membrane", "filters": ["shutdown_noise"]}},
        "root": {"handlers": ["stderr"], "level": _level},
    }


#: Thespian's variables for its own log file: where, and its size (0 or under 10 KB: none).
THESPLOG_FILE_VARIABLE = "THESPLOG_FILE"
THESPLOG_MAXSIZE_VARIABLE = "THESPLOG_FILE_MAXSIZE"


def private_thespian_log() -> Path | None:
    """Send Thespian's own log file to a directory only this user can enter, before any actor
    system starts (its processes inherit the setting); return the file, or None when off.

    Thespian's internal log (``thesplog``, apart from the logging this module sets up) writes
    a message's repr when an actor fails on it, and by default to ``$TMPDIR/thespian.log``,
    which other users can read (or create first). Here it is
    ``<state directory>/thespian/thespian.log``, the directory 0700. An operator's own
    ``$THESPLOG_FILE`` is left as it is, and ``THESPLOG_FILE_MAXSIZE=0`` turns the file off.
    """
    from thespian.system import utilis

    if os.environ.get(THESPLOG_MAXSIZE_VARIABLE, "").strip() == "0":
        return None
    if THESPLOG_FILE_VARIABLE in os.environ:
        return Path(os.environ[THESPLOG_FILE_VARIABLE])
    try:
        directory = make_state_dir() / "thespian"
        directory.mkdir(mode=0o700, exist_ok=True)
        status = os.lstat(directory)
    except OSError:
        status = None
    if status is None or not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid():
        # Not ours, a link to elsewhere, or not possible: no file at all rather than elsewhere.
        level, forward, _ = utilis._thesplog_control_settings
        utilis.thesplog_control(level, forward, 0)
        return None
    if stat.S_IMODE(status.st_mode) != 0o700:
        os.chmod(directory, 0o700)
    path = directory / "thespian.log"
    # Thespian's own state, which forked actor processes inherit (the environment is left
    # alone: a THESPLOG_FILE there is always the operator's, also in child servers).
    utilis._thesplog_file, utilis._thesplog_old_file = str(path), f"{path}.old"
    return path


def announce(event: str, text: str, **fields: Any) -> None:
    """A line for the operator on stdout (the server's banner, its stop): the text as is,
    or with ``--log-format json`` a JSON object like the log lines', so that every line the
    process writes parses."""
    if _format == "json":
        record = logging.LogRecord("membrane_rtc.ops.cli", logging.INFO, __file__, 0, text, None,
                                   None)
        record.event, record.fields = event, {"message": text, **fields}
        text = JsonFormatter().format(record)
    print(text, flush=True)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send every log line to stderr in ``log_format`` (``text`` or ``json``) at ``level``."""
    global _format, _level
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}")
    _format, _level = log_format, level.upper()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter(_TEXT_FORMAT))
    handler.addFilter(ShutdownNoise())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
