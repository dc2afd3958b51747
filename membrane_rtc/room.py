"""The ``Room`` behaviour: subclass it and override the callbacks you need.

One instance runs per room, inside the room's actor; keep the room's state on ``self``. Every
callback is optional and the defaults make a room that lets everyone in and forwards everything,
as Membrane's ``webrtc-server`` does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

from .protocol import Message
from .redact import redacting

__all__ = ["Room", "AuthData", "JoinRefused"]


@dataclass(frozen=True)
class AuthData:
    """Who is connecting: the fresh ``peer_id``, what ``Peer.parse_request`` extracted
    (``credentials``, ``metadata``: private to the server), and what its ``Peer.on_init``
    established: ``identity`` (e.g. a token's subject) and ``public_metadata`` (room-mates see
    it in ``joined``)."""

    peer_id: str
    credentials: dict[str, str] = field(default_factory=dict)
    metadata: Any = None
    public_metadata: dict[str, Any] | None = None
    identity: str | None = None

    #: Logs show the credentials' names and no value, and no metadata (headers: Cookie...).
    __repr__ = redacting("credentials", "metadata")


class JoinRefused(Exception):
    """Raise from :meth:`Room.on_join` to keep a peer out; ``reason`` goes to the client."""

    def __init__(self, reason: Any = "refused") -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RoomOutbox:
    """What a room asked the framework for during its callbacks and the framework has not
    taken yet: messages :meth:`Room.send` queued, timers :meth:`Room.call_later` set (id,
    delay, callback) and ids :meth:`Room.cancel_timer` cancelled. The one seam between a
    user's ``Room`` and :class:`~membrane_rtc.room_state.RoomState`, reached by
    ``Room._outbox()``."""

    sent: list[Message] = field(default_factory=list)
    timers: list[tuple[int, float, Callable[[], None]]] = field(default_factory=list)
    cancelled: set[int] = field(default_factory=set)

    def take_sent(self) -> list[Message]:
        """The messages sent since last taken (the room may send more while they are routed)."""
        sent, self.sent = self.sent, []
        return sent

    def take_timers(self) -> list[tuple[int, float, Callable[[], None]]]:
        """The timers set since last taken, for the framework to arm."""
        timers, self.timers = self.timers, []
        return timers


class Room:
    """A room of peers exchanging signaling messages. Override any callback; all are optional.

    An exception other than :class:`JoinRefused` raised by a callback crashes the room: its
    peers are told ``"Room closed"`` and the supervisor starts a fresh instance.
    """

    #: The room's name, set by the framework before :meth:`on_init` runs.
    name: str = ""
    #: What the callbacks asked for (:meth:`_outbox`), made on first use.
    _room_outbox: RoomOutbox

    def _outbox(self) -> RoomOutbox:
        """What this room asked the framework for and it has not taken yet; made on first use,
        so a subclass need not call ``super().__init__()``. For the framework, not for room
        authors: :meth:`send`, :meth:`call_later` and :meth:`cancel_timer` fill it."""
        try:
            return self._room_outbox
        except AttributeError:
            self._room_outbox = RoomOutbox()
            return self._room_outbox

    def send(self, message: Message) -> None:
        """Send a message of the room's own (``from`` is ``None``) to ``message.to``.

        It is routed after the current callback returns, through :meth:`on_forward` like every
        message, with the usual ``to`` rules. From :meth:`on_join`, that is after the joining
        peer's ``authenticated``: the way to greet it.
        """
        message.from_ = None
        self._outbox().sent.append(message)

    def call_later(self, delay: float, callback: Callable[[], None]) -> int:
        """Call ``callback()`` in about ``delay`` seconds, as a callback of this room: what it
        sends goes out after it, and if it raises, the room crashes. Returns the timer's id
        for :meth:`cancel_timer`. Timers end with the room (a restart starts without them).
        """
        timer_id = next(_timer_ids)
        self._outbox().timers.append((timer_id, float(delay), callback))
        return timer_id

    def cancel_timer(self, timer_id: int) -> None:
        """Forget a timer that has not fired yet (nothing happens for one that has)."""
        self._outbox().cancelled.add(timer_id)

    @classmethod
    def check_options(cls, options: Any) -> None:
        """Check the options rooms of this class will get, once, before the server starts
        (and before ``admin create`` makes one): raise ValueError saying what is wrong, and
        the server does not start (``membrane-rtc serve``: one line, exit status 2).

        It runs where the server starts, not in the room's actor: check what the options
        say, not the world. Default: any options are fine.
        """

    def on_init(self, options: Any) -> None:
        """The room starts; ``options`` are the room's custom options (``None`` if not given)."""

    def on_join(self, auth: AuthData) -> None:
        """A peer is about to join; raise :class:`JoinRefused` to refuse it. Default: accept."""

    def on_leave(self, peer_id: str) -> None:
        """A peer has left (closed its socket, timed out, crashed, was kicked, or dropped and
        did not resume in time)."""

    def on_disconnect(self, peer_id: str) -> None:
        """A peer's connection dropped; it stays a member while its client may resume (the
        server's resume grace). Messages to it are kept for it meanwhile. Either
        :meth:`on_resume` or :meth:`on_leave` follows."""

    def on_resume(self, peer_id: str) -> None:
        """A peer that had dropped is back, same id; it has been sent what it missed."""

    def on_forward(self, message: Message) -> Message | None:
        """Every message the room forwards passes here, its own ``joined``/``left`` included.

        Return the message (changed or not) to forward it, or ``None`` to drop it.
        """
        return message

    def on_terminate(self) -> None:
        """The room is shutting down (stopped, crashed or server exit): clean up."""


#: Timer ids, unique in the process (each room's timers are its own anyway).
_timer_ids = itertools.count(1)
