"""The multi-process actor system ends with the server process that started it.

Thespian's admin daemonizes: it runs in a session and process group of its own, and every actor
process of the system is forked below it. Left alone, a ``kill -9`` of the server (or the OOM
killer) leaves the admin, the supervisor and every room running for good, holding the admin port.

So each server starts one :class:`Lifeline` actor in its own actor system and tells it the
server's pid. It waits on that process (a pidfd: woken by the kernel, no polling) and, when the
process is gone however it ended, kills the actor system's whole process group. A clean stop
shuts the actor system down first, the lifeline with it, so this only ever acts on a death.

The other way round, it answers with the pid of Thespian's admin (its parent): the server
watches that one and exits when its actor system is gone (``ActorBridge.alive``).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
from dataclasses import dataclass
from typing import Any

from thespian.actors import Actor

log = logging.getLogger(__name__)


@dataclass
class WatchServer:
    """Sent to the lifeline: end this actor system when process ``pid`` ends."""

    pid: int


@dataclass
class LifelineWatching:
    """The lifeline's answer to :class:`WatchServer`: the pid of Thespian's admin process,
    which created it, and without which the actor system is gone."""

    admin_pid: int


def wait_for_exit(pid: int) -> None:
    """Block until process ``pid`` (not necessarily a child) has ended."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])  # a pidfd turns readable when its process exits
    finally:
        os.close(fd)


def end_actor_system(server_pid: int) -> None:
    """Kill this process's group - the actor system - unless the server is in it too."""
    group = os.getpgrp()
    try:
        if os.getpgid(server_pid) == group:
            log.error("the server shares the actor system's process group; not killing it")
            return
    except ProcessLookupError:
        pass  # gone, as expected
    log.warning("server process %d is gone: ending its actor system (process group %d)",
                server_pid, group)
    os.killpg(group, signal.SIGKILL)


class Lifeline(Actor):  # type: ignore[misc]
    """Ends the actor system it runs in when the server process that started it ends."""

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, WatchServer):
            threading.Thread(target=self._watch, args=(message.pid,), daemon=True,
                             name="membrane-rtc-lifeline").start()
            self.send(sender, LifelineWatching(os.getppid()))

    @staticmethod
    def _watch(pid: int) -> None:
        wait_for_exit(pid)
        end_actor_system(pid)
