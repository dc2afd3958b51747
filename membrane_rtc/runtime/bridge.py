"""The bridge between asyncio and a Thespian actor system.

An ``ActorSystem`` handle is not thread-safe, so dedicated threads own the handles and the
asyncio side only puts ``(address, message)`` pairs on a queue. What the actors send to the
gateway comes back to the event loop in batches through ``call_soon_threadsafe``: replies to a
:class:`~.messages.Request` resolve the matching future, everything else goes to the
``on_message`` callback (the gateway).

Two ways to run, one interface:

- ``simpleSystemBase`` (embedded): every actor runs inside the caller's ``tell``, so a single
  thread takes what is queued, ``tell``s it, then drains ``listen(0)``. Idle, it wakes every
  ``poll_interval`` so that Thespian timers fire.
- ``multiprocTCPBase``: actors are processes. One thread sends (blocking on the queue, never
  polling) through one handle; another blocks in ``listen`` on a second handle, whose address
  is the gateway's. Requests name that address in ``reply_to``.

Messages queued together for one actor travel as one :class:`~.messages.Batch`: between
processes each send costs about a millisecond, whatever its size.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from typing import Any, Callable

from thespian.actors import ActorSystem, ActorSystemMessage, PoisonMessage

from ..logs import private_thespian_log, thespian_log_defs
from .actor import address_key
from .admin_actor import AdminActor
from .lifeline import Lifeline, WatchServer
from .ordering import OrderedReceiver, OrderedSender, Sequenced
from .placement import capabilities_for, default_host_name
from .messages import (
    ADMIN_NAME,
    SUPERVISOR_NAME,
    Address,
    RegisterGateway,
    Reply,
    Request,
    batch_of,
)
from .supervisor import RoomSupervisor
from .transport import PipelinedSender, actor_key, advertise, authenticate

log = logging.getLogger("membrane_rtc.bridge")

_STOP = object()

#: How long the embedded actor thread waits for work before it lets Thespian timers fire.
DEFAULT_POLL_INTERVAL = 0.02
#: The shortest wait that makes simpleSystemBase's listen fire due wakeups (seconds).
WAKEUP_TICK = 0.00001
#: The Thespian base names the two modes use.
EMBEDDED = "simpleSystemBase"
MULTIPROC = "multiprocTCPBase"
#: Thespian's own default admin port.
DEFAULT_ADMIN_PORT = 1900
#: Bound on every wait for the actor system itself (start-up, registration).
STARTUP_TIMEOUT = 20.0
#: Thespian's capability naming the convention leader's admin address.
CONVENTION_ADDRESS = "Convention Address.IPv4"


class ActorSystemError(RuntimeError):
    """The actor system could not be started or did not answer in time."""


def port_in_use(port: int, address: str = "127.0.0.1") -> bool:
    """Whether something listens on ``address:port`` (e.g. a Thespian admin)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address, port)) == 0


def _batched(items: list[tuple[Address, Any]], order: OrderedSender) -> list[tuple[Address, Any]]:
    """Group queued sends per target, keeping each target's order, and number them (see
    :mod:`.ordering`). Thespian's own messages (ActorExitRequest...) travel alone and
    unnumbered: they act on the actor, not its handlers."""
    sends: list[tuple[Address, Any]] = []
    pending: dict[str, tuple[Address, list[Any]]] = {}

    def flush(key: str) -> None:
        target, messages = pending.pop(key)
        sends.append((target, order.wrap(key, batch_of(messages))))

    for target, message in items:
        key = address_key(target)
        if isinstance(message, ActorSystemMessage):
            if key in pending:
                flush(key)
            sends.append((target, message))
        else:
            pending.setdefault(key, (target, []))[1].append(message)
    for key in list(pending):
        flush(key)
    return sends


class ActorBridge:
    """Runs an actor system on its own thread(s) and connects it to one asyncio event loop."""

    def __init__(self, system_base: str = EMBEDDED, admin_port: int = DEFAULT_ADMIN_PORT,
                 capabilities: dict[str, Any] | None = None,
                 poll_interval: float = DEFAULT_POLL_INTERVAL, attach: bool = True,
                 holds_sockets: bool = True, actor_address: str | None = None) -> None:
        if system_base not in (EMBEDDED, MULTIPROC):
            raise ValueError(f"unsupported actor system base {system_base!r}")
        self.system_base = system_base
        # By default one system plays every role (the embedded and multi-process modes).
        self.capabilities = dict(capabilities if capabilities is not None else
                                 capabilities_for({"leader", "rooms"}, default_host_name(None)))
        if system_base == MULTIPROC:
            self.capabilities.setdefault("Admin Port", admin_port)
        self.poll_interval = poll_interval
        #: multiproc: the IP address actors advertise and listen on (default 127.0.0.1).
        self.actor_address = actor_address
        #: Find the supervisor and admin actor (creating them on the leader) and register
        #: as a gateway. A process that only hosts rooms does not: it just runs its system.
        self.attach = attach
        #: A gateway (the supervisor tells it of closed rooms) or only a leader's handle.
        self.holds_sockets = holds_sockets
        #: The supervisor, the admin actor, and this gateway's own address as actors see it.
        self.supervisor: Address = None
        self.admin: Address = None
        self.address: Address = None
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._request_ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._listening = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_message: Callable[[Any], None] = lambda message: None
        self._ordered_out = OrderedSender(f"gateway:{uuid.uuid4()}")  # actor thread only
        self._ordered_in = OrderedReceiver()  # event loop only

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the bridge hands messages to (once started)."""
        return self._loop

    @property
    def admin_port(self) -> int | None:
        """Thespian's admin port in the multi-process mode (``None`` when embedded)."""
        return self.capabilities.get("Admin Port") if self.system_base == MULTIPROC else None

    async def start(self, on_message: Callable[[Any], None]) -> None:
        """Start the actor system, the supervisor and the admin actor; register as a gateway.

        ``on_message`` gets every message the actors send that is not a reply.
        """
        self._loop = asyncio.get_running_loop()
        self._on_message = on_message
        if self.system_base == MULTIPROC and port_in_use(self.capabilities["Admin Port"]):
            raise ActorSystemError(
                f"admin port {self.capabilities['Admin Port']} is in use (another server?)")
        ready: asyncio.Future[None] = self._loop.create_future()
        run = self._run_embedded if self.system_base == EMBEDDED else self._run_sender
        self._start_thread("membrane-rtc-actors", run, ready)
        await asyncio.wait_for(ready, STARTUP_TIMEOUT)

    def _start_thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def tell(self, target: Address, message: Any) -> None:
        """Send a message to an actor. Thread-safe, never blocks."""
        self._inbox.put((target, message))

    def backlog(self) -> int:
        """Sends queued and not yet taken by the actor thread."""
        return self._inbox.qsize()

    async def ask(self, target: Address, request: Request, timeout: float = 10.0) -> Reply:
        """Send a request and wait for its :class:`Reply`; raise ActorSystemError on timeout."""
        assert self._loop is not None, "bridge not started"
        request.request_id = next(self._request_ids)
        request.reply_to = self.address
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
        """Shut the actor system down (all its actors) and wait for the threads to end.

        The listener (multi-process) goes first: a second handle still receiving while the
        first shuts the system down can miss the admin's "shutdown completed", and Thespian
        then waits out its 10 s limit.
        """
        self._listening.clear()
        for thread in self._threads[1:]:
            await asyncio.to_thread(thread.join, STARTUP_TIMEOUT)
        self._inbox.put(_STOP)
        for thread in self._threads[:1]:
            await asyncio.to_thread(thread.join, STARTUP_TIMEOUT)
        self._threads = []

    # -- event loop side ---------------------------------------------------------------------

    def _dispatch(self, messages: list[Any]) -> None:
        for message in messages:
            if isinstance(message, Sequenced):
                self._dispatch(self._ordered_in.accept(message))
                continue
            if isinstance(message, PoisonMessage):  # an actor failed to handle what we sent
                failed = message.poisonMessage
                log.warning("the actor system could not handle %s", type(failed).__name__)
                if not isinstance(failed, Request):
                    continue
                message = Reply(failed.request_id, f"{type(failed).__name__} failed on the server")
            if isinstance(message, Reply):
                future = self._pending.get(message.request_id)  # type: ignore[arg-type]
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            try:
                self._on_message(message)
            except Exception:
                log.exception("error handling %s from the actor system", type(message).__name__)

    def _hand_over(self, messages: list[Any]) -> None:
        loop = self._loop
        if messages and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._dispatch, messages)

    def _resolve(self, future: asyncio.Future[Any], error: BaseException | None) -> None:
        assert self._loop is not None
        if error is None:
            self._loop.call_soon_threadsafe(future.set_result, None)
        else:
            self._loop.call_soon_threadsafe(future.set_exception, error)

    # -- actor threads -----------------------------------------------------------------------

    def _open(self) -> ActorSystem:
        """A handle on the actor system; the first one in the process starts it."""
        private_thespian_log()
        if self.system_base == MULTIPROC:
            advertise(self.actor_address)
            authenticate(actor_key())
        return ActorSystem(self.system_base, self.capabilities, transientUnique=True,
                           logDefs=False if self.system_base == EMBEDDED
                           else thespian_log_defs())

    def _create_actors(self, system: ActorSystem) -> None:
        self.supervisor = system.createActor(RoomSupervisor, globalName=SUPERVISOR_NAME)
        self.admin = system.createActor(AdminActor, globalName=ADMIN_NAME)

    def _register(self, system: ActorSystem) -> None:
        """Learn this handle's address: the supervisor records it as a gateway and says it."""
        reply = system.ask(self.supervisor, RegisterGateway(request_id=0,
                                                            holds_sockets=self.holds_sockets),
                           STARTUP_TIMEOUT)
        if not isinstance(reply, Reply) or reply.value is None:
            raise ActorSystemError(f"the supervisor did not answer (got {reply!r})")
        self.address = reply.value

    def _take(self, block_for: float | None) -> tuple[list[tuple[Address, Any]], bool]:
        """Everything queued (waiting up to ``block_for`` for the first): (sends, stop?)."""
        try:
            item = self._inbox.get(timeout=block_for)
        except queue.Empty:
            return [], False
        items, stopping = [], False
        while True:
            if item is _STOP:
                stopping = True
            else:
                items.append(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return _batched(items, self._ordered_out), stopping

    def _tell_all(self, system: ActorSystem, sends: list[tuple[Address, Any]]) -> None:
        for target, message in sends:
            try:
                system.tell(target, message)
            except Exception:
                log.exception("cannot deliver %s", type(message).__name__)

    def _run_embedded(self, ready: asyncio.Future[None]) -> None:
        """simpleSystemBase: one thread tells, runs the actors, and listens."""
        try:
            system = self._open()
            self._create_actors(system)
            self._register(system)
        except BaseException as exc:
            self._resolve(ready, ActorSystemError(f"cannot start the actor system: {exc}"))
            return
        self._resolve(ready, None)
        try:
            while True:
                sends, stopping = self._take(self.poll_interval)
                self._tell_all(system, sends)
                outgoing = []
                # A positive timeout: simpleSystemBase fires due wakeups (room timers) only
                # when listen waits at all.
                message = system.listen(WAKEUP_TICK)
                while message is not None:
                    outgoing.append(message)
                    message = system.listen(0)
                self._hand_over(outgoing)
                if stopping:
                    return
        finally:
            system.shutdown()

    def _run_sender(self, ready: asyncio.Future[None]) -> None:
        """multiprocTCPBase: start the system, then send what the event loop queues."""
        try:
            system = self._open()
        except BaseException as exc:
            self._resolve(ready, ActorSystemError(f"cannot start the actor system: {exc}"))
            return
        try:
            # This process's death, however it comes, ends the actor system (no orphans).
            system.tell(system.createActor(Lifeline), WatchServer(os.getpid()))
        except BaseException as exc:
            system.shutdown()
            self._resolve(ready, ActorSystemError(f"cannot start the lifeline: {exc}"))
            return
        if not self.attach:  # a room host: its system runs; nothing else to do here
            self._resolve(ready, None)
            try:
                while not self._take(None)[1]:
                    pass
            finally:
                system.shutdown()
            return
        try:
            self._create_actors(system)
            listener_ready = threading.Event()
            errors: list[BaseException] = []
            self._listening.set()
            self._start_thread("membrane-rtc-listener", self._run_listener, listener_ready,
                               errors)
            if not listener_ready.wait(STARTUP_TIMEOUT) or errors:
                raise ActorSystemError(f"the gateway could not register: {errors or 'timeout'}")
        except BaseException as exc:
            self._listening.clear()
            system.shutdown()
            self._resolve(ready, ActorSystemError(f"cannot start the actor system: {exc}"))
            return
        self._resolve(ready, None)
        sender = PipelinedSender(system)
        try:
            while True:
                # Wait for work only when nothing is in flight; else look again after a step.
                sends, stopping = self._take(0 if sender.busy else None)
                sender.send(sends)
                for failure in sender.step():
                    log.error("cannot deliver %s", failure)
                if stopping:
                    deadline = time.monotonic() + STARTUP_TIMEOUT
                    while sender.busy and time.monotonic() < deadline:
                        sender.step(0.1)
                    return
        finally:
            self._listening.clear()
            system.shutdown()

    def _run_listener(self, ready: threading.Event, errors: list[BaseException]) -> None:
        """multiprocTCPBase: block in ``listen`` on our own handle, hand batches over."""
        try:
            system = self._open()
            self._register(system)
        except BaseException as exc:
            errors.append(exc)
            ready.set()
            return
        ready.set()
        while self._listening.is_set():
            message = system.listen(0.5)
            if message is None:
                continue
            batch = [message]
            while (message := system.listen(0)) is not None:
                batch.append(message)
            self._hand_over(batch)
