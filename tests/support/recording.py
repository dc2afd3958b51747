"""Rooms and peers that record every callback, for tests that run the server in-process.

The record is shared with the test through a condition variable (the actors run on another
thread in some setups): tests wait for what they expect, with a timeout. Async tests wait with
:meth:`Recorder.until`, which leaves the event loop running - in the embedded mode the actors
run on that very loop, so a test blocking it would wait for callbacks that cannot run.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from membrane_rtc import AuthData, JoinRefused, Message, Peer, PeerContext, Room


class Recorder:
    """A thread-safe list of ``(callback, *args)`` tuples with a bounded wait."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._changed = threading.Condition()

    def add(self, *call: Any) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def names(self, room_or_peer: str | None = None) -> list[str]:
        with self._changed:
            return [c[1] for c in self.calls if room_or_peer is None or c[0] == room_or_peer]

    def wait_for(self, predicate: Callable[[list[tuple[Any, ...]]], bool],
                 timeout: float = 5.0) -> list[tuple[Any, ...]]:
        """Block this thread until ``predicate(calls)`` holds (AssertionError after
        ``timeout``); from an async test use :meth:`until`."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.calls), timeout):
                raise AssertionError(f"timed out; calls so far: {self.calls}")
            return list(self.calls)

    async def until(self, predicate: Callable[[list[tuple[Any, ...]]], bool],
                    timeout: float = 5.0) -> list[tuple[Any, ...]]:
        """:meth:`wait_for` from async code: the wait blocks a worker thread, not the event
        loop, so the server on this loop goes on meanwhile (its sockets, its answers)."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def clear(self) -> None:
        with self._changed:
            self.calls.clear()


RECORD = Recorder()


class RecordingRoom(Room):
    """Records every callback as ``("room:<name>", callback, args...)``.

    Options: ``{"refuse": reason}`` refuses every join; ``{"crash_on": event}`` raises in
    ``on_forward`` for that event; ``{"drop": event}`` drops it; ``{"tag": event}`` adds
    ``"tagged": true`` to its data.
    """

    def on_init(self, options: Any) -> None:
        self.options = options or {}
        RECORD.add(f"room:{self.name}", "on_init", options)

    def on_join(self, auth: AuthData) -> None:
        RECORD.add(f"room:{self.name}", "on_join", auth)
        if "refuse" in self.options:
            raise JoinRefused(self.options["refuse"])

    def on_leave(self, peer_id: str) -> None:
        RECORD.add(f"room:{self.name}", "on_leave", peer_id)

    def on_disconnect(self, peer_id: str) -> None:
        RECORD.add(f"room:{self.name}", "on_disconnect", peer_id)

    def on_resume(self, peer_id: str) -> None:
        RECORD.add(f"room:{self.name}", "on_resume", peer_id)

    def on_forward(self, message: Message) -> Message | None:
        RECORD.add(f"room:{self.name}", "on_forward", message)
        if message.event == self.options.get("crash_on"):
            raise RuntimeError("asked to crash")
        if message.event == self.options.get("drop"):
            return None
        if message.event == self.options.get("tag"):
            return Message(message.event, {**message.data, "tagged": True}, message.from_,
                           message.to)
        return message

    def on_terminate(self) -> None:
        RECORD.add(f"room:{self.name}", "on_terminate")


class RecordingPeer(Peer):
    """Records every callback as ``("peer", callback, args...)``.

    Credentials: ``?refuse=1`` makes ``on_init`` raise; ``?idle=S`` sets the idle timeout.
    Messages with event ``"secret"`` are dropped, ``"crash"`` makes ``on_receive`` raise.
    """

    def on_init(self, context: PeerContext, auth: AuthData, options: Any) -> None:
        RECORD.add("peer", "on_init", context, auth, options)
        if auth.credentials.get("refuse"):
            raise PermissionError("refused by test")
        if "idle" in auth.credentials:
            self.idle_timeout = float(auth.credentials["idle"])

    def on_receive(self, message: Message, context: PeerContext) -> Message | None:
        RECORD.add("peer", "on_receive", message, context)
        if message.event == "secret":
            return None
        if message.event == "crash":
            raise RuntimeError("peer asked to crash")
        return message

    def on_terminate(self, context: PeerContext) -> None:
        RECORD.add("peer", "on_terminate", context)
