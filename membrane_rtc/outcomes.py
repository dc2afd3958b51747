"""What handling a room's members returns: effects for a driver to carry out in order.

:class:`~membrane_rtc.members.Members` returns an :class:`Outcome` for each event; the room
actor turns its effects into Thespian sends and wakeups, :class:`~membrane_rtc.testing.RoomHarness`
into its simulated clients' frames and its fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, Union

from .events import EventKind
from .room import JoinRefused
from .room_state import RoomCallbackError

__all__ = ["Conn", "Effect", "Outcome", "Frame", "Accept", "Refuse", "Close", "Left", "Grace",
           "Notify", "Occupancy"]

#: Whatever a driver names a connection by (the actor: ``(gateway, conn_id)``; the harness:
#: its simulated client). Compared with ``==``.
Conn = TypeVar("Conn")


@dataclass(slots=True)
class Frame(Generic[Conn]):
    """Write an encoded frame to a connection."""

    conn: Conn
    frame: bytes


@dataclass(slots=True)
class Accept(Generic[Conn]):
    """The connection's ``Peer`` accepted it (the gateway upgrades it); frames follow."""

    conn: Conn
    peer_id: str
    idle_timeout: float | None
    resumed: bool = False


@dataclass(slots=True)
class Refuse(Generic[Conn]):
    """Answer the connection's request with an HTTP ``status`` (401, 500); ``error`` is why."""

    conn: Conn
    status: int
    reason: str
    error: BaseException | None = None


@dataclass(slots=True)
class Close(Generic[Conn]):
    """Close a connection (after the frames before it); ``counted_as``: the refusal it is
    counted and logged as (a metrics reason, e.g. ``join_refused``), if it is one."""

    conn: Conn
    code: int
    reason: str
    counted_as: str | None = None


@dataclass(slots=True)
class Left(Generic[Conn]):
    """A member is gone (its ``on_leave`` follows): its connection, if any, is over."""

    conn: Conn
    peer_id: str


@dataclass(slots=True)
class Grace:
    """Call :meth:`~membrane_rtc.members.Members.grace_over` with these after ``delay`` seconds."""

    delay: float
    peer_id: str
    absence: int


@dataclass(slots=True)
class Notify:
    """An event of the room's peers, for the webhooks."""

    kind: EventKind
    fields: dict[str, Any]


@dataclass(slots=True)
class Occupancy:
    """How many members the room has now (a room made for a client ends if it is empty)."""

    count: int


Effect = Union[Frame[Conn], Accept[Conn], Refuse[Conn], Close[Conn], Left[Conn], Grace, Notify,
               Occupancy]


@dataclass(slots=True)
class Outcome(Generic[Conn]):
    """What one event did, for the driver to carry out in order. ``crash``: a ``Room``
    callback raised, the room must go down (after the effects). ``refusal``: the room
    refused a join (the client was told). ``status``: a forward's ``ok``/``no_such_peer``."""

    effects: list[Effect[Conn]] = field(default_factory=list)
    crash: RoomCallbackError | None = None
    refusal: JoinRefused | None = None
    status: str = "ok"
