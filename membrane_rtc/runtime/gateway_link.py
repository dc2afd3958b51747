"""The runtime side of the gateway seam (:mod:`membrane_rtc.seam`), over the actors.

:class:`ActorRuntime` turns the gateway's calls into actor messages sent through the
:class:`~.bridge.ActorBridge`, and the actors' messages to the gateway back into
:class:`~membrane_rtc.seam.ConnectionEvents` calls. It keeps what that takes and the
gateway need not know: which room actor holds each connection, which rooms have closed, and the
supervisor's heartbeat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .. import protocol
from ..seam import READY_TIMEOUT, ConnectionEvents
from ..protocol import CloseCode
from ..room import AuthData
from .actor import address_key
from .bridge import ActorBridge, ActorSystemError
from .messages import Address, Batch, ClassRef
from .messages.admin import ListHosts
from .messages.gateway import (ClientMessage, ClosePeer, ConnectPeer, Deliver, DrainGateway,
                               GatewayPing, GatewayPong, PeerAccepted, PeerDisconnected,
                               RefuseConnection, RoomClosed, Undelivered, UnregisterGateway)

__all__ = ["ActorRuntime"]


log = logging.getLogger(__name__)

#: How many closed rooms are remembered (a PeerAccepted from one may still be on its way).
CLOSED_ROOMS_REMEMBERED = 256


@dataclass
class _Route:
    """A connection whose peer joined: where its messages go."""

    peer_id: str
    room: Address
    room_key: str  # address_key(room), computed once: the bridge counts by it per message


class ActorRuntime:
    """Implements :class:`~membrane_rtc.seam.Runtime` for one gateway."""

    def __init__(self, bridge: ActorBridge, peer_class: ClassRef, peer_options: Any) -> None:
        self.bridge = bridge
        self.peer_class = peer_class
        self.peer_options = peer_options
        self.events: ConnectionEvents | None = None
        self._connecting: set[int] = set()  # conn_ids until accepted or refused
        self._members: dict[int, _Route] = {}
        # Rooms closed while a client was connecting: its PeerAccepted may still come.
        self._closed_rooms: dict[str, RoomClosed] = {}

    def kept(self) -> dict[str, int]:
        """Sizes of what the runtime keeps per connection or room (tests: nothing may grow
        with every room that comes and goes)."""
        return {"runtime.connecting": len(self._connecting),
                "runtime.members": len(self._members),
                "runtime.closed_rooms": len(self._closed_rooms)}

    def _settled(self, conn_id: int) -> None:
        """A connection is no longer waiting to join. With none waiting, no PeerAccepted
        that a closed room sent can matter any more (one for a connection that is not
        waiting is answered with a disconnect), so the closed rooms are forgotten."""
        self._connecting.discard(conn_id)
        if not self._connecting:
            self._closed_rooms.clear()

    def attach(self, events: ConnectionEvents) -> None:
        """The gateway the actors' answers go to."""
        self.events = events

    # -- the gateway's calls -----------------------------------------------------------------

    def connect(self, conn_id: int, room_name: str, auth: AuthData,
                resume_token: str | None = None, received: int | None = None) -> None:
        self._connecting.add(conn_id)
        self.bridge.tell(self.bridge.supervisor, ConnectPeer(
            conn_id, room_name, auth, self.peer_class, self.peer_options, self.bridge.address,
            resume_token, received))

    def receive(self, conn_id: int, message: protocol.Message) -> None:
        member = self._members.get(conn_id)
        if member is not None:
            self.bridge.tell(member.room, ClientMessage(message), member.room_key)

    def disconnected(self, conn_id: int, resumable: bool = False) -> None:
        self._settled(conn_id)  # an accept still on its way is answered below
        member = self._members.pop(conn_id, None)
        if member is not None:
            self.bridge.tell(member.room, PeerDisconnected(
                member.peer_id, conn_id, self.bridge.address, resumable))

    def backlog(self, conn_id: int | None = None) -> int:
        if conn_id is None:
            return self.bridge.backlog()
        member = self._members.get(conn_id)
        return 0 if member is None else self.bridge.backlog(key=member.room_key)

    def alive(self) -> bool:
        return self.bridge.alive

    async def ready(self) -> bool:
        """The supervisor answers, and knows at least one room host (itself, when the rooms
        run in its own actor system)."""
        try:
            reply = await self.bridge.ask(self.bridge.supervisor, ListHosts(), READY_TIMEOUT)
        except ActorSystemError:
            return False
        return reply.error is None and bool(reply.value)

    async def detach(self) -> None:
        try:
            await self.bridge.ask(self.bridge.supervisor, UnregisterGateway(), timeout=5)
        except Exception:
            log.warning("supervisor did not answer the gateway's goodbye")

    # -- the actors' messages ----------------------------------------------------------------

    def on_actor_message(self, message: Any) -> None:
        """Called on the event loop for every message the actors send this gateway."""
        assert self.events is not None, "no gateway attached"
        if isinstance(message, Batch):
            for each in message.messages:
                self.on_actor_message(each)
        elif isinstance(message, Deliver):
            self.events.deliver(message.frames)
        elif isinstance(message, ClosePeer):
            self._members.pop(message.conn_id, None)  # the room has let it go already
            self.events.close(message.conn_id, message.code, message.reason, message.counted_as)
        elif isinstance(message, PeerAccepted):
            self._accepted(message)
        elif isinstance(message, RefuseConnection):
            if message.conn_id in self._connecting:
                self._settled(message.conn_id)
                self.events.refuse(message.conn_id, message.status, message.reason)
        elif isinstance(message, RoomClosed):
            self._room_closed(message)
        elif isinstance(message, DrainGateway):
            self.events.drain()
        elif isinstance(message, GatewayPing):
            self.bridge.tell(self.bridge.supervisor, GatewayPong(self.bridge.address))
        elif isinstance(message, Undelivered):
            self._undelivered(message)
        else:
            log.warning("unexpected message from the actors: %r", message)

    def _accepted(self, message: PeerAccepted) -> None:
        assert self.events is not None
        if message.conn_id not in self._connecting:  # the client gave up meanwhile
            self.bridge.tell(message.room, PeerDisconnected(
                message.peer_id, message.conn_id, self.bridge.address, message.resumed))
            return
        room_key = address_key(message.room)
        closed = self._closed_rooms.get(room_key)
        self._settled(message.conn_id)
        self._members[message.conn_id] = _Route(message.peer_id, message.room, room_key)
        self.events.accept(message.conn_id, message.peer_id, message.idle_timeout,
                           message.resumed)
        if closed is not None:  # the room went down meanwhile
            self._close_room_member(message.conn_id, closed)

    def _undelivered(self, failed: Undelivered) -> None:
        """A message of ours never reached its actor (the bridge counted and logged it): a
        client waiting to join hears now, not at its answer timer."""
        assert self.events is not None
        message = failed.message
        if isinstance(message, ConnectPeer) and message.conn_id in self._connecting:
            self._settled(message.conn_id)
            self.events.refuse(message.conn_id, 503, "the actor system could not take it")

    def _room_closed(self, closed: RoomClosed) -> None:
        self.bridge.actor_gone(closed.room)
        if self._connecting:  # one of them may yet be accepted by this room
            self._closed_rooms[address_key(closed.room)] = closed
            while len(self._closed_rooms) > CLOSED_ROOMS_REMEMBERED:
                del self._closed_rooms[next(iter(self._closed_rooms))]
        for conn_id, member in list(self._members.items()):
            if member.room == closed.room:
                self._close_room_member(conn_id, closed)

    def _close_room_member(self, conn_id: int, closed: RoomClosed) -> None:
        """Its room is gone, its peer with it: "Room closed", then the socket closes."""
        assert self.events is not None
        member = self._members.pop(conn_id)
        notice = protocol.error(protocol.ROOM_CLOSED, closed.reason, to=member.peer_id)
        self.events.deliver([(conn_id, protocol.encode(notice))])
        self.events.close(conn_id, CloseCode.NORMAL, "room closed")
