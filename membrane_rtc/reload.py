"""``membrane-rtc serve --reload``: rooms restart with the new code when their source changes.

For development. The source files of the configured room and peer classes are watched
(``watchfiles``, the kernel's file events). When one changes and still compiles, every room
running a class from it restarts with the new code - a fresh ``on_init``, its peers told
``"Room closed"`` (clients reconnect). A file that does not compile
is reported in one line and the old code keeps running. In the multi-process mode a restarted
room's new process imports the new code by itself.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Reloader", "source_file"]

log = logging.getLogger("membrane_rtc.reload")

#: Milliseconds of quiet after a change before acting on it (an editor writes in steps).
DEBOUNCE_MS = 300


def source_file(spec: Any) -> str | None:
    """The source file a class SPEC (or class) comes from, if it is a file on disk."""
    if isinstance(spec, type):
        module = sys.modules.get(spec.__module__)
        path = getattr(module, "__file__", None)
    else:
        where = str(spec).rpartition(":")[0]
        if where.endswith(".py"):
            path = where
        else:
            try:
                found = importlib.util.find_spec(where)
            except (ImportError, ValueError):
                return None
            path = found.origin if found else None
    return os.path.abspath(path) if path and os.path.isfile(path) else None


class Reloader:
    """Watches the room and peer classes' files of one server and restarts their rooms."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._task: asyncio.Task[None] | None = None

    def files(self) -> set[str]:
        config = self.server.config
        specs = [room.room_class for room in config.rooms] + [config.peer_class]
        return {path for path in map(source_file, specs) if path is not None}

    def start(self) -> None:
        """Watch the files (an error naming the missing extra if watchfiles is not there)."""
        if importlib.util.find_spec("watchfiles") is None:
            raise RuntimeError("--reload needs watchfiles: pip install 'membrane-rtc[reload]'")
        files = self.files()
        if files:
            log.info("reload: watching %s", ", ".join(sorted(files)))
            self._task = asyncio.get_running_loop().create_task(self._watch(files))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self, files: set[str]) -> None:
        from watchfiles import awatch  # an extra: only --reload needs it

        directories = {os.path.dirname(path) for path in files}
        async for changes in awatch(*directories, debounce=DEBOUNCE_MS,
                                    watch_filter=lambda _, path: path in files):
            for path in sorted({path for _, path in changes}):
                await self.changed(path)

    async def changed(self, path: str) -> None:
        """``path`` changed: check it compiles, then restart its rooms (loading a class notices
        that its source changed and loads it anew: see :mod:`membrane_rtc.loading`)."""
        try:
            with open(path, "rb") as source:
                compile(source.read(), path, "exec")
        except SyntaxError as exc:
            log.error("reload: %s:%s: %s; the old code keeps running", path, exc.lineno,
                      exc.msg)
            return
        except OSError as exc:
            log.error("reload: cannot read %s (%s); the old code keeps running", path,
                      exc.strerror)
            return
        server = self.server
        if server.gateway is not None and source_file(server.config.peer_class) == path:
            server.gateway.reload_peer_class()
        restarted = []
        for room in await server.list_rooms():
            if room.state in ("running", "starting") and source_file(room.room_class) == path:
                await server.restart_room(room.name)
                restarted.append(room.name)
        log.warning("reload: %s changed; rooms restarted: %s", path,
                    ", ".join(restarted) or "none")
