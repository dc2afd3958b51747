"""Messages of several leaders (docs/explanation/modes.md, "Several leaders"): the supervisors'
beats to each other, the gateways told where the leading one is, the room hosts' directories
and the rooms a new leader adopts (see :mod:`membrane_rtc.runtime.failover`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...redact import redacting
from . import Address, ClassRef, Request


@dataclass
class ConfigureLeaders(Request):
    """Sent by a leader's server to its own supervisor after :class:`~.admin.ConfigureSupervisor`:
    the convention's leaders (``HOST:PORT``, in the order every process was given them) and
    which of them this one is. One leader alone leads at once; several take turns."""

    leaders: list[str]
    own: str


@dataclass
class SupervisorBeat:
    """Supervisors of several leaders tell each other every heartbeat that they live, whether
    they lead and, from the one that leads, which gateways it knows (a successor tells them
    where it is)."""

    leader: str
    supervisor: Address
    leading: bool
    gateways: list[Address] = field(default_factory=list)
    #: From the one that leads: its room hosts' directories, by host name.
    directories: dict[str, Address] = field(default_factory=dict)
    #: ... the rooms no host's directory keeps: those in its own system (gone with it) and
    #: those waiting for a host; and its own room host name, if it runs rooms.
    rooms: list[RoomNote] = field(default_factory=list)
    host: str | None = None


@dataclass
class SupervisorMoved:
    """From a supervisor that has just taken the lead, to every gateway it knows of: send to
    ``supervisor`` from now on."""

    supervisor: Address


@dataclass
class RoomNote:
    """What a room host's directory keeps of one of its rooms, for a new leader to adopt it:
    its actor, class, options, and restart count and budget (wall-clock times of the recent
    restarts: the hosts' monotonic clocks differ)."""

    name: str
    address: Address
    room_class: ClassRef
    options: Any = None
    restarts: int = 0
    recent_restarts: list[float] = field(default_factory=list)
    pid: int | None = None
    auto: bool = False

    __repr__ = redacting("options")


@dataclass
class NoteRoom:
    """To a room host's directory: this room runs here now (replaces a note of that name)."""

    note: RoomNote


@dataclass
class ForgetRoom:
    """To a room host's directory: the room ``name`` whose process was ``pid`` is gone (a
    note of a later one of that name stays)."""

    name: str
    pid: int | None


@dataclass
class ListHostRooms(Request):
    """Asked of room host ``host``'s directory (and used as its heartbeat): answered with a
    :class:`HostRooms`-valued Reply."""

    host: str


@dataclass
class HostRooms:
    """A room host's directory's answer: the host, its incarnation, and its rooms."""

    host: str
    rooms: list[RoomNote]


@dataclass
class Rejoin:
    """To a room host's directory, from a leader's supervisor whose system does not know the
    host: have the host's system register again with every leader (Thespian registers again
    only now and then; a leader that started or came back late learns of it now)."""


@dataclass
class AdoptRoom:
    """From a supervisor that took the lead, to a room it did not start: report to it from now
    on (its sender), and send events to ``events_to``. The room answers with its occupancy."""

    events_to: Address = None
