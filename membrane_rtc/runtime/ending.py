"""How a server learns that its actor system is gone, without looking for it.

Whatever ends the actor system tells one event on the event loop, which the server waits on
(``ActorBridge.gone``): an embedded round that met ``SystemExit``, a bridge thread that ended,
or Thespian's admin process exiting (multi-process: a pidfd, readable once the process is gone,
watched by the loop). So an idle server is never woken to ask whether all is still well.
"""

from __future__ import annotations

import asyncio
import os
import select
from typing import Callable


class Ending:
    """The actor system's end, as one event on the event loop; and the admin's pidfd.

    ``expected`` says whether an end is a stop under way (then nothing is told)."""

    def __init__(self, expected: Callable[[], bool]) -> None:
        self._expected = expected
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        #: Multi-process: Thespian's admin process, and a pidfd on it (once watched).
        self.admin_pid = 0
        self._pidfd: int | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Call on ``loop``, before anything can end."""
        self._loop = loop
        self._event = asyncio.Event()

    def now(self) -> None:
        """On the loop: the actor system is gone, unless a stop is under way."""
        if self._event is not None and not self._expected():
            self._event.set()

    def now_from_thread(self) -> None:
        """:meth:`now`, from another thread (nothing, once the loop is closed: nobody waits)."""
        self.call_soon(self.now)

    def call_soon(self, callback: Callable[..., None], *args: object) -> None:
        """From another thread: run ``callback`` on the loop (unless it is closed)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass

    async def wait(self) -> None:
        """Return once the actor system is gone (other than by a stop)."""
        assert self._event is not None
        await self._event.wait()

    def watch_admin(self, pid: int) -> None:
        """From the thread that learnt ``pid``: its exit is the actor system's end. Queued
        on the loop before the start is answered, so before a stop can close the pidfd."""
        self.admin_pid = pid
        self._pidfd = fd = os.pidfd_open(pid)
        self.call_soon(self._add_reader, fd)

    def _add_reader(self, fd: int) -> None:
        assert self._loop is not None
        loop = self._loop

        def exited() -> None:
            loop.remove_reader(fd)
            self.now()
        loop.add_reader(fd, exited)

    def admin_exited(self) -> bool:
        """Whether the watched admin process has exited."""
        fd = self._pidfd
        return fd is not None and bool(select.select([fd], [], [], 0)[0])

    def close(self) -> None:
        """On the loop, once the actor system is stopped: watch the admin no more."""
        fd, self._pidfd = self._pidfd, None
        if fd is not None:
            assert self._loop is not None
            self._loop.remove_reader(fd)
            os.close(fd)
