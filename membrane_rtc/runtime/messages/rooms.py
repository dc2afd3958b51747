"""Messages between the supervisor and its room actors: start, end, heartbeat, occupancy and
crash (the supervisor applies the restart rules to what they say), and the room events both
report to the webhooks' process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...redact import redacting
from ...sessions import SessionSettings
from . import Address, ClassRef


@dataclass
class StartRoom:
    """Sent by the supervisor to a new room actor: run ``on_init``."""

    name: str
    room_class: ClassRef
    options: Any = None
    max_peers: int = 0
    callback_timeout: float = 0
    sessions: SessionSettings = field(default_factory=SessionSettings)
    #: Where the room reports its peers joining and leaving (None: it does not).
    events_to: Address = None

    __repr__ = redacting("options")


@dataclass
class EndRoom:
    """Sent by the supervisor to stop a room on purpose: ``on_terminate``, end the peers, exit."""


@dataclass
class RoomStarted:
    """The room's ``on_init`` returned; it is serving from process ``pid``."""

    name: str
    pid: int


@dataclass
class RoomOccupancy:
    """A room tells the supervisor how many peers it holds, after each join and leave."""

    name: str
    peers: int


@dataclass
class RoomPing:
    """The supervisor's heartbeat to a room on another host (see the supervisor)."""

    name: str


@dataclass
class RoomPong:
    """A room's answer to :class:`RoomPing`."""

    name: str


@dataclass
class RoomCrashed:
    """A room callback raised: the room is going down with this reason."""

    name: str
    reason: str


@dataclass
class GatewayLost:
    """Sent by the supervisor to every room: ``gateway`` is gone; end the peers behind it."""

    gateway: Address


# --- room or supervisor -> the webhooks' process ---------------------------------------------

@dataclass
class Event:
    """A room or peer event (:func:`membrane_rtc.events.new_event`) for the webhooks."""

    payload: dict[str, Any]
