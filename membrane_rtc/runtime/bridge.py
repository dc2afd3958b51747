"""The bridge between asyncio and a Thespian actor system.

An ``ActorSystem`` handle is not thread-safe (``simpleSystemBase`` even runs every actor inside
the caller's ``tell``), so one dedicated thread owns it. The asyncio side puts ``(address,
message)`` pairs on a queue; the thread takes them in batches, ``tell``s them, then drains what
the actors sent to the outside address (``listen``) and hands that batch back to the event loop
with ``call_soon_threadsafe``. Replies to :class:`~.messages.Request` resolve the matching
future; everything else goes to the ``on_message`` callback (the gateway).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
from typing import Any, Callable

from thespian.actors import ActorSystem

from .messages import SUPERVISOR_NAME, Address, Reply, Request
from .supervisor import RoomSupervisor

log = logging.getLogger("membrane_rtc.bridge")

_STOP = object()

#: How long the actor thread waits for work before it looks for timers and late messages.
DEFAULT_POLL_INTERVAL = 0.02


class ActorSystemError(RuntimeError):
    """The actor system could not be started or did not answer in time."""


class ActorBridge:
    """Runs an actor system on its own thread and connects it to one asyncio event loop."""

    def __init__(self, system_base: str = "simpleSystemBase",
                 capabilities: dict[str, Any] | None = None,
                 poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        self.system_base = system_base
        self.capabilities = dict(capabilities or {})
        self.poll_interval = poll_interval
        self.supervisor: Address = None
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._request_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_message: Callable[[Any], None] = lambda message: None

    async def start(self, on_message: Callable[[Any], None]) -> None:
        """Start the actor system and its supervisor; ``on_message`` gets unsolicited messages."""
        self._loop = asyncio.get_running_loop()
        self._on_message = on_message
        ready: asyncio.Future[Address] = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name="membrane-rtc-actors", daemon=True)
        self._thread.start()
        self.supervisor = await ready

    def tell(self, target: Address, message: Any) -> None:
        """Send a message to an actor. Thread-safe, never blocks."""
        self._inbox.put((target, message))

    async def ask(self, target: Address, request: Request, timeout: float = 10.0) -> Reply:
        """Send a request and wait for its :class:`Reply`; raise ActorSystemError on timeout."""
        assert self._loop is not None, "bridge not started"
        request.request_id = next(self._request_ids)
        future: asyncio.Future[Reply] = self._loop.create_future()
        self._pending[request.request_id] = future
        self.tell(target, request)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise ActorSystemError(
                f"no answer to {type(request).__name__} within {timeout} s") from None
        finally:
            self._pending.pop(request.request_id, None)

    async def stop(self) -> None:
        """Shut the actor system down and wait for the thread to end."""
        if self._thread is None:
            return
        self._inbox.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # -- event loop side ---------------------------------------------------------------------

    def _dispatch(self, messages: list[Any]) -> None:
        for message in messages:
            if isinstance(message, Reply):
                future = self._pending.get(message.request_id)  # type: ignore[arg-type]
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            try:
                self._on_message(message)
            except Exception:
                log.exception("error handling %s from the actor system", type(message).__name__)

    # -- actor thread side -------------------------------------------------------------------

    def _run(self, ready: asyncio.Future[Address]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            system = ActorSystem(self.system_base, self.capabilities, transientUnique=True,
                                 logDefs=False)
            supervisor = system.createActor(RoomSupervisor, globalName=SUPERVISOR_NAME)
        except BaseException as exc:
            error = ActorSystemError(f"cannot start the actor system: {exc}")
            loop.call_soon_threadsafe(ready.set_exception, error)
            return
        loop.call_soon_threadsafe(ready.set_result, supervisor)
        try:
            self._pump(system, loop)
        finally:
            system.shutdown()

    def _pump(self, system: ActorSystem, loop: asyncio.AbstractEventLoop) -> None:
        """Move messages both ways until told to stop."""
        while True:
            try:
                item = self._inbox.get(timeout=self.poll_interval)
            except queue.Empty:
                item = None
            stopping = False
            while item is not None:
                if item is _STOP:
                    stopping = True
                else:
                    target, message = item
                    try:
                        system.tell(target, message)
                    except Exception:
                        log.exception("cannot deliver %s", type(message).__name__)
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    item = None
            outgoing = []
            while (message := system.listen(0)) is not None:
                outgoing.append(message)
            if outgoing and not loop.is_closed():
                loop.call_soon_threadsafe(self._dispatch, outgoing)
            if stopping:
                return
