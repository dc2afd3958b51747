"""The actor messages: one class per intent, as in Thespian's own examples.

All are plain picklable dataclasses, so the same messages cross process (and host) boundaries in
the multi-process bases. Those that carry secrets (credentials, headers, options, the TURN
secret, frames with tokens) have a repr without them (:mod:`membrane_rtc.redact`): Thespian
logs a message's repr when an actor fails on it. "Gateway" below is the gateway's external address in the actor system:
actors send it frames to write and sockets to close, never touching a socket themselves.

A request that carries a ``request_id`` is answered with a :class:`Reply` carrying the same id,
which is how the asyncio side matches answers to the questions it asked. Answers go to
``reply_to`` when it is set, else to the sender: in the multi-process mode the gateway sends from
one actor-system handle and listens on another, so it always names where answers go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..protocol import Message
from ..redact import (frames_summary, kinds_summary, message_summary, redacted, redacted_repr,
                      redacting)
from ..room import AuthData
from ..sessions import SessionSettings

#: Thespian global names: any process of the actor system finds these actors by name.
SUPERVISOR_NAME = "membrane_rtc.RoomSupervisor"
ADMIN_NAME = "membrane_rtc.Admin"

# An actor address (thespian.actors.ActorAddress); typed Any as Thespian ships no type hints.
Address = Any
#: A class, or a SPEC string naming one (see membrane_rtc.loading).
ClassRef = Any


@dataclass
class Request:
    """Base of the messages that expect a :class:`Reply`."""

    request_id: int | None = field(default=None, kw_only=True)
    reply_to: Address = field(default=None, kw_only=True)


@dataclass
class Reply:
    """Answer to a :class:`Request`; ``error`` is ``None`` on success."""

    request_id: int | None
    error: str | None = None
    value: Any = None


@dataclass
class Batch:
    """Several messages for one actor in one send (each hop costs ~1 ms between processes)."""

    messages: list[Any]

    def __repr__(self) -> str:
        # Thespian formats every message it sends or receives for a debug line, logged or not
        # (``identify()``): the kinds of messages, not each one's repr (87 µs for a batch of 20
        # client messages, several times per hop; this: about 3 µs).
        return f"Batch({kinds_summary(self.messages)})"


def batch_of(messages: list[Any]) -> Any:
    """One message as itself, several as a :class:`Batch`."""
    return messages[0] if len(messages) == 1 else Batch(messages)


# --- gateway -> supervisor -------------------------------------------------------------------

@dataclass
class RegisterGateway(Request):
    """A gateway announces itself (it is told when a room closes); the reply's ``value`` is the
    gateway's address as actors see it. A process without sockets (a leader alone) registers
    only to learn that address: ``holds_sockets`` False."""

    holds_sockets: bool = True


@dataclass
class UnregisterGateway(Request):
    """A gateway is going away."""


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
class ConnectPeer:
    """A client wants to join room ``room_name``; the supervisor passes it to the room.

    The room runs ``Peer.on_init`` (refused: it answers the gateway :class:`PeerRefused`),
    then ``Room.on_join``, and answers the gateway :class:`PeerAccepted` followed by the frames
    that say whether the peer joined.
    """

    conn_id: int
    room_name: str
    auth: AuthData
    peer_class: ClassRef
    peer_options: Any = None
    gateway: Address = None
    #: ``?resume=``: the client asks to be the peer this token was given to.
    resume_token: str | None = None
    #: ``?received=``: how many frames of its session the resuming client got.
    received: int | None = None

    __repr__ = redacting("peer_options", "resume_token")


# --- supervisor <-> room ---------------------------------------------------------------------

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
class GatewayPing:
    """The supervisor's heartbeat to the gateways, in a convention (see the supervisor)."""


@dataclass
class GatewayPong:
    """A gateway's answer to :class:`GatewayPing`: ``gateway`` is its registered address."""

    gateway: Address


@dataclass
class Event:
    """A room or peer event (:func:`membrane_rtc.events.new_event`) for the webhooks."""

    payload: dict[str, Any]


@dataclass
class DrainGateway:
    """Sent by the supervisor to every gateway when an operator asks for a drain."""


@dataclass
class GatewayLost:
    """Sent by the supervisor to every room: ``gateway`` is gone; end the peers behind it."""

    gateway: Address


@dataclass
class RoomCrashed:
    """A room callback raised: the room is going down with this reason."""

    name: str
    reason: str


@dataclass
class RoomClosed:
    """Told to every gateway: the room actor at ``room`` is gone (its peers with it); close its
    peers' sockets, telling them ``"Room closed"`` with ``reason``."""

    name: str
    room: Address
    reason: str


@dataclass
class ForwardMessage(Request):
    """Forward ``message`` to its addressees, as a room does a peer's (no ``Peer`` callback).

    From outside (the Python / admin ``forward_message``) it goes to the supervisor with
    ``room_name`` and a ``request_id``; the room answers ``reply_to`` with
    ``Reply(value="ok" | "no_such_peer" | "unknown_error")``.
    """

    message: Message
    room_name: str | None = None

    def __repr__(self) -> str:
        return redacted_repr(self, message=message_summary)


# --- gateway -> room -------------------------------------------------------------------------

@dataclass
class ClientMessage:
    """A decoded message from a client (``from`` set by the gateway to its peer id): through
    ``Peer.on_receive``, then the room's forwarding."""

    message: Message

    def __repr__(self) -> str:  # one per client message: no walk over the fields
        return f"ClientMessage(message={message_summary(self.message)})"


@dataclass
class PeerDisconnected:
    """Connection ``conn_id`` of ``gateway``, peer ``peer_id``'s, is gone: the peer leaves
    (``Peer.on_terminate``, then the room's leave) or, ``resumable`` (it dropped rather than
    closed) and with resuming on, is away until it resumes or its grace ends."""

    peer_id: str
    conn_id: int
    gateway: Address
    resumable: bool = False


# --- room -> gateway -------------------------------------------------------------------------

@dataclass
class PeerAccepted:
    """The peer's ``on_init`` accepted the client and the room has run ``on_join`` (the
    frames that follow say whether it joined): the gateway may upgrade the connection."""

    conn_id: int
    peer_id: str
    room: Address
    idle_timeout: float | None = None
    #: The client resumed peer ``peer_id`` (a new connection for a member).
    resumed: bool = False


@dataclass
class PeerRefused:
    """Refuse the connection before the upgrade with an HTTP ``status`` (404, 401, ...)."""

    conn_id: int
    status: int
    reason: str


@dataclass
class Deliver:
    """Write each encoded frame to its connection: ``[(conn_id, frame), ...]``, in order."""

    frames: list[tuple[int, bytes]]

    def __repr__(self) -> str:  # one per batch of frames: no walk over the fields
        return f"Deliver(frames={frames_summary(self.frames)})"


@dataclass
class ClosePeer:
    """Close a connection with a websocket close code (after the frames sent before it).

    The room has let the peer go already. ``refusal`` names a refusal to count and log (one
    of the metrics' reasons, e.g. ``join_refused``).
    """

    conn_id: int
    code: int = 1000
    reason: str = ""
    refusal: str | None = None


# --- bridge -> gateway (never between actors) -------------------------------------------------

@dataclass
class Undelivered:
    """A message the bridge could not get to its actor (it cannot be serialised, or the actor
    is gone), handed back so that whoever waits for its answer hears of it at once."""

    message: Any
    reason: str


# --- several leaders (docs/explanation/modes.md, "Several leaders") --------------------------

@dataclass
class ConfigureLeaders(Request):
    """Sent by a leader's server to its own supervisor after :class:`ConfigureSupervisor`:
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
