"""``membrane-rtc serve --reload``: rooms restart with the new code when their source changes.

For development. The source files of the configured room and peer classes are watched
(``watchfiles``, the kernel's file events). When one changes, it is first imported on its own,
in this process, without replacing anything: if that fails (a syntax error, an exception at
import), the error is one log line with the file and line and nothing restarts - the rooms keep
the old code. If it imports, every room running a class from it restarts with the new code - a
fresh ``on_init``, its peers told ``"Room closed"`` (details ``"restarted for a code change"``;
clients reconnect) - and so does a room that had failed, so that the fix brings it back. In the
multi-process mode a restarted room's new process imports the new code by itself.

Nothing ends the watcher but the server's stop: whatever goes wrong with one change is logged
in one line, and the next save is acted on as usual.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import sys
import traceback
from typing import Any, Callable, Protocol

from ..config import ServerConfig
from ..loading import module_of
from ..supervision import RoomInfo, RoomStatus

__all__ = ["Reloader", "ReloadableRooms", "source_file", "import_problem"]

log = logging.getLogger(__name__)

#: Milliseconds of quiet after a change before acting on it (an editor writes in steps).
DEBOUNCE_MS = 300
#: Seconds before watching again after the watching itself failed (a directory removed...),
#: doubling while it keeps failing, up to MAX_RETRY_DELAY.
RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 30.0
#: The rooms a change restarts: those that run (or start), and those that failed, which the
#: fixed code may bring back. Not one already going down or waiting for a host.
RESTARTABLE = frozenset({RoomStatus.RUNNING, RoomStatus.STARTING, RoomStatus.FAILED})


def _where(spec: Any) -> str | None:
    """The module part of a class SPEC (None for a class object)."""
    return None if isinstance(spec, type) else str(spec).rpartition(":")[0]


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
                found = importlib.util.find_spec(module_of(where))
            except (ImportError, ValueError):
                return None
            path = found.origin if found else None
    return os.path.abspath(path) if path and os.path.isfile(path) else None


def import_problem(path: str, module: str | None = None) -> str | None:
    """Import ``path`` on its own, as a module that replaces nothing, to see whether it can be
    loaded; return what is wrong (``LINE: message``), or None.

    ``module`` is the module name the file is known by (for its relative imports).
    """
    name = f"{module or 'membrane_rtc_reload'}__reload_check"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return "?: cannot be loaded as Python source"
    trial = importlib.util.module_from_spec(spec)
    sys.modules[name] = trial  # what runs at import (dataclasses...) may look itself up
    try:
        spec.loader.exec_module(trial)
    except SyntaxError as exc:
        if exc.filename and os.path.abspath(exc.filename) == path:
            return f"{exc.lineno}: {exc.msg}"
        return f"{_line_in(path, exc)}: {type(exc).__name__}: {exc}"
    except (Exception, SystemExit) as exc:  # whatever the module raises at import (a
        # sys.exit() there would otherwise end the server)
        return f"{_line_in(path, exc)}: {type(exc).__name__}: {exc}"
    finally:
        sys.modules.pop(name, None)
    return None


def _line_in(path: str, exc: BaseException) -> int | str:
    """The line of ``path`` an exception went through last (its import of another module)."""
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
             if os.path.abspath(frame.filename) == path]
    return lines[-1] if lines and lines[-1] is not None else "?"


class ReloadableRooms(Protocol):
    """What the reloader needs of a server (``Server`` is one): its rooms, listed with their
    classes, and restarted for a code change."""

    async def list_rooms(self) -> list[RoomInfo]: ...

    async def reload_room(self, name: str) -> None: ...


class Reloader:
    """Watches the room and peer classes' files of one server and restarts their rooms.

    ``reload_peer_class`` (the gateway's, when this process has one) is called when the peer
    class's file changes."""

    def __init__(self, config: ServerConfig, rooms: ReloadableRooms,
                 reload_peer_class: Callable[[], None] | None = None) -> None:
        self.config = config
        self.rooms = rooms
        self.reload_peer_class = reload_peer_class
        self._task: asyncio.Task[None] | None = None

    def _specs(self) -> list[Any]:
        config = self.config
        specs = [room.room_class for room in config.rooms] + [config.peer_class]
        if config.auto_create:
            specs.append(config.auto_room_class)
        return specs

    def files(self) -> set[str]:
        return {path for path in map(source_file, self._specs()) if path is not None}

    def start(self) -> None:
        """Watch the files (an error naming the missing extra if watchfiles is not there;
        ``preflight`` says so before anything starts)."""
        if importlib.util.find_spec("watchfiles") is None:
            raise RuntimeError("--reload needs watchfiles: pip install 'membrane-rtc[reload]'")
        files = self.files()
        if files:
            log.info("reload: watching %s", ", ".join(sorted(files)))
            self._task = asyncio.get_running_loop().create_task(self._watch(files))
            self._task.add_done_callback(self._ended)

    @staticmethod
    def _ended(task: asyncio.Task[None]) -> None:
        """The watcher never ends but by :meth:`stop`; should it, that is said."""
        if not task.cancelled() and task.exception() is not None:
            log.error("reload: the watcher stopped: %r; restart the server to reload again",
                      task.exception())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # its end, if not cancelled, was logged
            self._task = None

    async def _watch(self, files: set[str]) -> None:
        from watchfiles import awatch  # an extra: only --reload needs it

        directories = {os.path.dirname(path) for path in files}
        delay = RETRY_DELAY
        while True:
            try:
                async for changes in awatch(*directories, debounce=DEBOUNCE_MS,
                                            watch_filter=lambda _, path: path in files):
                    delay = RETRY_DELAY
                    for path in sorted({path for _, path in changes}):
                        await self._changed_safely(path)
                return  # awatch ends only when asked to (not here): nothing left to watch
            except Exception as exc:  # the watching itself: try again
                log.error("reload: watching %s failed (%s: %s); again in %g s",
                          ", ".join(sorted(directories)), type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _changed_safely(self, path: str) -> None:
        """:meth:`changed`, whatever goes wrong in it one log line (the watching goes on)."""
        try:
            await self.changed(path)
        except Exception as exc:
            log.error("reload: %s changed, but reloading failed: %s: %s", path,
                      type(exc).__name__, exc)

    def _module_name(self, path: str) -> str | None:
        """The module a configured class SPEC loads ``path`` as (None: a file SPEC)."""
        for spec in self._specs():
            where = _where(spec)
            if where and not where.endswith(".py") and source_file(spec) == path:
                return module_of(where)
        return None

    async def changed(self, path: str) -> None:
        """``path`` changed: check it imports, then restart its rooms, failed ones included
        (loading a class notices that its source changed and loads it anew: see
        :mod:`membrane_rtc.loading`)."""
        if not os.path.isfile(path):
            log.error("reload: %s is gone; the old code keeps running", path)
            return
        problem = import_problem(path, self._module_name(path))
        if problem is not None:
            log.error("reload: %s:%s; the old code keeps running", path, problem)
            return
        if self.reload_peer_class is not None and source_file(self.config.peer_class) == path:
            self.reload_peer_class()
        restarted, failed = [], []
        for room in await self.rooms.list_rooms():
            if room.state in RESTARTABLE and source_file(room.room_class) == path:
                try:
                    await self.rooms.reload_room(room.name)
                    restarted.append(room.name)
                except Exception as exc:  # ServerError: it crashed on start; a timeout...
                    failed.append(f"{room.name} ({exc})")
        log.warning("reload: %s changed; rooms restarted: %s%s", path,
                    ", ".join(restarted) or "none",
                    f"; did not start: {', '.join(failed)}" if failed else "")
