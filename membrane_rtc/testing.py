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
from .config import DEFAULT_RESUME_GRACE
from .peer import Peer, PeerContext
from .peer_state import PeerCallbackError, PeerState
from .protocol import Addressees, Message
from .room import AuthData, JoinRefused, Room
from .room_state import Delivery, RoomCallbackError, RoomState
from .sessions import ResumeTokens, SessionSettings
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

    def __init__(self, harness: RoomHarness, peer_id: str, peer: PeerState,
                 credentials: dict[str, str] | None = None, metadata: Any = None) -> None:
        self.harness = harness
        self.peer_id = peer_id
        #: Its ``Peer`` (a new one after each resume, as on a server).
        self.peer = peer
        #: What the client sends when it connects, as a real client resends them on a resume
        #: (its query and headers): the credentials and metadata it last connected with.
        self.credentials: dict[str, str] = dict(credentials or {})
        self.metadata = metadata
        #: Every message this client would have been sent, as decoded from the wire.
        self.received: list[Message] = []
        #: The connection was closed (left, kicked, its Peer raised, its room went down).
        self.closed = False
        #: Its connection dropped (:meth:`drop`) and it has not resumed yet.
        self.away = False
        self._missed: list[Message] = []

    def send(self, event: str, data: Any = None, to: Addressees = None) -> None:
        """Send a message as this client would (``from`` is set to its peer id)."""
        self.harness._from_client(self, Message(event, data, self.peer_id, to))

    def leave(self) -> None:
        """Close this client's connection: ``Peer.on_terminate``, ``on_leave``, ``left``."""
        self.harness._leave(self)

    def drop(self) -> None:
        """This client's network drops: ``Room.on_disconnect``; it stays a member, what is
        sent to it waits, and it leaves if it has not resumed when the grace is over
        (:meth:`RoomHarness.advance`). With ``resume_grace=0`` it leaves at once."""
        self.harness._drop(self)

    def resume(self, credentials: dict[str, str] | None = None, metadata: Any = None) -> None:
        """The client comes back with its token and its credentials (by default the ones it
        last connected with): a new instance of its ``Peer`` runs ``on_init`` with them.
        Refused (or another identity): :class:`PeerRefused`, and the client stays away, its
        grace going on. Accepted: the old ``Peer``'s ``on_terminate``, ``authenticated``
        (resumed), what it missed, then ``Room.on_resume``."""
        self.harness._resume(self, credentials, metadata)

    def events(self) -> list[str]:
        """The events received so far, in order (a short way to assert on them)."""
        return [message.event for message in self.received]

    def __repr__(self) -> str:
        return f"TestPeer({self.peer_id!r}, received={len(self.received)})"


class RoomHarness:
    """One running ``Room`` and the simulated clients in it.

    ``max_peers`` is the server's ``--max-peers-per-room`` (0: none, the harness's default).
    A ``Room`` callback that raises crashes the room as on a server: every client is told
    ``"Room closed"`` (details ``room_crashed``, or the exception's text with
    ``expose_errors``, as ``--expose-errors``), every ``Peer.on_terminate`` and the room's
    ``on_terminate`` run, and the call that caused it raises the callback's exception.
    The classes' ``check_options`` run first, as on a server (ValueError).
    """

    def __init__(self, room_class: type[Room], options: Any = None, *,
                 peer_class: type[Peer] = Peer, peer_options: Any = None, name: str = "test",
                 max_peers: int = 0, expose_errors: bool = False,
                 resume_grace: float = DEFAULT_RESUME_GRACE) -> None:
        # As a server does before it starts: options a class refuses raise ValueError here.
        room_class.check_options(options)
        peer_class.check_options(peer_options)
        self.name = name
        self.sessions = SessionSettings(resume_grace=resume_grace)
        self.tokens = ResumeTokens()
        #: When each away peer's grace ends, by peer id.
        self._graces: dict[str, float] = {}
        self.expose_errors = expose_errors
        self.peer_class = peer_class
        self.peer_options = peer_options
        self.room = room_class()
        self.state: RoomState[TestPeer] = RoomState(self.room, name, max_peers)
        self.peers: dict[str, TestPeer] = {}
        self.terminated = False
        #: Why the room went down, if a callback crashed it.
        self.crash: RoomCallbackError | None = None
        #: The harness's clock (seconds), moved only by :meth:`advance`.
        self.now = 0.0
        self._timers: list[tuple[float, int]] = []  # (when, timer id), a heap
        self._run(lambda: self.state.start(options))

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
        peer = PeerState(self.peer_class(), PeerContext(auth.peer_id, self.name))
        try:
            peer.init(auth, self.peer_options)
        except PeerCallbackError as exc:
            raise PeerRefused(exc.error) from exc.error
        auth = peer.admitted(auth)
        client = TestPeer(self, auth.peer_id, peer, auth.credentials, auth.metadata)
        welcome = self._welcome(client, resumed=False)
        try:
            self._run(lambda: self.state.join(auth, client, welcome), joining=client)
        except JoinRefused as refusal:
            self._receive(client, protocol.error(protocol.COULD_NOT_JOIN_ROOM, refusal.reason,
                                                 to=auth.peer_id))
            client.closed = True
            self.tokens.forget(auth.peer_id)
            self._end_peer(client)
            raise
        self.peers[auth.peer_id] = client
        return client

    def forward(self, message: Message) -> str:
        """Forward a message as the server's ``forward_message`` does: ``ok`` or
        ``no_such_peer``."""
        self._check_running()
        result = self._run(lambda: self.state.forward(message), result=True)
        return str(result.status)

    def _from_client(self, client: TestPeer, message: Message) -> None:
        if client.closed:
            raise RuntimeError(f"peer {client.peer_id} is not connected")
        try:
            outgoing = client.peer.receive(message)
        except PeerCallbackError:
            self._close(client)  # a server closes it with 1011; its room goes on
            return
        if outgoing is not None:
            self._run(lambda: self.state.forward(outgoing), result=True)

    def _leave(self, client: TestPeer) -> None:
        if client.closed:
            return
        self._close(client)

    def _welcome(self, client: TestPeer, resumed: bool) -> dict[str, Any]:
        """The server's own fields of ``authenticated`` (no ICE servers in a harness)."""
        return self.sessions.welcome(self.tokens, client.peer_id, resumed,
                                     client.peer.public_metadata, self.now)

    def _drop(self, client: TestPeer) -> None:
        if client.closed or client.away:
            raise RuntimeError(f"peer {client.peer_id} is not connected")
        if not self.sessions.resumable:
            self._close(client)
            return
        client.away = True
        self._graces[client.peer_id] = self.now + self.sessions.resume_grace
        self._run(lambda: self.state.disconnect(client.peer_id))

    def _resume(self, client: TestPeer, credentials: dict[str, str] | None,
                metadata: Any) -> None:
        if not client.away or client.closed:
            raise RuntimeError(f"peer {client.peer_id} has not dropped (or has left)")
        auth = AuthData(client.peer_id,
                        dict(client.credentials if credentials is None else credentials),
                        client.metadata if metadata is None else metadata)
        peer = PeerState(self.peer_class(), PeerContext(client.peer_id, self.name))
        try:
            peer.init_resuming(client.peer, auth, self.peer_options)
        except PeerCallbackError as exc:
            self._end(peer)  # on_terminate, if its on_init had accepted
            raise PeerRefused(exc.error) from exc.error
        self._end(client.peer)
        client.peer, client.credentials, client.metadata = peer, auth.credentials, auth.metadata
        client.away = False
        del self._graces[client.peer_id]
        self._receive(client, protocol.authenticated(client.peer_id,
                                                     **self._welcome(client, resumed=True)))
        client.received += client._missed
        client._missed = []
        self._run(lambda: self.state.resume(client.peer_id, client))

    def _close(self, client: TestPeer) -> None:
        client.closed = True
        client.away = False
        self._graces.pop(client.peer_id, None)
        self.tokens.forget(client.peer_id)
        self.peers.pop(client.peer_id, None)
        self._end_peer(client)
        if not self.terminated:
            self._run(lambda: self.state.leave(client.peer_id))

    def kick(self, peer_id: str) -> None:
        """An operator kicks a peer (``membrane-rtc admin kick``)."""
        self._close(self.peers[peer_id])

    def advance(self, seconds: float) -> None:
        """Move the clock: the room's timers (``Room.call_later``) that fall due fire, and
        dropped peers whose grace is over leave, in order, each at its time."""
        until = self.now + seconds
        while not self.terminated:
            timer_at = self._timers[0][0] if self._timers else None
            grace = min(self._graces.items(), key=lambda item: item[1], default=None)
            if grace is not None and grace[1] <= until and \
                    (timer_at is None or grace[1] <= timer_at):
                self.now = grace[1]
                self._close(self.peers[grace[0]])
            elif timer_at is not None and timer_at <= until:
                self.now, timer_id = heapq.heappop(self._timers)
                self._run(lambda: self.state.fire(timer_id))
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
            self._end_peer(client)
        self.state.terminate()

    # -- the server's part -------------------------------------------------------------------

    def _run(self, step: Any, joining: TestPeer | None = None, result: bool = False) -> Any:
        """Run a step of the rules; ship what it delivers; a callback that raised crashes
        the room and its exception comes out of the harness."""
        try:
            outcome = step()
        except RoomCallbackError as exc:
            self._crashed(exc, joining)
            raise exc.error from exc
        self._ship(outcome.deliveries if result else outcome)
        for timer_id, delay in self.state.take_timers():
            heapq.heappush(self._timers, (self.now + delay, timer_id))
        return outcome

    def _ship(self, deliveries: list[Delivery[TestPeer]]) -> None:
        for delivery in deliveries:
            for client in delivery.recipients:
                self._receive(client, delivery.message)

    @staticmethod
    def _receive(client: TestPeer, message: Message) -> None:
        """What the client reads: the frame the server would write, decoded (kept for it
        while it is away; a harness does not bound that, a server does)."""
        frame = protocol.decode_server_frame(protocol.encode(message))
        (client._missed if client.away else client.received).append(frame)

    def _crashed(self, exc: RoomCallbackError, joining: TestPeer | None) -> None:
        self.crash = exc
        told = list(self.state.members.values())
        if joining is not None and joining not in told:  # upgraded, then told the room closed
            told.append(joining)
        details = exc.reason if self.expose_errors else CRASH_DETAILS
        for client in told:
            self._receive(client, protocol.error(protocol.ROOM_CLOSED, details,
                                                 to=client.peer_id))
        self.terminated = True
        for client in told:
            client.closed = True
            self._end_peer(client)
        try:
            self.state.terminate()
        except RoomCallbackError:
            pass  # a room that crashed may fail to clean up too; the first crash is the news

    @classmethod
    def _end_peer(cls, client: TestPeer) -> None:
        cls._end(client.peer)

    @staticmethod
    def _end(peer: PeerState) -> None:
        try:
            peer.terminate()
        except PeerCallbackError:
            pass  # a server logs it and goes on

    def _check_running(self) -> None:
        if self.terminated:
            raise RuntimeError(f"room {self.name!r} is not running"
                               + (f" (it crashed: {self.crash.reason})" if self.crash else ""))
