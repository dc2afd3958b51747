"""Reprs that keep secrets out of logs.

A message's repr ends up in log lines that nobody meant to hold secrets: Thespian logs the whole
message when an actor fails on it (and when a send fails), in the operator's log and in its own
log file. The messages that connect a peer carry its credentials, its HTTP headers (Cookie,
Authorization) and the peer options; the supervisor's settings carry the TURN secret; the frames
a room sends carry resume tokens and TURN credentials. Their reprs show the shape (field names,
credential names, sizes) and never the values.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

__all__ = ["REDACTED", "redacted", "redacted_repr", "redacting"]

#: What stands for a value that is there but not shown.
REDACTED = "<redacted>"


class _Shown(str):
    """Text that a repr shows as is (no quotes)."""

    def __repr__(self) -> str:
        return str(self)


def redacted(value: Any) -> Any:
    """What a repr shows for a secret value: nothing hidden when there is nothing (None or
    empty), a dict's keys with their values hidden, else :data:`REDACTED`."""
    if value is None or (isinstance(value, (dict, list, tuple, str, bytes)) and not value):
        return value
    if isinstance(value, dict):
        return {key: _Shown(REDACTED) for key in value}
    return _Shown(REDACTED)


def redacted_repr(instance: Any, **shown: Callable[[Any], Any]) -> str:
    """The dataclass ``instance``'s usual repr, except that each field named in ``shown`` is
    shown as ``shown[name](value)`` (e.g. :func:`redacted`)."""
    parts = []
    for field in dataclasses.fields(instance):
        if not field.repr:
            continue
        value = getattr(instance, field.name)
        if field.name in shown:
            value = shown[field.name](value)
        parts.append(f"{field.name}={value!r}")
    return f"{type(instance).__qualname__}({', '.join(parts)})"


def redacting(*names: str) -> Callable[[Any], str]:
    """A ``__repr__`` that hides the values of the fields ``names`` (see :func:`redacted`)."""
    def __repr__(self: Any) -> str:
        return redacted_repr(self, **{name: redacted for name in names})
    return __repr__


def path_summary(path: str) -> Any:
    """How a repr shows a request path: without its query (``?token=...``)."""
    before, mark, query = path.partition("?")
    return before + (mark + REDACTED if query else "")


def frames_summary(frames: list[tuple[int, bytes]]) -> Any:
    """How a repr shows frames for clients: how many and their size, not what they say."""
    return _Shown(f"<{len(frames)} frame(s), {sum(len(f) for _, f in frames)} bytes>")


def message_summary(message: Any) -> Any:
    """How a repr shows a signaling message: its event, sender and addressees, not its data."""
    if not hasattr(message, "event"):
        return redacted(message)
    data = REDACTED if getattr(message, "data", None) is not None else None
    return _Shown(f"Message(event={message.event!r}, data={data}, "
                  f"from_={getattr(message, 'from_', None)!r}, "
                  f"to={getattr(message, 'to', None)!r})")


def kinds_summary(messages: list[Any]) -> str:
    """How a repr shows a list of messages: how many of each kind, in order of first
    appearance (``"20: ClientMessage x19, PeerDisconnected x1"``), not each one's own repr."""
    counts: dict[str, int] = {}
    for message in messages:
        kind = type(message).__name__
        counts[kind] = counts.get(kind, 0) + 1
    return f"{len(messages)}: " + ", ".join(f"{kind} x{count}" for kind, count in counts.items())


__all__ += ["path_summary", "frames_summary", "message_summary", "kinds_summary"]
