"""What happens to rooms and peers, as events for the outside world (webhooks).

The supervisor reports rooms starting, stopping, crashing and failing; each room reports its
peers joining and leaving. Each event is a small JSON object made here, once, where it
happens: a unique ``id`` (receivers de-duplicate on it), the ``event`` kind, the ``time``
(unix seconds), the ``room``, and what the kind adds (``peer_id``, ``identity``,
``metadata``, ``reason``). :mod:`membrane_rtc.ops.webhooks` delivers them.
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Any

__all__ = ["EventKind", "new_event"]


class EventKind(StrEnum):
    """The events a webhook receives."""

    ROOM_STARTED = "room_started"
    #: Stopped on purpose (an operator's stop or restart, or the server's shutdown).
    ROOM_STOPPED = "room_stopped"
    #: A callback raised or hung, or its process died; it starts again unless it failed.
    ROOM_CRASHED = "room_crashed"
    #: Past its restart budget: it stays down until an operator restarts it.
    ROOM_FAILED = "room_failed"
    PEER_JOINED = "peer_joined"
    PEER_LEFT = "peer_left"


def new_event(kind: EventKind, room: str, **fields: Any) -> dict[str, Any]:
    """One event, ready to be sent as JSON (fields that are None are left out)."""
    event = {"id": uuid.uuid4().hex, "event": str(kind), "time": time.time(),
             "room": room}
    event.update({key: value for key, value in fields.items() if value is not None})
    return event
