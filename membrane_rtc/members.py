"""A room's members and their sessions as plain state: join, resume, away and grace, leave.

One core for every driver: the room actor turns what it returns into Thespian sends and
wakeups, :class:`~membrane_rtc.testing.RoomHarness` into its simulated clients' frames and its
fake clock, so the harness cannot drift from the server. No actors and no sockets here, like
:mod:`.room_state`, whose :class:`~membrane_rtc.room_state.RoomState` it drives. Each method
returns an :class:`~membrane_rtc.outcomes.Outcome` (:mod:`.outcomes`): effects for
connections, in order (frames, accept, refuse, close), grace wakeups to arm, events,
occupancy, and whether the room must crash.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic

from . import protocol
from .events import EventKind
from .peer import Peer, PeerContext, Unauthorized
from .peer_state import PeerCallbackError, PeerState
from .protocol import CloseCode, Message
from .outcomes import Accept, Close, Conn, Frame, Grace, Left, Notify, Occupancy, Outcome, Refuse
from .room import AuthData, JoinRefused
from .room_state import Delivery, RoomCallbackError, RoomState
from .sessions import ResumeTokens, Sent, SessionSettings

__all__ = ["Members", "Member", "UNAUTHORIZED", "RECEIVED_TOO_MANY"]

log = logging.getLogger("membrane_rtc.room")

#: What a client whose ``Peer.on_init`` refused it is told (HTTP 401); the exception's text
#: stays in the server's log.
UNAUTHORIZED = "unauthorized"
#: Why a resume that says it received more frames than the session had is refused (400).
RECEIVED_TOO_MANY = "received more frames than were sent"


@dataclass(slots=True, eq=False)
class Member(Generic[Conn]):
    """One member: the connection behind it, and its ``Peer`` (run by ``peer_state``). ``sent``: the frames of its
    session, numbered, the last ones kept (for a resume). ``away``: while its connection has
    dropped and it may resume, the number of this absence (a grace wakeup set for an earlier
    one ends nothing); None while connected."""

    conn: Conn
    peer_id: str
    peer_state: PeerState
    sent: Sent
    remote_address: str | None = None
    away: int | None = None


def remote_address(metadata: Any) -> str | None:
    """``host:port`` of the client, when the default ``parse_request`` recorded it."""
    remote = metadata.get("remote_address") if isinstance(metadata, dict) else None
    if isinstance(remote, (tuple, list)) and len(remote) >= 2:
        return f"{remote[0]}:{remote[1]}"
    return None


class Members(Generic[Conn]):
    """The members of one room (its ``RoomState``'s), their ``Peer``s, resume tokens and
    absences. ``clock`` is wall time (TURN credentials' expiry)."""

    def __init__(self, state: RoomState[Member[Conn]], sessions: SessionSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.name = state.room.name
        self.sessions = sessions
        self.clock = clock
        self.tokens = ResumeTokens()
        self._absences = 0  # numbers each absence, so a stale grace wakeup ends nothing
        self.terminated = False

    @property
    def members(self) -> dict[str, Member[Conn]]:
        return self.state.members

    def _guarded(self, step: Callable[[Outcome[Conn]], None]) -> Outcome[Conn]:
        """Run a step; a ``Room`` callback that raised stops it and is the outcome's crash."""
        out: Outcome[Conn] = Outcome()
        try:
            step(out)
        except RoomCallbackError as exc:
            out.crash = exc
        return out

    def _ship(self, out: Outcome[Conn], deliveries: list[Delivery[Member[Conn]]]) -> None:
        """Encode each message once: numbered and kept for every recipient, and a frame for
        each connected one (an away one whose frames since the drop pass the bound leaves)."""
        overflowing: list[Member[Conn]] = []
        for delivery in deliveries:
            frame = protocol.encode(delivery.message)
            for member in delivery.recipients:
                kept = member.sent.add(frame)
                if member.away is None:
                    out.effects.append(Frame(member.conn, frame))
                elif not kept:
                    overflowing.append(member)
        for member in overflowing:
            if self.members.get(member.peer_id) is member:
                log.info("room %s: peer %s missed more than %d bytes while away; it leaves",
                         self.name, member.peer_id, self.sessions.resume_queue_bytes)
                self._leave(out, member)

    # -- the room ----------------------------------------------------------------------------

    def start(self, options: Any) -> Outcome[Conn]:
        """Run the room's ``on_init``."""
        return self._guarded(lambda out: self._ship(out, self.state.start(options)))

    def fire(self, timer_id: int) -> Outcome[Conn]:
        """A room timer (``Room.call_later``) is due."""
        return self._guarded(lambda out: self._ship(out, self.state.fire(timer_id)))

    def forward(self, message: Message) -> Outcome[Conn]:
        """Route a message through the room (``status``: ``ok`` or ``no_such_peer``)."""
        def step(out: Outcome[Conn]) -> None:
            result = self.state.forward(message)
            out.status = result.status
            self._ship(out, result.deliveries)
        return self._guarded(step)

    def receive(self, peer_id: str, message: Message) -> Outcome[Conn]:
        """A member's client sent ``message``: its ``Peer.on_receive`` (raising closes that
        peer only, 1011), then the room's forwarding. A non-member's message is dropped."""
        member = self.members.get(peer_id)
        if member is None:
            return Outcome()  # it left meanwhile
        try:
            outgoing = member.peer_state.receive(message)
        except PeerCallbackError as exc:
            log.error("peer %s: %s; closing it", peer_id, exc)
            return self.close(member, CloseCode.INTERNAL_ERROR, "internal error")
        return self.forward(outgoing) if outgoing is not None else Outcome()

    def terminate(self) -> RoomCallbackError | None:
        """Peers end before their room (each ``Peer.on_terminate``), then ``on_terminate``;
        its error, if it raised. Once."""
        if self.terminated:
            return None
        self.terminated = True
        for member in self.members.values():
            self._end_peer(member.peer_state)
        try:
            self.state.terminate()
        except RoomCallbackError as exc:
            log.error("room %s: %s", self.name, exc.reason)
            return exc
        return None

    # -- joining -----------------------------------------------------------------------------

    def _new_peer(self, out: Outcome[Conn], conn: Conn, make_peer: Callable[[], Peer],
                  peer_id: str) -> PeerState | None:
        """A new instance of the connection's ``Peer`` class (None: refused with 500)."""
        try:
            return PeerState(make_peer(), PeerContext(peer_id, self.name),
                             self.state.callback_timeout, self.state.time_limit)
        except Exception as exc:
            log.error("cannot create peer: %s: %s", type(exc).__name__, exc)
            out.effects.append(Refuse(conn, 500, "cannot create peer", exc))
            return None

    @staticmethod
    def _unauthorized(out: Outcome[Conn], conn: Conn, exc: PeerCallbackError) -> None:
        """``Peer.on_init`` refused the connection: HTTP 401, the reason only in the log."""
        reason = str(exc.error) if isinstance(exc.error, Unauthorized) else UNAUTHORIZED
        out.effects.append(Refuse(conn, 401, reason, exc.error))

    def _welcome(self, member: Member[Conn], resumed: bool) -> dict[str, Any]:
        return self.sessions.welcome(self.tokens, member.peer_id, resumed,
                                     member.peer_state.public_metadata, self.clock())

    def _kept_bytes(self) -> int:
        """Bytes of recent frames each peer keeps for a resume: none when resuming is off (a
        drop is a leave: nobody would ever ask for them)."""
        return self.sessions.resume_queue_bytes if self.sessions.resumable else 0

    def connect(self, conn: Conn, auth: AuthData, make_peer: Callable[[], Peer],
                options: Any, resume_token: str | None = None,
                received: int | None = None) -> Outcome[Conn]:
        """A client connects: a resume if ``resume_token`` is a member's current one (and
        resuming is on), else a join. An unknown, spent, forged or expired token is not an
        error: the client is admitted afresh. ``received``: how many frames of its session
        the resuming client says it got (``?received=``)."""
        if resume_token is not None:
            resumed = self.resume(resume_token, conn, auth, make_peer, options, received)
            if resumed is not None:
                return resumed
        return self.join(conn, auth, make_peer, options)

    def join(self, conn: Conn, auth: AuthData, make_peer: Callable[[], Peer],
             options: Any) -> Outcome[Conn]:
        """Run ``Peer.on_init`` (refused: 401), then ``Room.on_join``; accepted, the
        connection is upgraded and told whether the peer joined (``Could not join room``
        and a close if not: ``refusal``)."""
        out: Outcome[Conn] = Outcome()
        peer = self._new_peer(out, conn, make_peer, auth.peer_id)
        if peer is None:
            return out
        try:
            peer.init(auth, options)
        except PeerCallbackError as exc:
            log.info("peer %s refused by %s", auth.peer_id, exc)
            self._unauthorized(out, conn, exc)
            out.effects.append(Occupancy(len(self.members)))  # a room made for it may end
            return out
        auth = peer.admitted(auth)
        member = Member(conn, auth.peer_id, peer, Sent(self._kept_bytes()),
                        remote_address(auth.metadata))
        accepted = Accept(conn, auth.peer_id, peer.idle_timeout)
        try:
            deliveries = self.state.join(auth, member, self._welcome(member, resumed=False))
        except JoinRefused as refusal:
            self.tokens.forget(auth.peer_id)
            log.info("room %s refused peer %s: %r", self.name, auth.peer_id, refusal.reason)
            notice = protocol.error(protocol.COULD_NOT_JOIN_ROOM, refusal.reason,
                                    to=auth.peer_id)
            out.effects += [accepted, Frame(conn, protocol.encode(notice)),
                            Close(conn, CloseCode.NORMAL, "could not join room", "join_refused")]
            self._end_peer(peer)
            out.effects.append(Occupancy(len(self.members)))
            out.refusal = refusal
            return out
        except RoomCallbackError as exc:
            # Upgrade it anyway: the room's crash then closes it with "Room closed".
            self.tokens.forget(auth.peer_id)
            out.effects.append(accepted)
            self._end_peer(peer)
            out.crash = exc
            return out
        out.effects.append(accepted)
        try:
            self._ship(out, deliveries)
        except RoomCallbackError as exc:
            out.crash = exc
            return out
        out.effects += [Occupancy(len(self.members)), Notify(EventKind.PEER_JOINED, {
            "peer_id": auth.peer_id, "identity": auth.identity,
            "metadata": auth.public_metadata})]
        return out

    def resume(self, token: str, conn: Conn, auth: AuthData, make_peer: Callable[[], Peer],
               options: Any, received: int | None = None) -> Outcome[Conn] | None:
        """A member's client is back with its token (None: the token is no member's current
        one, or resuming is off): same peer, new connection, if a new instance of its
        ``Peer`` accepts the new request's credentials (``on_init``, the identity it had).
        Refused: 401 (400: ``received`` above the frames sent) and nothing else changes.
        Accepted: the old instance's ``on_terminate``, ``authenticated`` (resumed, not
        numbered), the kept frames after the ``received`` first (None: since the drop), in
        order, and ``Room.on_resume``; an old connection still open (half-open) closes.
        Frames after ``received`` no longer kept: the peer leaves, as an overflow, and the
        client is admitted afresh."""
        peer_id = self.tokens.holder(token) if self.sessions.resumable else None
        old = self.members.get(peer_id) if peer_id is not None else None
        if old is None:
            return None
        out: Outcome[Conn] = Outcome()
        resuming = AuthData(old.peer_id, auth.credentials, auth.metadata)
        peer = self._new_peer(out, conn, make_peer, old.peer_id)
        if peer is None:
            return out
        try:
            peer.init_resuming(old.peer_state, resuming, options)
        except PeerCallbackError as exc:
            log.info("room %s: peer %s may not resume: refused by %s", self.name, old.peer_id,
                     exc)
            self._end_peer(peer)  # on_terminate, if its on_init had accepted
            self._unauthorized(out, conn, exc)
            return out
        if received is not None and received > old.sent.count:
            log.info("room %s: peer %s may not resume: it says it received %d frames of %d",
                     self.name, old.peer_id, received, old.sent.count)
            self._end_peer(peer)
            out.effects.append(Refuse(conn, 400, RECEIVED_TOO_MANY))
            return out
        missed = old.sent.since_drop() if received is None else old.sent.after(received)
        if missed is None:
            return self._resumed_too_late(old, peer, conn, auth, make_peer, options)
        self.tokens.claim(token)
        self._end_peer(old.peer_state)  # its connection is over; the new one has its own Peer
        member = Member(conn, old.peer_id, peer, old.sent, remote_address(resuming.metadata))
        member.sent.unpin()
        if old.away is None:
            out.effects.append(Close(old.conn, CloseCode.NORMAL,
                                     "resumed on another connection"))
        hello = protocol.authenticated(member.peer_id, **self._welcome(member, True))
        out.effects.append(Accept(conn, member.peer_id, peer.idle_timeout, resumed=True))
        out.effects += [Frame(conn, protocol.encode(hello))] + [Frame(conn, f) for f in missed]
        log.info("room %s: peer %s resumed (%d frames sent again)", self.name,
                 member.peer_id, len(missed))
        try:
            self._ship(out, self.state.resume(member.peer_id, member))
        except RoomCallbackError as exc:
            out.crash = exc
        return out

    def _resumed_too_late(self, old: Member[Conn], peer: PeerState, conn: Conn,
                          auth: AuthData, make_peer: Callable[[], Peer],
                          options: Any) -> Outcome[Conn]:
        """A resume whose frames after ``received`` are no longer kept: the peer leaves, as
        one away whose frames passed the bound, and the client joins afresh."""
        log.info("room %s: peer %s missed more than %d bytes; it leaves", self.name,
                 old.peer_id, self.sessions.resume_queue_bytes)
        self._end_peer(peer)
        out = self.leave(old.peer_id) if old.away is not None else self.close(
            old, CloseCode.NORMAL, "resumed on another connection")
        if out.crash is not None:
            out.effects.append(Refuse(conn, 404, "room is closing"))
            return out
        joined = self.join(conn, auth, make_peer, options)
        joined.effects[:0] = out.effects
        return joined

    # -- going -------------------------------------------------------------------------------

    def disconnected(self, peer_id: str, conn: Conn, resumable: bool) -> Outcome[Conn]:
        """``conn`` of member ``peer_id`` is over: a drop (``resumable``) makes it away if
        resuming is on, else it leaves. Ignored unless ``conn`` is still how it is a member
        (it left already, or that was an old connection)."""
        member = self.members.get(peer_id)
        if member is None or member.away is not None or member.conn != conn:
            return Outcome()
        if resumable and self.sessions.resumable:
            return self._guarded(lambda out: self._away(out, member))
        return self._guarded(lambda out: self._leave(out, member))

    def _away(self, out: Outcome[Conn], member: Member[Conn]) -> None:
        """A member's connection dropped: it stays, frames for it are kept, and it leaves if
        its client has not resumed when the grace is over."""
        self._absences += 1
        member.away = self._absences
        member.sent.pin()
        out.effects.append(Grace(self.sessions.resume_grace, member.peer_id, self._absences))
        log.info("room %s: peer %s dropped; it may resume within %g s", self.name,
                 member.peer_id, self.sessions.resume_grace)
        self._ship(out, self.state.disconnect(member.peer_id))

    def grace_over(self, peer_id: str, absence: int) -> Outcome[Conn]:
        """An away peer's grace ends: unless it resumed (or left) since, it leaves."""
        member = self.members.get(peer_id)
        if member is None or member.away is None or member.away != absence:
            return Outcome()
        log.info("room %s: peer %s did not resume in time; it leaves", self.name, peer_id)
        return self._guarded(lambda out: self._leave(out, member))

    def leave(self, peer_id: str) -> Outcome[Conn]:
        """Member ``peer_id`` leaves (its connection, if any, is over). Idempotent."""
        member = self.members.get(peer_id)
        if member is None:
            return Outcome()
        return self._guarded(lambda out: self._leave(out, member))

    def close(self, member: Member[Conn], code: int, reason: str) -> Outcome[Conn]:
        """The room lets a member go: its connection closes, and it leaves."""
        def step(out: Outcome[Conn]) -> None:
            out.effects.append(Close(member.conn, code, reason))
            self._leave(out, member)
        return self._guarded(step)

    def kick(self, peer_id: str) -> Outcome[Conn] | None:
        """An operator kicks a member (None: no such member)."""
        member = self.members.get(peer_id)
        if member is None:
            return None
        log.info("room %s: kicking peer %s", self.name, peer_id)
        return self.close(member, CloseCode.NORMAL, "kicked")

    def _leave(self, out: Outcome[Conn], member: Member[Conn]) -> None:
        """A member is gone: ``Peer.on_terminate``, then ``on_leave`` and ``left``."""
        self.tokens.forget(member.peer_id)
        out.effects.append(Left(member.conn, member.peer_id))
        self._end_peer(member.peer_state)
        self._ship(out, self.state.leave(member.peer_id))
        out.effects += [Occupancy(len(self.members)),
                        Notify(EventKind.PEER_LEFT, {"peer_id": member.peer_id})]

    @staticmethod
    def _end_peer(peer: PeerState) -> None:
        try:
            peer.terminate()
        except PeerCallbackError as exc:
            log.error("peer %s: %s", peer.context.peer_id, exc)
