"""Test a ``Room`` (and a ``Peer``) without a server: in-process, synchronous, no sockets.

The harness runs your classes through the same rules the server runs them with
(:class:`~membrane_rtc.room_state.RoomState`, :class:`~membrane_rtc.peer_state.PeerState`), so
what a simulated peer receives is what a real client would, frame for frame::

    from membrane_rtc.testing import RoomHarness

    room = RoomHarness(Lobby, options={"max_peers": 2})
    a = room.join()                      # ran on_join; raises JoinRefused when refused
    b = room.join(credentials={"name": "b"})
    a.send("offer", {"sdp": "..."}, to=[b.peer_id])
    assert b.received[-1].event == "offer" and b.received[-1].from_ == a.peer_id
    b.leave()                            # on_leave ran; a got "left"
    a.drop()                             # its network dropped: on_disconnect, no "left"
    a.resume()                           # back (its Peer checks its credentials again):
                                         # on_resume, and what it missed
    room.advance(30)                     # the room's timers (call_later) due by then fired
    room.terminate()                     # on_terminate ran

With pytest, the ``room_harness`` fixture (this package's pytest plugin) makes harnesses and
terminates them after the test.
"""

from __future__ import annotations

import heapq
import uuid
from typing import Any, Iterator

from . import protocol
from .members import Member, Members
from .outcomes import Accept, Close, Frame, Grace, Left, Outcome, Refuse
from .peer import Peer
from .peer_state import PeerState
from .protocol import Addressees, Message
from .room import AuthData, Room
from .room_state import RoomCallbackError, RoomState
from .sessions import DEFAULT_RESUME_GRACE, DEFAULT_RESUME_QUEUE_BYTES, SessionSettings
from .supervision import CRASH_DETAILS

__all__ = ["RoomHarness", "TestPeer", "PeerRefused"]


class PeerRefused(Exception):
    """``Peer.on_init`` refused the client (a server answers HTTP 401); ``error`` is why."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"Peer.on_init refused the client: {type(error).__name__}: {error}")
        self.error = error


class TestPeer:
    """A simulated client in a :class:`RoomHarness`."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, harness: RoomHarness, peer_id: str, peer: PeerState | None = None,
                 credentials: dict[str, str] | None = None, metadata: Any = None) -> None:
        self.harness = harness
        self.peer_id = peer_id
        self._peer = peer
        #: What the client sends when it connects, as a real client resends them on a resume
        #: (its query and headers): the credentials and metadata it last connected with.
        self.credentials: dict[str, str] = dict(credentials or {})
        self.metadata = metadata
        #: Every message this client would have been sent, as decoded from the wire.
        self.received: list[Message] = []
        #: The frames received on its session, counted as the shipped clients count them
        #: (from the first ``authenticated`` on; a resume's own ``authenticated`` is not one
        #: of them): what it says with ``resume(received=...)``.
        self.counted = 0
        #: The connection was closed (left, kicked, its Peer raised, its room went down).
        self.closed = False
        #: Its connection dropped (:meth:`drop`) and it has not resumed yet.
        self.away = False
        self._token: str | None = None  # its resume token, from its last ``authenticated``

    @property
    def peer(self) -> Peer:
        """Its ``Peer`` instance, to look at its state (a new one after each resume, as on a
        server)."""
        assert self._peer is not None, "its Peer refused it"
        return self._peer.peer

    def send(self, event: str, data: Any = None, to: Addressees = None) -> None:
        """Send a message as this client would (``from`` is set to its peer id)."""
        self.harness._from_client(self, Message(event, data, self.peer_id, to))

    def leave(self) -> None:
        """Close this client's connection: ``Peer.on_terminate``, ``on_leave``, ``left``."""
        self.harness._leave(self)

    def drop(self, lost: int = 0) -> None:
        """This client's network drops: ``Room.on_disconnect``; it stays a member, what is
        sent to it waits, and it leaves if it has not resumed when the grace is over
        (:meth:`RoomHarness.advance`). With ``resume_grace=0`` it leaves at once. ``lost``:
        the last frames it was sent never reached it (written into a connection the server
        still believed open); they are taken off :attr:`received` and :attr:`counted`."""
        if not 0 <= lost <= self.counted:
            raise ValueError(f"cannot lose {lost} of {self.counted} frames")
        del self.received[len(self.received) - lost:]
        self.counted -= lost
        self.harness._drop(self)

    def resume(self, credentials: dict[str, str] | None = None, metadata: Any = None,
               received: int | None = None) -> None:
        """The client comes back with its token and its credentials (by default the ones it
        last connected with): a new instance of its ``Peer`` runs ``on_init`` with them.
        Refused (or another identity): :class:`PeerRefused`, and the client stays away, its
        grace going on. Accepted: the old ``Peer``'s ``on_terminate``, ``authenticated``
        (resumed), what it missed, then ``Room.on_resume``. ``received``: how many frames of
        its session it says it got (``?received=``, the shipped clients send
        :attr:`counted`): every kept frame after those comes again; None: those sent since
        the drop, as a client that does not say. More than were sent: ``ValueError`` (a
        server answers 400), nothing changed. Frames after it no longer kept: the peer has
        left and this client joined afresh (a new :attr:`peer_id`)."""
        self.harness._resume(self, credentials, metadata, received)

    def events(self) -> list[str]:
        """The events received so far, in order (a short way to assert on them)."""
        return [message.event for message in self.received]

    def __repr__(self) -> str:
        return f"TestPeer({self.peer_id!r}, received={len(self.received)})"


class RoomHarness:
    """One running ``Room`` and the simulated clients in it.

    It drives the server's own core of membership and sessions
    (:class:`~membrane_rtc.members.Members`): only the sockets, the actors and the clock are
    simulated. ``max_peers`` is the server's ``--max-peers-per-room`` (0: none, the harness's
    default); ``resume_grace`` and ``resume_queue_bytes`` its ``--resume-grace`` and
    ``--resume-queue-bytes``.
    A ``Room`` callback that raises crashes the room as on a server: every client is told
    ``"Room closed"`` (details ``room_crashed``, or the exception's text with
    ``expose_errors``, as ``--expose-errors``), every ``Peer.on_terminate`` and the room's
    ``on_terminate`` run, and the call that caused it raises the callback's exception.
    The classes' ``check_options`` run first, as on a server (ValueError).
    """

    def __init__(self, room_class: type[Room], options: Any = None, *,
                 peer_class: type[Peer] = Peer, peer_options: Any = None, name: str = "test",
                 max_peers: int = 0, expose_errors: bool = False,
                 resume_grace: float = DEFAULT_RESUME_GRACE,
                 resume_queue_bytes: int = DEFAULT_RESUME_QUEUE_BYTES) -> None:
        # As a server does before it starts: options a class refuses raise ValueError here.
        room_class.check_options(options)
        peer_class.check_options(peer_options)
        self.name = name
        self.sessions = SessionSettings(resume_grace=resume_grace,
                                        resume_queue_bytes=resume_queue_bytes)
        self.expose_errors = expose_errors
        self.peer_class = peer_class
        self.peer_options = peer_options
        self.room = room_class()
        self.state: RoomState[Member[TestPeer]] = RoomState(self.room, name, max_peers)
        #: The members and their sessions: the server's own rules.
        self.members: Members[TestPeer] = Members(self.state, self.sessions, lambda: self.now)
        self.peers: dict[str, TestPeer] = {}
        self.terminated = False
        #: Why the room went down, if a callback crashed it.
        self.crash: RoomCallbackError | None = None
        #: The harness's clock (seconds), moved only by :meth:`advance`.
        self.now = 0.0
        self._timers: list[tuple[float, int]] = []  # (when, timer id), a heap
        self._graces: list[tuple[float, int, str]] = []  # (when, absence, peer id), a heap
        self._apply(self.members.start(options))

    def __iter__(self) -> Iterator[TestPeer]:
        return iter(list(self.peers.values()))

    # -- what clients do ---------------------------------------------------------------------

    def join(self, credentials: dict[str, str] | None = None, metadata: Any = None,
             peer_id: str | None = None) -> TestPeer:
        """A client connects: ``Peer.on_init`` (raising :class:`PeerRefused`), then
        ``Room.on_join``. Refused by the room, the client got ``"Could not join room"`` and
        :class:`~membrane_rtc.JoinRefused` is raised."""
        self._check_running()
        auth = AuthData(peer_id or str(uuid.uuid4()), dict(credentials or {}), metadata)
        client = TestPeer(self, auth.peer_id, None, auth.credentials, auth.metadata)
        outcome = self.members.join(client, auth, self.peer_class, self.peer_options)
        self._apply(outcome)
        if outcome.refusal is not None:
            raise outcome.refusal
        self.peers[auth.peer_id] = client
        return client

    def forward(self, message: Message) -> str:
        """Forward a message as the server's ``forward_message`` does: ``ok`` or
        ``no_such_peer``."""
        self._check_running()
        outcome = self.members.forward(message)
        self._apply(outcome)
        return outcome.status

    def _from_client(self, client: TestPeer, message: Message) -> None:
        if client.closed:
            raise RuntimeError(f"peer {client.peer_id} is not connected")
        self._apply(self.members.receive(client.peer_id, message))

    def _leave(self, client: TestPeer) -> None:
        if not client.closed:
            self._apply(self.members.leave(client.peer_id))

    def _drop(self, client: TestPeer) -> None:
        if client.closed or client.away:
            raise RuntimeError(f"peer {client.peer_id} is not connected")
        self._apply(self.members.disconnected(client.peer_id, client, resumable=True))

    def _resume(self, client: TestPeer, credentials: dict[str, str] | None,
                metadata: Any, received: int | None) -> None:
        if not client.away or client.closed or client._token is None:
            raise RuntimeError(f"peer {client.peer_id} has not dropped (or has left)")
        # As a gateway does: a fresh peer id, which a resume replaces with the member's.
        auth = AuthData(str(uuid.uuid4()),
                        dict(client.credentials if credentials is None else credentials),
                        client.metadata if metadata is None else metadata)
        outcome = self.members.resume(client._token, client, auth, self.peer_class,
                                      self.peer_options, received)
        assert outcome is not None, "an away client's token is good"
        fresh = next((effect for effect in outcome.effects
                      if isinstance(effect, Accept) and not effect.resumed), None)
        self._apply(outcome)  # refused: PeerRefused (or ValueError), and nothing changed
        client.credentials, client.metadata = auth.credentials, auth.metadata
        if fresh is not None:  # too late to resume: it was admitted afresh
            if outcome.refusal is not None:
                raise outcome.refusal
            client.peer_id, client.closed = fresh.peer_id, False
            self.peers[fresh.peer_id] = client

    def kick(self, peer_id: str) -> None:
        """An operator kicks a peer (``membrane-rtc admin kick``)."""
        client = self.peers[peer_id]
        if self.terminated:
            client.closed = True
            return
        self._apply(self.members.kick(peer_id) or Outcome())

    def advance(self, seconds: float) -> None:
        """Move the clock: the room's timers (``Room.call_later``) that fall due fire, and
        dropped peers whose grace is over leave, in order, each at its time."""
        until = self.now + seconds
        while not self.terminated:
            timer_at = self._timers[0][0] if self._timers else None
            grace_at = self._graces[0][0] if self._graces else None
            if grace_at is not None and grace_at <= until and \
                    (timer_at is None or grace_at <= timer_at):
                self.now, absence, peer_id = heapq.heappop(self._graces)
                self._apply(self.members.grace_over(peer_id, absence))
            elif timer_at is not None and timer_at <= until:
                self.now, timer_id = heapq.heappop(self._timers)
                self._apply(self.members.fire(timer_id))
            else:
                break
        self.now = until

    def terminate(self) -> None:
        """Stop the room: every ``Peer.on_terminate``, then ``on_terminate``."""
        if self.terminated:
            return
        self.terminated = True
        for client in self:
            client.closed = True
        error = self.members.terminate()
        if error is not None:
            raise error

    # -- the server's part: the gateway and the actor, simulated -----------------------------

    def _apply(self, outcome: Outcome[TestPeer]) -> None:
        """Carry out what the core decided, as the room actor and the gateway would; a
        refusal raises :class:`PeerRefused`, a crash the callback's own exception."""
        accepted: list[TestPeer] = []
        refused: Refuse[TestPeer] | None = None
        for effect in outcome.effects:
            if isinstance(effect, Frame):
                self._receive(effect.conn, protocol.decode_server_frame(effect.frame))
            elif isinstance(effect, Accept):
                accepted.append(effect.conn)
                member = self.members.members.get(effect.peer_id)
                if member is not None and member.conn is effect.conn:
                    effect.conn._peer, effect.conn.away = member.peer_state, False
            elif isinstance(effect, (Close, Left)):
                effect.conn.closed, effect.conn.away = True, False
                if self.peers.get(effect.conn.peer_id) is effect.conn:
                    del self.peers[effect.conn.peer_id]
            elif isinstance(effect, Grace):
                self.members.members[effect.peer_id].conn.away = True
                heapq.heappush(self._graces,
                               (self.now + effect.delay, effect.absence, effect.peer_id))
            elif isinstance(effect, Refuse):
                refused = effect
        if outcome.crash is not None:
            self._crashed(outcome.crash, accepted)
            raise outcome.crash.error from outcome.crash
        for timer_id, delay in self.state.take_timers():
            heapq.heappush(self._timers, (self.now + delay, timer_id))
        if refused is not None:
            error = refused.error or RuntimeError(refused.reason)
            if refused.status == 401:
                raise PeerRefused(error) from error
            if refused.status == 400:
                raise ValueError(refused.reason)
            raise error

    @staticmethod
    def _receive(client: TestPeer, message: Message) -> None:
        """What the client reads: the frame the server would write, decoded."""
        client.received.append(message)
        first = message.event == "authenticated" and isinstance(message.data, dict) \
            and message.from_ is None
        client.counted = protocol.received_after(client.counted, message, first)
        if first:
            client._token = message.data.get("resume_token")

    def _crashed(self, exc: RoomCallbackError, accepted: list[TestPeer]) -> None:
        """As a server: the gateway tells every connected client "Room closed" (one that was
        just upgraded too), and the room ends its peers, then itself."""
        self.crash = exc
        members = [member.conn for member in self.members.members.values()]
        connected = [m.conn for m in self.members.members.values() if m.away is None]
        told = connected + [client for client in accepted if client not in connected]
        details = exc.reason if self.expose_errors else CRASH_DETAILS
        for client in told:
            self._receive(client, protocol.decode_server_frame(protocol.encode(
                protocol.error(protocol.ROOM_CLOSED, details, to=client.peer_id))))
        self.terminated = True
        for client in members + told:
            client.closed = True
        self.members.terminate()  # a room that crashed may fail to clean up too; logged

    def _check_running(self) -> None:
        if self.terminated:
            raise RuntimeError(f"room {self.name!r} is not running"
                               + (f" (it crashed: {self.crash.reason})" if self.crash else ""))
