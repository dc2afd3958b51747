"""The room actor: a thin Thespian adapter around :class:`~membrane_rtc.room_state.RoomState`.

It creates one peer actor (its child) per connection, so Thespian's ``ChildActorExited`` tells
it of every peer's death - a closed socket, a crash, a ``kill -9`` - and treats it as a leave.
An exception in a user ``Room`` callback crashes the room on purpose: it tells the supervisor
why, runs ``on_terminate`` and exits, instead of letting Thespian swallow the error.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from thespian.actors import ActorExitRequest, ChildActorExited, WakeupMessage

from .. import protocol
from ..loading import load_class
from ..room import JoinRefused, Room
from ..room_state import Delivery, RoomCallbackError, RoomState
from .actor import MembraneActor, address_key
from .ordering import Sequenced
from .messages import (
    Address,
    ClosePeer,
    ConnectPeer,
    Deliver,
    EndRoom,
    ForwardMessage,
    GatewayLost,
    JOIN_REFUSED,
    JoinRoom,
    KickPeer,
    ListPeers,
    PeerAccepted,
    PeerInfo,
    PeerRefused,
    RoomCrashed,
    RoomOccupancy,
    RoomPing,
    RoomPong,
    RoomStarted,
    StartPeer,
    StartRoom,
    batch_of,
)
from .peer_actor import PeerActor, peer_channel
from .placement import accepts_room
from .watchdog import watchdog

log = logging.getLogger("membrane_rtc.room")

#: Close code sent when a peer's actor ended without its socket closing first.
PEER_ENDED = 1011
#: Close code for a peer an operator kicked.
KICKED = 1000


@dataclass(frozen=True)
class PeerEndpoint:
    """How the room reaches one member: its actor, and the gateway connection behind it."""

    peer: Address
    gateway: Address
    conn_id: int
    peer_id: str
    remote_address: str | None = None


def _remote_address(metadata: Any) -> str | None:
    """``host:port`` of the client, when the default ``parse_request`` recorded it."""
    remote = metadata.get("remote_address") if isinstance(metadata, dict) else None
    if isinstance(remote, (tuple, list)) and len(remote) >= 2:
        return f"{remote[0]}:{remote[1]}"
    return None


#: Bound on how long a room going down waits for its peers' actors to end.
WIND_DOWN_TIMEOUT = 5.0
#: What a room going down still handles (Sequenced: to unwrap, and drop, what is inside).
_WHILE_DOWN = (ActorExitRequest, ChildActorExited, WakeupMessage, Sequenced)


class RoomActor(MembraneActor):
    """Runs one user ``Room``; started by the supervisor with :class:`StartRoom`."""

    #: Thespian places it on a room host (the one the supervisor chose, in a convention).
    actorSystemCapabilityCheck = staticmethod(accepts_room)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = ""
        self.supervisor: Address = None
        self.state: RoomState[PeerEndpoint] | None = None
        self.down = False  # crashed or stopping: only exit and child notices matter now
        self.terminated = False
        self.exiting = False
        self.children: list[Address] = []  # peer actors alive, joined or not
        # Messages for gateways, per gateway, in order; sent when the current message (or the
        # whole Batch it came in) is handled: many frames per send between processes.
        self._outbox: dict[str, tuple[Address, list[Any], list[tuple[int, bytes]]]] = {}
        self._depth = 0

    def receiveMessage(self, message: Any, sender: Address) -> Any:
        if self.down and not isinstance(message, _WHILE_DOWN):
            if isinstance(message, ConnectPeer):
                self.send(message.gateway, PeerRefused(message.conn_id, 404, "room is closing"))
            return None
        self._depth += 1
        try:
            return super().receiveMessage(message, sender)
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._flush()

    # -- to the gateways ---------------------------------------------------------------------

    def _queue(self, gateway: Address, frames: list[tuple[int, bytes]] | None = None,
               control: Any = None) -> None:
        """Queue frames, or a control message (kept in order after the frames before it)."""
        key = address_key(gateway)
        if key not in self._outbox:
            self._outbox[key] = (gateway, [], [])
        _, messages, pending_frames = self._outbox[key]
        if frames:
            pending_frames.extend(frames)
        if control is not None:
            if pending_frames:
                messages.append(Deliver(list(pending_frames)))
                pending_frames.clear()
            messages.append(control)

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, {}
        for gateway, messages, frames in outbox.values():
            if frames:
                messages.append(Deliver(frames))
            self.send_ordered(gateway, batch_of(messages))

    def _ship(self, deliveries: list[Delivery[PeerEndpoint]]) -> None:
        """Encode each message once and queue its frame for every recipient's gateway."""
        for delivery in deliveries:
            frame = protocol.encode(delivery.message)
            for endpoint in delivery.recipients:
                self._queue(endpoint.gateway, [(endpoint.conn_id, frame)])

    # -- lifecycle ---------------------------------------------------------------------------

    def receiveMsg_StartRoom(self, message: StartRoom, sender: Address) -> None:
        self.supervisor = sender
        self.name = message.name
        try:
            room = load_class(message.room_class, Room)()
        except Exception as exc:
            self._crash(f"cannot start room: {type(exc).__name__}: {exc}")
            return
        state: RoomState[PeerEndpoint] = RoomState(
            room, message.name, message.max_peers, message.callback_timeout, watchdog.limit)
        try:
            deliveries = state.start(message.options)
        except RoomCallbackError as exc:
            self._crash(exc.reason)
            return
        self.state = state
        self._ship(deliveries)
        log.info("room %s started (%s)", self.name, type(room).__name__)
        self.send_ordered(sender, RoomStarted(message.name, os.getpid()))

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender: Address) -> None:
        self.down = True
        self._terminate()

    def _crash(self, reason: str) -> None:
        """A callback raised: tell the supervisor why, then wind down and exit for real."""
        if self.down:
            return
        log.error("room %s crashed: %s", self.name, reason)
        self.send_ordered(self.supervisor, RoomCrashed(self.name, reason))
        self._wind_down()

    def receiveMsg_EndRoom(self, message: EndRoom, sender: Address) -> None:
        self._wind_down()

    def _wind_down(self) -> None:
        """End every peer child and wait (bounded) for them, then run ``on_terminate`` and exit.

        Children that outlive their room are orphans: in the multi-process bases they try to
        report to a dead parent, and the actor system's own shutdown then waits for them.
        So they go first: an ``on_terminate`` that hangs until the watchdog ends this process
        leaves nothing behind.
        """
        if self.down:
            return
        self.down = True
        for child in self.children:
            self.send(child, ActorExitRequest())
        if self.children:
            self.wakeupAfter(timedelta(seconds=WIND_DOWN_TIMEOUT), "wind-down")
        else:
            self._finish()

    def _finish(self) -> None:
        """The peers are gone (or will not go): ``on_terminate``, then exit."""
        self._terminate()
        self._exit()

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: Address) -> None:
        if self.down and message.payload == "wind-down" and not self.exiting:
            log.warning("room %s: %d peers did not end in time", self.name, len(self.children))
            self._finish()

    def _exit(self) -> None:
        if not self.exiting:
            self.exiting = True
            self.send(self.myAddress, ActorExitRequest())

    def _terminate(self) -> None:
        if self.state is None or self.terminated:
            return
        self.terminated = True
        try:
            self.state.terminate()
        except RoomCallbackError as exc:
            log.error("room %s: %s", self.name, exc.reason)

    # -- peers -------------------------------------------------------------------------------

    def receiveMsg_ConnectPeer(self, message: ConnectPeer, sender: Address) -> None:
        peer = self.createActor(PeerActor)
        self.children.append(peer)
        self.send(peer, StartPeer(message.conn_id, message.auth, self.name, message.peer_class,
                                  message.peer_options, message.gateway, self.myAddress,
                                  self.state.callback_timeout if self.state else 0))

    def receiveMsg_JoinRoom(self, message: JoinRoom, sender: Address) -> None:
        """The peer's ``on_init`` accepted the client: run ``on_join``, then let the gateway
        upgrade the connection. The room answers, not the peer, so that once the gateway
        hears ``PeerAccepted`` the peer is a member and may send straight to the room."""
        assert self.state is not None
        peer_id = message.auth.peer_id
        endpoint = PeerEndpoint(sender, message.gateway, message.conn_id, peer_id,
                                _remote_address(message.auth.metadata))
        accepted = PeerAccepted(message.conn_id, peer_id, sender, self.myAddress,
                                message.idle_timeout)
        try:
            deliveries = self.state.join(message.auth, endpoint)
        except JoinRefused as refusal:
            log.info("room %s refused peer %s: %r", self.name, peer_id, refusal.reason)
            notice = protocol.error(protocol.COULD_NOT_JOIN_ROOM, refusal.reason, to=peer_id)
            self._queue(message.gateway, control=accepted)
            self._queue(message.gateway, [(message.conn_id, protocol.encode(notice))])
            self._queue(message.gateway, control=ClosePeer(message.conn_id, 1000, JOIN_REFUSED))
            self.send(sender, ActorExitRequest())
            return
        except RoomCallbackError as exc:
            # Upgrade it anyway: the room's crash then closes it with "Room closed".
            self._queue(message.gateway, control=accepted)
            self._crash(exc.reason)
            return
        self._queue(message.gateway, control=accepted)
        self._ship(deliveries)
        self._report_occupancy()

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Address) -> None:
        # Addresses compare with == only (see the supervisor): scans, once per peer exit.
        self.children = [c for c in self.children if c != message.childAddress]
        if self.down:
            if not self.children:
                self._finish()
            return
        if self.state is None:
            return
        endpoint = next((e for e in self.state.members.values()
                         if e.peer == message.childAddress), None)
        if endpoint is None:  # a peer that never joined (refused, or its client gave up)
            return
        # If the socket is still open (the actor crashed or was killed), close it.
        self._queue(endpoint.gateway, control=ClosePeer(endpoint.conn_id, PEER_ENDED,
                                                        "peer ended"))
        self.ordered_in.forget(peer_channel(endpoint.peer_id))
        try:
            self._ship(self.state.leave(endpoint.peer_id))
        except RoomCallbackError as exc:
            self._crash(exc.reason)
            return
        self._report_occupancy()

    def _report_occupancy(self) -> None:
        assert self.state is not None
        self.send_ordered(self.supervisor, RoomOccupancy(self.name, len(self.state.members)))

    def receiveMsg_GatewayLost(self, message: GatewayLost, sender: Address) -> None:
        """The gateway holding some members' sockets is gone: end their actors (the leave)."""
        if self.state is None:
            return
        for endpoint in list(self.state.members.values()):
            if endpoint.gateway == message.gateway:
                self.send(endpoint.peer, ActorExitRequest())
        self._outbox.pop(address_key(message.gateway), None)

    def receiveMsg_RoomPing(self, message: RoomPing, sender: Address) -> None:
        self.send(sender, RoomPong(self.name))

    def receiveMsg_ListPeers(self, message: ListPeers, sender: Address) -> None:
        assert self.state is not None
        peers = [PeerInfo(e.peer_id, e.remote_address) for e in self.state.members.values()]
        self.answer(message, sender, peers)

    def receiveMsg_KickPeer(self, message: KickPeer, sender: Address) -> None:
        assert self.state is not None
        endpoint = self.state.members.get(message.peer_id)
        if endpoint is None:
            self.answer(message, sender, error=f"no peer {message.peer_id!r} in room {self.name!r}")
            return
        log.info("room %s: kicking peer %s", self.name, message.peer_id)
        self._queue(endpoint.gateway, control=ClosePeer(endpoint.conn_id, KICKED, "kicked"))
        self.send(endpoint.peer, ActorExitRequest())  # its exit is the leave
        self.answer(message, sender)

    # -- messages ----------------------------------------------------------------------------

    def receiveMsg_ForwardMessage(self, message: ForwardMessage, sender: Address) -> None:
        assert self.state is not None
        try:
            result = self.state.forward(message.message)
        except RoomCallbackError as exc:
            if message.request_id is not None:
                self.answer(message, sender, "unknown_error")
            self._crash(exc.reason)
            return
        self._ship(result.deliveries)
        if message.request_id is not None:
            self.answer(message, sender, result.status)
