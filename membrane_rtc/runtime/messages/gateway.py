"""Messages between a gateway and the actors: its registration and heartbeat with the
supervisor, a client's connection, messages and departure to its room, and what rooms and the
supervisor tell a gateway to write, refuse, close or drain.

"Gateway" is the gateway's external address in the actor system: actors send it frames to
write and sockets to close, never touching a socket themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...protocol import Message
from ...redact import frames_summary, message_summary, redacting
from ...room import AuthData
from . import Address, ClassRef, Request


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
class ConnectPeer:
    """A client wants to join room ``room_name``; the supervisor passes it to the room.

    The room runs ``Peer.on_init`` (refused: it answers the gateway :class:`RefuseConnection`),
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
class RefuseConnection:
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

    The room has let the peer go already. ``counted_as``: the refusal it is counted and
    logged as (one of the metrics' reasons, e.g. ``join_refused``), if it is one.
    """

    conn_id: int
    code: int = 1000
    reason: str = ""
    counted_as: str | None = None


# --- supervisor -> gateway -------------------------------------------------------------------

@dataclass
class GatewayPing:
    """The supervisor's heartbeat to the gateways, in a convention (see the supervisor)."""


@dataclass
class GatewayPong:
    """A gateway's answer to :class:`GatewayPing`: ``gateway`` is its registered address."""

    gateway: Address


@dataclass
class DrainGateway:
    """Sent by the supervisor to every gateway when an operator asks for a drain."""


@dataclass
class RoomClosed:
    """Told to every gateway: the room actor at ``room`` is gone (its peers with it); close its
    peers' sockets, telling them ``"Room closed"`` with ``reason``."""

    name: str
    room: Address
    reason: str


# --- bridge -> gateway (never between actors) ------------------------------------------------

@dataclass
class Undelivered:
    """A message the bridge could not get to its actor (it cannot be serialised, or the actor
    is gone), handed back so that whoever waits for its answer hears of it at once."""

    message: Any
    reason: str


@dataclass
class WakeListener:
    """Multi-process: the bridge's stop, sent by its sending thread to its own listening
    handle at ``address`` (unnumbered, never handed on). The listener waits for messages
    without polling, so this is what ends its wait."""

    address: Address
