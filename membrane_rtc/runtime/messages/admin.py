"""Requests to the supervisor from the server, the operators (``membrane-rtc admin``, the
admin actor) and the Python API: create, stop, restart and list rooms, a room's peers, hosts,
drain, shut down, and the server's configuration of the supervisor. Each is answered with a
:class:`~membrane_rtc.runtime.messages.Reply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...protocol import Message
from ...redact import message_summary, redacted, redacted_repr, redacting
from ...sessions import SessionSettings
from . import Address, ClassRef, Request


@dataclass
class CreateRoom(Request):
    """Start a room under ``name`` running ``room_class`` with custom ``options``."""

    name: str
    room_class: ClassRef
    options: Any = None

    __repr__ = redacting("options")


@dataclass
class StopRoom(Request):
    """Stop a room on purpose (it is not restarted); its ``on_terminate`` runs."""

    name: str


@dataclass
class RestartRoom(Request):
    """Stop a room and start it again under the same name (counts as a restart)."""

    name: str


@dataclass
class ReloadRoom(RestartRoom):
    """A restart for a code change (``serve --reload``): its peers are told that instead of
    an operator's restart. Not an operation of its own: handled as a RestartRoom."""


@dataclass
class ListRooms(Request):
    """Ask for the registry: a list of :class:`~membrane_rtc.supervision.RoomInfo`."""


@dataclass
class ListPeers(Request):
    """Ask a room for its peers: a list of :class:`~membrane_rtc.supervision.PeerInfo`."""

    room: str


@dataclass
class KickPeer(Request):
    """Disconnect one peer of a room (it leaves as if its socket had closed)."""

    room: str
    peer_id: str


@dataclass
class ForwardMessage(Request):
    """Forward ``message`` to its addressees, as a room does a peer's (no ``Peer`` callback).

    From outside (the Python / admin ``forward_message``) it goes to the supervisor with
    ``room_name`` and a ``request_id``; the room answers ``reply_to`` with
    ``Reply(value="ok" | "no_such_peer")``, or with an error if the room crashed doing it.
    """

    message: Message
    room_name: str | None = None

    def __repr__(self) -> str:
        return redacted_repr(self, message=message_summary)


@dataclass
class Drain(Request):
    """An operator's drain: every gateway refuses new clients, closes the others with 1012
    after its drain timeout, and its server stops."""


@dataclass
class StopAllRooms(Request):
    """Server shutdown: stop every room and answer once all have terminated."""


@dataclass
class KeptState(Request):
    """How much the supervisor keeps, per table (a dict of sizes): rooms and gateways come
    and go, and nothing it keeps for one may outlive it (tests, debugging)."""


@dataclass
class ListHosts(Request):
    """The room hosts the supervisor knows of; answered with a list of :class:`~membrane_rtc.supervision.HostInfo`."""


@dataclass
class ConfigureSupervisor(Request):
    """Set the restart budget (at most ``max_restarts`` within ``restart_window`` seconds) and
    the limits every room gets (0: no limit)."""

    max_restarts: int
    restart_window: float
    max_rooms: int = 0
    max_peers_per_room: int = 0
    callback_timeout: float = 0
    #: The leader's own room host name, when it runs rooms too (None: rooms only elsewhere).
    local_host: str | None = None
    #: Other actor systems may join (a Thespian convention): watch them come and go.
    convention: bool = False
    #: Tell clients a crashed room's exception text (else only ``room_crashed``).
    expose_errors: bool = False
    #: Resuming and ICE servers, for every room's peers.
    sessions: SessionSettings = field(default_factory=SessionSettings)
    #: Where room and peer events go (the process that sends webhooks); None: nowhere.
    events_to: Address = None
    #: ``(room_class, options)`` of the rooms a client's first connection creates (None: a
    #: connection to an unknown room is refused with 404), and how long such a room may stay
    #: empty before it is stopped.
    auto_create: tuple[ClassRef, Any] | None = None
    empty_timeout: float = 0

    def __repr__(self) -> str:
        return redacted_repr(self, auto_create=lambda value: value if value is None
                             else (value[0], redacted(value[1])))
