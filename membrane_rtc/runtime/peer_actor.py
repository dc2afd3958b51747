"""The peer actor: runs one user ``Peer`` for one websocket connection.

Child of its room, so its end is the room's leave. It never sees the socket: the gateway sends
it decoded client messages and it sends the room what ``on_receive`` lets through.
"""

from __future__ import annotations

import logging
from typing import Any

from thespian.actors import ActorExitRequest

from ..loading import load_class
from ..peer import Peer, PeerContext
from ..protocol import Message
from .actor import MembraneActor
from .ordering import OrderedSender
from .watchdog import CallbackTimeout, watchdog
from .messages import (
    Address,
    ClientMessage,
    ClosePeer,
    ForwardMessage,
    JoinRoom,
    PeerRefused,
    StartPeer,
)

log = logging.getLogger("membrane_rtc.peer")

#: Close code when a ``Peer`` callback raised: the server had an internal error.
INTERNAL_ERROR = 1011


def peer_channel(peer_id: str) -> str:
    """The ordered channel a peer actor sends its room on (the room forgets it on leave)."""
    return f"peer:{peer_id}"


class PeerActor(MembraneActor):
    """Runs one user ``Peer``; started by its room with :class:`StartPeer`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.peer: Peer | None = None
        self.context: PeerContext | None = None
        self.gateway: Address = None
        self.room: Address = None
        self.conn_id = 0
        self.callback_timeout = 0.0

    def _call(self, callback: str, *args: Any) -> Any:
        """Run a ``Peer`` callback under the time limit; a timeout raises TimeoutError."""
        assert self.context is not None
        function = getattr(self.peer, callback)
        try:
            with watchdog.limit(f"peer {self.context.peer_id} {callback}", self.callback_timeout):
                return function(*args)
        except CallbackTimeout:
            raise TimeoutError(f"no answer within {self.callback_timeout:g} s") from None

    def receiveMsg_StartPeer(self, message: StartPeer, sender: Address) -> None:
        self.gateway, self.room, self.conn_id = message.gateway, message.room, message.conn_id
        self.callback_timeout = message.callback_timeout
        self.context = PeerContext(message.auth.peer_id, message.room_name)
        self.ordered_out = OrderedSender(peer_channel(message.auth.peer_id))
        try:
            peer = load_class(message.peer_class, Peer)()
        except Exception as exc:
            log.error("cannot create peer: %s: %s", type(exc).__name__, exc)
            self._refuse(500, "cannot create peer")
            return
        self.peer = peer  # _call needs it; reset if on_init refuses
        try:
            self._call("on_init", self.context, message.auth, message.peer_options)
        except Exception as exc:
            self.peer = None
            log.info("peer %s refused by on_init: %s: %s",
                     self.context.peer_id, type(exc).__name__, exc)
            self._refuse(401, f"{type(exc).__name__}: {exc}")
            return
        self.send_ordered(self.room, JoinRoom(message.auth, self.conn_id, self.gateway,
                                      peer.idle_timeout))

    def _refuse(self, status: int, reason: str) -> None:
        self.send(self.gateway, PeerRefused(self.conn_id, status, reason))
        self.send(self.myAddress, ActorExitRequest())

    def receiveMsg_ClientMessage(self, message: ClientMessage, sender: Address) -> None:
        if self.peer is None or self.context is None:
            return
        try:
            outgoing = self._call("on_receive", message.message, self.context)
            if outgoing is not None and not isinstance(outgoing, Message):
                raise TypeError(f"on_receive returned {type(outgoing).__name__}")
        except Exception as exc:
            log.error("peer %s: on_receive raised %s: %s; closing it",
                      self.context.peer_id, type(exc).__name__, exc)
            self.send(self.gateway, ClosePeer(self.conn_id, INTERNAL_ERROR, "internal error"))
            self.send(self.myAddress, ActorExitRequest())
            return
        if outgoing is not None:
            self.send_ordered(self.room, ForwardMessage(outgoing))

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender: Address) -> None:
        if self.peer is None or self.context is None:
            return
        try:
            self._call("on_terminate", self.context)
        except Exception as exc:
            log.error("peer %s: on_terminate raised %s: %s",
                      self.context.peer_id, type(exc).__name__, exc)
        finally:
            self.peer = None  # on_terminate runs once
