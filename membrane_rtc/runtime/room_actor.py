"""The room actor: a thin Thespian adapter around :class:`~membrane_rtc.members.Members`.

It also hosts its peers: each connection's ``Peer`` runs here as a
:class:`~membrane_rtc.peer_state.PeerState`, a Python object, not an actor or a process. The
rules of membership and sessions (join, resume, away and grace, leave) are plain state in
:mod:`membrane_rtc.members`, shared with :class:`~membrane_rtc.testing.RoomHarness`; this
actor turns what they return into sends to gateways, wakeups and reports. A ``Peer`` callback
that raises ends that peer only. An exception in a user ``Room`` callback crashes the room on
purpose: it tells the supervisor why, ends its peers, runs ``on_terminate`` and exits,
instead of letting Thespian swallow the error.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from thespian.actors import ActorExitRequest, WakeupMessage

from ..events import EventKind, new_event
from ..loading import load_class
from ..members import Member, Members
from ..outcomes import Accept, Close, Frame, Grace, Notify, Occupancy, Outcome, Refuse
from ..peer import Peer
from ..room import Room
from ..room_state import RoomState
from ..supervision import PeerInfo
from .actor import MembraneActor, address_key
from .ordering import Sequenced
from .messages import Address, Batch, Request, batch_of
from .messages.admin import ForwardMessage, KickPeer, ListPeers
from .messages.gateway import (ClientMessage, ClosePeer, ConnectPeer, Deliver, PeerAccepted,
                               PeerDisconnected, RefuseConnection)
from .messages.leaders import AdoptRoom
from .messages.rooms import (EndRoom, Event, GatewayLost, RoomCrashed, RoomOccupancy, RoomPing,
                             RoomPong, RoomStarted, StartRoom)
from .placement import accepts_room
from .watchdog import watchdog

log = logging.getLogger("membrane_rtc.room")

#: The payload tag of a wakeup that is a room's timer (``Room.call_later``).
TIMER_WAKEUP = "membrane_rtc.timer"
#: The payload tag of a wakeup that ends an away peer's resume grace.
GRACE_WAKEUP = "membrane_rtc.grace"

#: What a room going down still handles (envelopes: to answer a ConnectPeer inside with 404).
_WHILE_DOWN = (ActorExitRequest, Batch, Sequenced)

#: A connection, as the room's members name it: the gateway holding it, its id there.
Conn = tuple[Address, int]


class RoomActor(MembraneActor):
    """Runs one user ``Room`` and its peers; started by the supervisor with :class:`StartRoom`."""

    #: Thespian places it on a room host (the one the supervisor chose, in a convention).
    actorSystemCapabilityCheck = staticmethod(accepts_room)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.name = ""
        self.supervisor: Address = None
        self.members: Members[Conn] | None = None
        self.events_to: Address = None  # where peers joining and leaving are reported
        self.down = False  # crashed or stopping: only the exit matters now
        # Messages for gateways, per gateway, in order; sent when the current message (or the
        # whole Batch it came in) is handled: many frames per send between processes.
        self._outbox: dict[str, tuple[Address, list[Any], list[tuple[int, bytes]]]] = {}
        self._depth = 0

    @property
    def state(self) -> RoomState[Member[Conn]] | None:
        """The room's rules (None until it started)."""
        return self.members.state if self.members is not None else None

    def handle(self, message: Any, sender: Address) -> None:
        if self.down and not isinstance(message, _WHILE_DOWN):
            if isinstance(message, ConnectPeer):
                self.send(message.gateway, RefuseConnection(message.conn_id, 404, "room is closing"))
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

    # -- carrying out what the members' rules decided ----------------------------------------

    def _apply(self, outcome: Outcome[Conn]) -> None:
        """Queue each effect for its gateway, in order; arm grace wakeups; report events and
        occupancy; then crash if a ``Room`` callback raised."""
        for effect in outcome.effects:
            if isinstance(effect, Frame):
                gateway, conn_id = effect.conn
                self._queue(gateway, [(conn_id, effect.frame)])
            elif isinstance(effect, Accept):
                gateway, conn_id = effect.conn
                self._queue(gateway, control=PeerAccepted(
                    conn_id, effect.peer_id, self.myAddress, effect.idle_timeout,
                    resumed=effect.resumed))
            elif isinstance(effect, Close):
                gateway, conn_id = effect.conn
                self._queue(gateway, control=ClosePeer(conn_id, effect.code, effect.reason,
                                                       effect.counted_as))
            elif isinstance(effect, Refuse):
                gateway, conn_id = effect.conn  # answered at once: no frames go before it
                self.send(gateway, RefuseConnection(conn_id, effect.status, effect.reason))
            elif isinstance(effect, Grace):
                self.wakeupAfter(timedelta(seconds=effect.delay),
                                 (GRACE_WAKEUP, effect.peer_id, effect.absence))
            elif isinstance(effect, Notify):
                self._event(effect.kind, **effect.fields)
            elif isinstance(effect, Occupancy) and not self.down:
                self.send_ordered(self.supervisor, RoomOccupancy(self.name, effect.count))
            # Left: nothing to do here; the gateway knows its connection is over.
        if outcome.crash is not None:
            self._crash(outcome.crash.reason, outcome.crash.error)

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
                self.wakeupAfter(timedelta(seconds=delay), (TIMER_WAKEUP, timer_id))

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: Address) -> None:
        payload = message.payload
        if self.members is None or not isinstance(payload, tuple):
            return
        if payload[0] == GRACE_WAKEUP:
            self._apply(self.members.grace_over(payload[1], payload[2]))
        elif payload[0] == TIMER_WAKEUP:
            self._apply(self.members.fire(payload[1]))

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, {}
        for gateway, messages, frames in outbox.values():
            if frames:
                messages.append(Deliver(frames))
            if messages:
                self.send_ordered(gateway, batch_of(messages))

    # -- lifecycle ---------------------------------------------------------------------------

    def receiveMsg_StartRoom(self, message: StartRoom, sender: Address) -> None:
        self.supervisor = sender
        self.name = message.name
        self.events_to = message.events_to
        try:
            room = load_class(message.room_class, Room)()
        except Exception as exc:
            self._crash(f"cannot start room: {type(exc).__name__}: {exc}", exc)
            return
        state: RoomState[Member[Conn]] = RoomState(
            room, message.name, message.max_peers, message.callback_timeout, watchdog.limit)
        members: Members[Conn] = Members(state, message.sessions)
        started = members.start(message.options)
        if started.crash is not None:  # its on_init raised: no on_terminate to run
            self._crash(started.crash.reason, started.crash.error)
            return
        self.members = members
        self._apply(started)
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
        if self.members is not None:
            self.members.terminate()

    # -- peers -------------------------------------------------------------------------------

    def receiveMsg_ConnectPeer(self, message: ConnectPeer, sender: Address) -> None:
        """Run ``Peer.on_init`` (refused: HTTP 401), then ``Room.on_join`` (or, with a
        member's resume token, resume it): then the gateway may upgrade the connection and
        the frames that follow say whether the peer joined."""
        assert self.members is not None
        self._apply(self.members.connect(
            (message.gateway, message.conn_id), message.auth,
            lambda: load_class(message.peer_class, Peer)(), message.peer_options,
            message.resume_token, message.received))

    def receiveMsg_PeerDisconnected(self, message: PeerDisconnected, sender: Address) -> None:
        if self.members is not None:
            self._apply(self.members.disconnected(
                message.peer_id, (message.gateway, message.conn_id), message.resumable))

    def _event(self, kind: EventKind, **fields: Any) -> None:
        """Report an event of this room or its peers to the webhooks' process, if any."""
        if self.events_to is not None:
            self.send(self.events_to, Event(new_event(kind, self.name, **fields)))

    def receiveMsg_GatewayLost(self, message: GatewayLost, sender: Address) -> None:
        """The gateway holding some members' sockets is gone: they leave, or with resuming
        on, are away (their clients may resume through another gateway)."""
        if self.members is None:
            return
        for member in list(self.members.members.values()):
            if member.conn[0] == message.gateway and not self.down:
                self._apply(self.members.disconnected(member.peer_id, member.conn, True))
        self._outbox.pop(address_key(message.gateway), None)  # nobody left to read it

    def receiveMsg_RoomPing(self, message: RoomPing, sender: Address) -> None:
        self.send(sender, RoomPong(self.name))

    def receiveMsg_AdoptRoom(self, message: AdoptRoom, sender: Address) -> None:
        """Another leader's supervisor took over: report to it (and its events) from now on."""
        self.supervisor, self.events_to = sender, message.events_to
        if self.members is not None:
            self.send_ordered(sender, RoomOccupancy(self.name, len(self.members.members)))

    def receiveMsg_ListPeers(self, message: ListPeers, sender: Address) -> None:
        assert self.members is not None
        peers = [PeerInfo(m.peer_id, m.remote_address, m.away is not None)
                 for m in self.members.members.values()]
        self.answer(message, sender, peers)

    def receiveMsg_KickPeer(self, message: KickPeer, sender: Address) -> None:
        assert self.members is not None
        kicked = self.members.kick(message.peer_id)
        if kicked is None:
            self.answer(message, sender, error=f"no peer {message.peer_id!r} in room {self.name!r}")
            return
        self._apply(kicked)
        self.answer(message, sender)

    # -- messages ----------------------------------------------------------------------------

    def receiveMsg_ClientMessage(self, message: ClientMessage, sender: Address) -> None:
        """A client's message: its ``Peer.on_receive`` (which raising ends that peer only),
        then the room's forwarding."""
        assert self.members is not None
        self._apply(self.members.receive(message.message.from_ or "", message.message))

    def receiveMsg_ForwardMessage(self, message: ForwardMessage, sender: Address) -> None:
        """Route a message for the server's ``forward_message``: ``ok`` or ``no_such_peer``;
        a room that crashed doing it answers with an error, as any refused request."""
        assert self.members is not None
        outcome = self.members.forward(message.message)
        self._apply(outcome)
        if message.request_id is None:
            return
        if outcome.crash is not None:
            self.answer(message, sender, error=f"room {self.name} crashed forwarding the message")
        else:
            self.answer(message, sender, outcome.status)
