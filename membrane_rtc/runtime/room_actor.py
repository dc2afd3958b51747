"""The room actor: a thin Thespian adapter around :class:`~membrane_rtc.room_state.RoomState`.

It also hosts its peers: each connection's ``Peer`` runs here as a
:class:`~membrane_rtc.peer_state.PeerState`, a Python object, not an actor or a process. A
``Peer`` callback that raises ends that peer only. An exception in a user ``Room`` callback
crashes the room on purpose: it tells the supervisor why, ends its peers, runs ``on_terminate``
and exits, instead of letting Thespian swallow the error.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from thespian.actors import ActorExitRequest, WakeupMessage

from .. import protocol
from ..events import EventKind, new_event
from ..loading import load_class
from ..peer import Peer, PeerContext, Unauthorized
from ..peer_state import PeerCallbackError, PeerState
from ..protocol import CloseCode
from ..room import AuthData, JoinRefused, Room
from ..room_state import Delivery, RoomCallbackError, RoomState
from ..sessions import Away, ResumeTokens, SessionSettings
from ..supervision import PeerInfo
from .actor import MembraneActor, address_key
from .ordering import Sequenced
from .messages import (
    Address,
    Batch,
    ClientMessage,
    ClosePeer,
    ConnectPeer,
    Deliver,
    EndRoom,
    Event,
    ForwardMessage,
    GatewayLost,
    KickPeer,
    ListPeers,
    PeerAccepted,
    PeerDisconnected,
    PeerRefused,
    Request,
    RoomCrashed,
    RoomOccupancy,
    RoomPing,
    RoomPong,
    RoomStarted,
    StartRoom,
    batch_of,
)
from .placement import accepts_room
from .watchdog import watchdog

log = logging.getLogger("membrane_rtc.room")

#: The payload tag of a wakeup that is a room's timer (``Room.call_later``).
TIMER = "membrane_rtc.timer"
#: The payload tag of a wakeup that ends an away peer's resume grace.
GRACE = "membrane_rtc.grace"
#: What a client whose ``Peer.on_init`` refused it is told (HTTP 401); the exception's text
#: stays in the server's log.
UNAUTHORIZED = "unauthorized"


#: What a room going down still handles (envelopes: to answer a ConnectPeer inside with 404).
_WHILE_DOWN = (ActorExitRequest, Batch, Sequenced)


@dataclass(slots=True)
class PeerEndpoint:
    """One member: the gateway connection behind it, and its ``Peer``. ``away`` while its
    connection has dropped and it may resume (frames for it wait there)."""

    gateway: Address
    conn_id: int
    peer_id: str
    peer: PeerState
    remote_address: str | None = None
    away: Away | None = None


def _remote_address(metadata: Any) -> str | None:
    """``host:port`` of the client, when the default ``parse_request`` recorded it."""
    remote = metadata.get("remote_address") if isinstance(metadata, dict) else None
    if isinstance(remote, (tuple, list)) and len(remote) >= 2:
        return f"{remote[0]}:{remote[1]}"
    return None


class RoomActor(MembraneActor):
    """Runs one user ``Room`` and its peers; started by the supervisor with :class:`StartRoom`."""

    #: Thespian places it on a room host (the one the supervisor chose, in a convention).
    actorSystemCapabilityCheck = staticmethod(accepts_room)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = ""
        self.supervisor: Address = None
        self.state: RoomState[PeerEndpoint] | None = None
        self.callback_timeout = 0.0
        self.sessions = SessionSettings()
        self.events_to: Address = None  # where peers joining and leaving are reported
        self.tokens = ResumeTokens()
        self._absences = 0  # numbers each absence, so a stale grace timer ends nothing
        self.down = False  # crashed or stopping: only the exit matters now
        self.terminated = False
        # Messages for gateways, per gateway, in order; sent when the current message (or the
        # whole Batch it came in) is handled: many frames per send between processes.
        self._outbox: dict[str, tuple[Address, list[Any], list[tuple[int, bytes]]]] = {}
        self._depth = 0

    def handle(self, message: Any, sender: Address) -> None:
        if self.down and not isinstance(message, _WHILE_DOWN):
            if isinstance(message, ConnectPeer):
                self.send(message.gateway, PeerRefused(message.conn_id, 404, "room is closing"))
            return
        self._depth += 1
        try:
            super().handle(message, sender)
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._arm_timers()
                self._flush()

    def failed(self, message: Any, sender: Address, error: Exception) -> None:
        """Handling one message raised outside the room's callbacks' own guard (say, the
        encoder refused what ``on_forward`` returned): the room crashes, as for a raising
        callback - traceback logged once, clients told "Room closed", a restart. The rest of
        its batch is handled as by a room going down."""
        self._crash(f"handling {type(message).__name__} raised {type(error).__name__}: {error}",
                    error)
        if isinstance(message, Request):
            self.answer(message, sender, error=f"{type(message).__name__} failed: the room "
                        "crashed")
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

    def _arm_timers(self) -> None:
        """Timers the room's callbacks set (``Room.call_later``) become Thespian wakeups."""
        if self.state is not None and not self.down:
            for timer_id, delay in self.state.take_timers():
                self.wakeupAfter(timedelta(seconds=delay), (TIMER, timer_id))

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: Address) -> None:
        payload = message.payload
        if self.state is None or not isinstance(payload, tuple):
            return
        if payload[0] == GRACE:
            self._grace_over(payload[1], payload[2])
            return
        if payload[0] != TIMER:
            return
        try:
            self._ship(self.state.fire(payload[1]))
        except RoomCallbackError as exc:
            self._crash(exc.reason, exc.error)

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, {}
        for gateway, messages, frames in outbox.values():
            if frames:
                messages.append(Deliver(frames))
            if messages:
                self.send_ordered(gateway, batch_of(messages))

    def _ship(self, deliveries: list[Delivery[PeerEndpoint]]) -> None:
        """Encode each message once and queue its frame for every recipient's gateway (or
        keep it for an away recipient; one whose frames pass the bound leaves)."""
        overflowing: list[PeerEndpoint] = []
        for delivery in deliveries:
            frame = protocol.encode(delivery.message)
            for endpoint in delivery.recipients:
                if endpoint.away is None:
                    self._queue(endpoint.gateway, [(endpoint.conn_id, frame)])
                elif not endpoint.away.hold(frame):
                    overflowing.append(endpoint)
        for endpoint in overflowing:
            if self._is_member(endpoint):
                log.info("room %s: peer %s missed more than %d bytes while away; it leaves",
                         self.name, endpoint.peer_id, self.sessions.resume_queue_bytes)
                self._leave(endpoint)

    def _is_member(self, endpoint: PeerEndpoint) -> bool:
        """``endpoint`` is still how its peer is a member (not left, not resumed since)."""
        return self.state is not None and self.state.members.get(endpoint.peer_id) is endpoint

    # -- lifecycle ---------------------------------------------------------------------------

    def receiveMsg_StartRoom(self, message: StartRoom, sender: Address) -> None:
        self.supervisor = sender
        self.name = message.name
        self.callback_timeout = message.callback_timeout
        self.sessions = message.sessions
        self.events_to = message.events_to
        try:
            room = load_class(message.room_class, Room)()
        except Exception as exc:
            self._crash(f"cannot start room: {type(exc).__name__}: {exc}", exc)
            return
        state: RoomState[PeerEndpoint] = RoomState(
            room, message.name, message.max_peers, message.callback_timeout, watchdog.limit)
        try:
            deliveries = state.start(message.options)
        except RoomCallbackError as exc:
            self._crash(exc.reason, exc.error)
            return
        self.state = state
        self._ship(deliveries)
        log.info("room %s started (%s)", self.name, type(room).__name__)
        self.send_ordered(sender, RoomStarted(message.name, os.getpid()))
        # Told from here, not by the supervisor: the room may admit peers before the
        # supervisor hears it started, and events must be in the order they happened.
        self._event(EventKind.ROOM_STARTED)

    def receiveMsg_ActorExitRequest(self, message: ActorExitRequest, sender: Address) -> None:
        """Exiting (asked to, or the actor system shuts down): peers first, then the room."""
        self._terminate()

    def _crash(self, reason: str, error: BaseException | None = None) -> None:
        """A callback raised: tell the supervisor why, then wind down and exit for real. The
        log gets the traceback (the user's file and line), once."""
        if self.down:
            return
        log.error("room %s crashed: %s", self.name, reason,
                  exc_info=(type(error), error, error.__traceback__) if error else None)
        self.send_ordered(self.supervisor, RoomCrashed(self.name, reason))
        self._wind_down()

    def receiveMsg_EndRoom(self, message: EndRoom, sender: Address) -> None:
        self._wind_down()

    def _wind_down(self) -> None:
        """End every peer (``Peer.on_terminate``), run ``on_terminate``, exit. The supervisor
        then tells the gateways, which close the sockets with "Room closed"."""
        if not self.down:
            self.down = True
            self._terminate()
            self.send(self.myAddress, ActorExitRequest())

    def _terminate(self) -> None:
        """Peers end before their room: an ``on_terminate`` that hangs until the watchdog ends
        this process then leaves no peer without its own ``on_terminate``."""
        self.down = True
        if self.state is None or self.terminated:
            return
        self.terminated = True
        for endpoint in self.state.members.values():
            self._end_peer(endpoint.peer)
        try:
            self.state.terminate()
        except RoomCallbackError as exc:
            log.error("room %s: %s", self.name, exc.reason)

    # -- peers -------------------------------------------------------------------------------

    @staticmethod
    def _end_peer(peer: PeerState) -> None:
        try:
            peer.terminate()
        except PeerCallbackError as exc:
            log.error("peer %s: %s", peer.context.peer_id, exc)

    def receiveMsg_ConnectPeer(self, message: ConnectPeer, sender: Address) -> None:
        """Run ``Peer.on_init`` (refused: HTTP 401), then ``Room.on_join``; then the gateway
        may upgrade the connection and the frames that follow say whether the peer joined."""
        assert self.state is not None
        if message.resume_token is not None and self.sessions.resumable:
            peer_id = self.tokens.holder(message.resume_token)
            endpoint = self.state.members.get(peer_id) if peer_id is not None else None
            if endpoint is not None:
                self._resume(endpoint, message)
                return
            # Unknown, spent, forged or expired: not an error, the client is admitted afresh.
        auth, gateway, conn_id = message.auth, message.gateway, message.conn_id
        peer = self._new_peer(message, auth.peer_id)
        if peer is None:
            return
        try:
            peer.init(auth, message.peer_options)
        except PeerCallbackError as exc:
            log.info("peer %s refused by %s", auth.peer_id, exc)
            self._unauthorized(message, exc)
            self._report_occupancy()  # a room made for this client ends if it stays empty
            return
        auth = peer.admitted(auth)
        endpoint = PeerEndpoint(gateway, conn_id, auth.peer_id, peer,
                                _remote_address(auth.metadata))
        accepted = PeerAccepted(conn_id, auth.peer_id, self.myAddress, peer.idle_timeout)
        try:
            deliveries = self.state.join(auth, endpoint, self._welcome(endpoint, resumed=False))
        except JoinRefused as refusal:
            self.tokens.forget(auth.peer_id)
            log.info("room %s refused peer %s: %r", self.name, auth.peer_id, refusal.reason)
            notice = protocol.error(protocol.COULD_NOT_JOIN_ROOM, refusal.reason,
                                    to=auth.peer_id)
            self._queue(gateway, control=accepted)
            self._queue(gateway, [(conn_id, protocol.encode(notice))])
            self._queue(gateway, control=ClosePeer(conn_id, CloseCode.NORMAL,
                                                   "could not join room", "join_refused"))
            self._end_peer(peer)
            self._report_occupancy()
            return
        except RoomCallbackError as exc:
            # Upgrade it anyway: the room's crash then closes it with "Room closed".
            self.tokens.forget(auth.peer_id)
            self._queue(gateway, control=accepted)
            self._end_peer(peer)
            self._crash(exc.reason, exc.error)
            return
        self._queue(gateway, control=accepted)
        self._ship(deliveries)
        self._report_occupancy()
        self._event(EventKind.PEER_JOINED, peer_id=auth.peer_id, identity=auth.identity,
                    metadata=auth.public_metadata)

    def _welcome(self, endpoint: PeerEndpoint, resumed: bool) -> dict[str, Any]:
        return self.sessions.welcome(self.tokens, endpoint.peer_id, resumed,
                                     endpoint.peer.public_metadata, time.time())

    def _new_peer(self, message: ConnectPeer, peer_id: str) -> PeerState | None:
        """A new instance of the connection's ``Peer`` class (None: refused with 500)."""
        try:
            return PeerState(load_class(message.peer_class, Peer)(),
                             PeerContext(peer_id, self.name), self.callback_timeout,
                             watchdog.limit)
        except Exception as exc:
            log.error("cannot create peer: %s: %s", type(exc).__name__, exc)
            self.send(message.gateway, PeerRefused(message.conn_id, 500, "cannot create peer"))
            return None

    def _unauthorized(self, message: ConnectPeer, exc: PeerCallbackError) -> None:
        """``Peer.on_init`` refused the connection: HTTP 401, the reason only in the log."""
        reason = str(exc.error) if isinstance(exc.error, Unauthorized) else UNAUTHORIZED
        self.send(message.gateway, PeerRefused(message.conn_id, 401, reason))

    def _resume(self, old: PeerEndpoint, message: ConnectPeer) -> None:
        """A member's client is back with its token: same peer, new connection, if its
        ``Peer`` accepts the new request's credentials (a new instance's ``on_init``, the
        identity it had). Refused: HTTP 401, and nothing else changes (an away peer stays
        away, its grace goes on; its token stays good). Accepted: the old instance's
        ``on_terminate`` runs, the client gets ``authenticated`` (resumed) and what it
        missed, in order; its room-mates see nothing. An old connection still open
        (half-open after a network change) closes."""
        assert self.state is not None and message.resume_token is not None
        auth = AuthData(old.peer_id, message.auth.credentials, message.auth.metadata)
        peer = self._new_peer(message, old.peer_id)
        if peer is None:
            return
        try:
            peer.init_resuming(old.peer, auth, message.peer_options)
        except PeerCallbackError as exc:
            log.info("room %s: peer %s may not resume: refused by %s", self.name, old.peer_id,
                     exc)
            self._end_peer(peer)  # on_terminate, if its on_init had accepted
            self._unauthorized(message, exc)
            return
        self.tokens.claim(message.resume_token)
        self._end_peer(old.peer)  # its connection is over; the new one has its own Peer
        endpoint = PeerEndpoint(message.gateway, message.conn_id, old.peer_id, peer,
                                _remote_address(auth.metadata))
        if old.away is None:
            self._queue(old.gateway, control=ClosePeer(old.conn_id, CloseCode.NORMAL,
                                                       "resumed on another connection"))
        missed = old.away.frames if old.away is not None else []
        self._queue(endpoint.gateway, control=PeerAccepted(
            endpoint.conn_id, endpoint.peer_id, self.myAddress, peer.idle_timeout,
            resumed=True))
        hello = protocol.authenticated(endpoint.peer_id, **self._welcome(endpoint, True))
        self._queue(endpoint.gateway, [(endpoint.conn_id, protocol.encode(hello))] +
                    [(endpoint.conn_id, frame) for frame in missed])
        log.info("room %s: peer %s resumed (%d frames kept for it)", self.name,
                 endpoint.peer_id, len(missed))
        try:
            self._ship(self.state.resume(endpoint.peer_id, endpoint))
        except RoomCallbackError as exc:
            self._crash(exc.reason, exc.error)

    def _away(self, endpoint: PeerEndpoint) -> None:
        """A member's connection dropped: it stays, frames for it are kept, and it leaves if
        its client has not resumed when the grace is over."""
        assert self.state is not None
        self._absences += 1
        endpoint.away = Away(self.sessions.resume_queue_bytes, self._absences)
        self.wakeupAfter(timedelta(seconds=self.sessions.resume_grace),
                         (GRACE, endpoint.peer_id, self._absences))
        log.info("room %s: peer %s dropped; it may resume within %g s", self.name,
                 endpoint.peer_id, self.sessions.resume_grace)
        try:
            self._ship(self.state.disconnect(endpoint.peer_id))
        except RoomCallbackError as exc:
            self._crash(exc.reason, exc.error)

    def _grace_over(self, peer_id: str, absence: int) -> None:
        """An away peer's grace ends: unless it resumed (or left) since, it leaves."""
        assert self.state is not None
        endpoint = self.state.members.get(peer_id)
        if endpoint is not None and endpoint.away is not None and endpoint.away.absence == absence:
            log.info("room %s: peer %s did not resume in time; it leaves", self.name, peer_id)
            self._leave(endpoint)

    def _leave(self, endpoint: PeerEndpoint) -> None:
        """A member is gone: ``Peer.on_terminate``, then ``on_leave`` and ``left``."""
        assert self.state is not None
        self.tokens.forget(endpoint.peer_id)
        self._end_peer(endpoint.peer)
        try:
            self._ship(self.state.leave(endpoint.peer_id))
        except RoomCallbackError as exc:
            self._crash(exc.reason, exc.error)
            return
        self._report_occupancy()
        self._event(EventKind.PEER_LEFT, peer_id=endpoint.peer_id)

    def _close(self, endpoint: PeerEndpoint, code: int, reason: str) -> None:
        """The room lets a member go: its socket closes, and it leaves."""
        self._queue(endpoint.gateway, control=ClosePeer(endpoint.conn_id, code, reason))
        self._leave(endpoint)

    def receiveMsg_PeerDisconnected(self, message: PeerDisconnected, sender: Address) -> None:
        endpoint = self.state.members.get(message.peer_id) if self.state else None
        if endpoint is None or endpoint.away is not None or endpoint.conn_id != message.conn_id \
                or endpoint.gateway != message.gateway:
            return  # it left already (kicked, crashed, refused), or that was an old connection
        if message.resumable and self.sessions.resumable:
            self._away(endpoint)
        else:
            self._leave(endpoint)

    def _event(self, kind: EventKind, **fields: Any) -> None:
        """Report an event of this room or its peers to the webhooks' process, if any."""
        if self.events_to is not None:
            self.send(self.events_to, Event(new_event(kind, self.name, **fields)))

    def _report_occupancy(self) -> None:
        assert self.state is not None
        if not self.down:
            self.send_ordered(self.supervisor, RoomOccupancy(self.name, len(self.state.members)))

    def receiveMsg_GatewayLost(self, message: GatewayLost, sender: Address) -> None:
        """The gateway holding some members' sockets is gone: they leave, or with resuming
        on, are away (their clients may resume through another gateway)."""
        if self.state is None:
            return
        for endpoint in list(self.state.members.values()):
            if endpoint.gateway == message.gateway and endpoint.away is None and not self.down:
                if self.sessions.resumable:
                    self._away(endpoint)
                else:
                    self._leave(endpoint)
        self._outbox.pop(address_key(message.gateway), None)  # nobody left to read it

    def receiveMsg_RoomPing(self, message: RoomPing, sender: Address) -> None:
        self.send(sender, RoomPong(self.name))

    def receiveMsg_ListPeers(self, message: ListPeers, sender: Address) -> None:
        assert self.state is not None
        peers = [PeerInfo(e.peer_id, e.remote_address, e.away is not None)
                 for e in self.state.members.values()]
        self.answer(message, sender, peers)

    def receiveMsg_KickPeer(self, message: KickPeer, sender: Address) -> None:
        assert self.state is not None
        endpoint = self.state.members.get(message.peer_id)
        if endpoint is None:
            self.answer(message, sender, error=f"no peer {message.peer_id!r} in room {self.name!r}")
            return
        log.info("room %s: kicking peer %s", self.name, message.peer_id)
        self._close(endpoint, CloseCode.NORMAL, "kicked")
        self.answer(message, sender)

    # -- messages ----------------------------------------------------------------------------

    def receiveMsg_ClientMessage(self, message: ClientMessage, sender: Address) -> None:
        """A client's message: its ``Peer.on_receive`` (which raising ends that peer only),
        then the room's forwarding."""
        assert self.state is not None
        endpoint = self.state.members.get(message.message.from_ or "")
        if endpoint is None:
            return  # it left meanwhile
        try:
            outgoing = endpoint.peer.receive(message.message)
        except PeerCallbackError as exc:
            log.error("peer %s: %s; closing it", endpoint.peer_id, exc)
            self._close(endpoint, CloseCode.INTERNAL_ERROR, "internal error")
            return
        if outgoing is not None:
            self._forward(outgoing)

    def receiveMsg_ForwardMessage(self, message: ForwardMessage, sender: Address) -> None:
        status = self._forward(message.message)
        if message.request_id is not None:
            self.answer(message, sender, status)

    def _forward(self, message: protocol.Message) -> str:
        """Route one message; ``ok``, ``no_such_peer``, or ``unknown_error`` (the room crashed)."""
        assert self.state is not None
        try:
            result = self.state.forward(message)
        except RoomCallbackError as exc:
            self._crash(exc.reason, exc.error)
            return "unknown_error"
        self._ship(result.deliveries)
        return result.status
