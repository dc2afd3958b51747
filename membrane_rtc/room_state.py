"""A room's rules as plain state: membership, the ``to`` rules, join/leave broadcasts.

No actors and no sockets here (like the sans-I/O core of ``websockets``): the room actor is a
thin adapter that feeds events in and ships the returned deliveries out, so one core serves
every Thespian base and the rules are tested without an actor system.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Literal, TypeVar

from . import protocol
from .protocol import ALL, Message
from .room import AuthData, JoinRefused, Room

__all__ = ["RoomState", "Delivery", "ForwardResult", "RoomCallbackError"]

#: Whatever the adapter uses to reach a peer (an actor address, a test list, ...).
Endpoint = TypeVar("Endpoint")
#: Runs a callback under a time limit: ``limit(callback_name, seconds)`` (the runtime's
#: watchdog); a callback that runs too long is interrupted and the ``with`` raises TimeoutError.
TimeLimit = Callable[[str, float], AbstractContextManager[Any]]
#: The refusal of a peer that would pass the room's peer limit (Membrane's capped example's).
ROOM_IS_FULL = "room_is_full"
#: Rounds of ``Room.send`` from ``on_forward`` handled for one event before it is a crash.
MAX_ROOM_SENDS = 100


def no_time_limit(callback: str, seconds: float) -> AbstractContextManager[Any]:
    """The default TimeLimit: none."""
    return nullcontext()


class RoomCallbackError(Exception):
    """A user ``Room`` callback raised: the room must crash. ``reason`` is for the peers."""

    def __init__(self, callback: str, error: BaseException) -> None:
        self.callback = callback
        self.error = error
        self.reason = f"{callback} raised {type(error).__name__}: {error}"
        super().__init__(self.reason)


@dataclass
class Delivery(Generic[Endpoint]):
    """One message for some peers: encode it once, send it to each recipient."""

    message: Message
    recipients: list[Endpoint]


@dataclass
class ForwardResult(Generic[Endpoint]):
    """What forwarding a message did: ``ok``, or ``no_such_peer`` with the ids not in the room."""

    status: Literal["ok", "no_such_peer"]
    deliveries: list[Delivery[Endpoint]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class RoomState(Generic[Endpoint]):
    """Runs one user ``Room`` and keeps its members (``peer_id -> endpoint``).

    ``max_peers`` (0: no limit) refuses a join past it before ``on_join`` is asked;
    ``callback_timeout`` (0: none) bounds every callback through ``time_limit``.
    """

    def __init__(self, room: Room, name: str, max_peers: int = 0,
                 callback_timeout: float = 0, time_limit: TimeLimit = no_time_limit) -> None:
        self.room = room
        self.room.name = name
        self.members: dict[str, Endpoint] = {}
        self.max_peers = max_peers
        self.callback_timeout = callback_timeout
        self.time_limit = time_limit
        self._timers: dict[int, Callable[[], None]] = {}
        self._labels: dict[str, str] = {}  # callback name -> what the time limit calls it
        #: A Room that keeps the default ``on_forward`` forwards unchanged and cannot have sent
        #: anything from it: skip the call, its time limit and the look at its outbox.
        self._forwards_all = type(room).on_forward is Room.on_forward

    def _call(self, callback: str, *args: Any) -> Any:
        """Run a user callback; any exception becomes a RoomCallbackError (JoinRefused aside)."""
        return self._run(callback, getattr(self.room, callback), *args)

    def _run(self, name: str, function: Callable[..., Any], *args: Any) -> Any:
        label = self._labels.get(name)
        if label is None:  # formatted once per callback: on_forward runs for every message
            label = self._labels[name] = f"room {self.room.name!r} {name}"
        try:
            with self.time_limit(label, self.callback_timeout):
                return function(*args)
        except JoinRefused:
            raise
        except Exception as exc:
            raise RoomCallbackError(name, exc) from exc

    def _sent_by_room(self) -> list[Delivery[Endpoint]]:
        """Route what the room's callbacks queued with ``Room.send`` (which may queue more;
        bounded so that a room that sends from ``on_forward`` forever crashes instead)."""
        deliveries: list[Delivery[Endpoint]] = []
        for _ in range(MAX_ROOM_SENDS):
            sent = self.room._outbox().take_sent()
            if not sent:
                return deliveries
            for message in sent:
                deliveries += self.forward(message, from_room=True).deliveries
        raise RoomCallbackError("send", RuntimeError(
            f"more than {MAX_ROOM_SENDS} rounds of messages sent from on_forward"))

    def take_timers(self) -> list[tuple[int, float]]:
        """Timers the room's callbacks set since last asked: ``(timer id, delay)`` for the
        adapter to arm; it calls :meth:`fire` with the id when the delay is over."""
        timers = self.room._outbox().take_timers()
        for timer_id, _, callback in timers:
            self._timers[timer_id] = callback
        return [(timer_id, delay) for timer_id, delay, _ in timers]

    def fire(self, timer_id: int) -> list[Delivery[Endpoint]]:
        """A timer's delay is over: run its callback (unless cancelled), then route what it
        sent. A callback that raises is a RoomCallbackError, as for any room callback."""
        callback = self._timers.pop(timer_id, None)
        cancelled = self.room._outbox().cancelled
        if callback is None or timer_id in cancelled:
            cancelled.discard(timer_id)
            return []
        self._run(f"timer {getattr(callback, '__name__', '')}".rstrip(), callback)
        return self._sent_by_room()

    def start(self, options: Any) -> list[Delivery[Endpoint]]:
        """Run ``on_init`` with the room's custom options."""
        self._call("on_init", options)
        return self._sent_by_room()

    def terminate(self) -> None:
        """Run ``on_terminate``."""
        self._call("on_terminate")

    def join(self, auth: AuthData, endpoint: Endpoint,
             welcome: dict[str, Any] | None = None) -> list[Delivery[Endpoint]]:
        """Admit a peer: ``authenticated`` (with ``welcome``'s extra fields) to it, ``joined``
        (with its public metadata) to the others.

        Raises :class:`JoinRefused` when ``on_join`` refuses; nothing changes then.
        """
        peer_id = auth.peer_id
        if self.max_peers and len(self.members) >= self.max_peers:
            raise JoinRefused(ROOM_IS_FULL)
        try:
            self._call("on_join", auth)
        except JoinRefused:
            self.room._outbox().take_sent()  # what it sent is refused with it
            raise
        self.members[peer_id] = endpoint
        deliveries = [Delivery(protocol.authenticated(peer_id, **(welcome or {})), [endpoint])]
        deliveries += self.forward(protocol.joined(peer_id, auth.public_metadata),
                                   from_room=True).deliveries
        return deliveries + self._sent_by_room()

    def disconnect(self, peer_id: str) -> list[Delivery[Endpoint]]:
        """A member's connection dropped and it may resume: it stays, ``on_disconnect`` runs
        (the adapter keeps its frames meanwhile)."""
        if peer_id not in self.members:
            return []
        self._call("on_disconnect", peer_id)
        return self._sent_by_room()

    def resume(self, peer_id: str, endpoint: Endpoint) -> list[Delivery[Endpoint]]:
        """A member that had dropped is back at ``endpoint``: ``on_resume``. The adapter has
        sent it ``authenticated`` and what it missed before what this returns."""
        self.members[peer_id] = endpoint
        self._call("on_resume", peer_id)
        return self._sent_by_room()

    def leave(self, peer_id: str) -> list[Delivery[Endpoint]]:
        """A member is gone: ``on_leave``, then ``left`` to everyone left. Idempotent."""
        if peer_id not in self.members:
            return []
        del self.members[peer_id]
        self._call("on_leave", peer_id)
        return self.forward(protocol.left(peer_id), from_room=True).deliveries + \
            self._sent_by_room()

    def forward(self, message: Message, from_room: bool = False) -> ForwardResult[Endpoint]:
        """Route a message through ``on_forward`` to its addressees.

        ``"all"``: every member but the sender. A list: every addressee, or nobody if any is
        not a member (then the sender, if a member, gets a ``"No such peer"`` error).
        ``None``: nobody (the room alone sees it in ``on_forward``).
        """
        if self._forwards_all:
            return self._route(message)
        routed = self._call("on_forward", message)
        if not from_room:  # what on_forward sent goes after the message it was called for
            result = self._route(routed)
            result.deliveries += self._sent_by_room()
            return result
        return self._route(routed)

    def _route(self, routed: Any) -> ForwardResult[Endpoint]:
        if routed is None:
            return ForwardResult("ok")
        if not isinstance(routed, Message):
            raise RoomCallbackError(
                "on_forward", TypeError(f"returned {type(routed).__name__}, not Message or None"))
        to = routed.to
        if to == ALL:
            recipients = [ep for pid, ep in self.members.items() if pid != routed.from_]
        elif to is None:
            recipients = []
        else:
            missing = [pid for pid in to if pid not in self.members]
            if missing:
                result: ForwardResult[Endpoint] = ForwardResult("no_such_peer", missing=missing)
                sender = self.members.get(routed.from_) if routed.from_ is not None else None
                if sender is not None:
                    notice = protocol.error(protocol.NO_SUCH_PEER, missing, to=routed.from_)
                    result.deliveries.append(Delivery(notice, [sender]))
                return result
            recipients = [self.members[pid] for pid in to]
        if not recipients:
            return ForwardResult("ok")
        return ForwardResult("ok", [Delivery(routed, recipients)])
