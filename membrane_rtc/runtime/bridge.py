"""The bridge between asyncio and a Thespian actor system: starts and stops it, and is the
event loop's one interface to it.

The event loop tells actors ``(address, message)`` pairs and gets back, in batches, what the
actors send the gateway: replies to a :class:`~.messages.Request` resolve the matching future,
everything else goes to the ``on_message`` callback (the gateway) (:mod:`.replies`). An
``ActorSystem`` handle is not thread-safe, so each handle has one owner. Two ways to run, one
interface:

- ``simpleSystemBase`` (embedded): every actor runs inside the caller's ``tell``, so the
  event loop itself runs them, in rounds (:mod:`.embedded`): no thread, no hop.
- ``multiprocTCPBase``: actors are processes. One thread sends (blocking on the queue, never
  polling) through one handle; another blocks in ``listen`` on a second handle, whose address
  is the gateway's (:mod:`.multiproc`). Requests name that address in ``reply_to``.

Messages queued together for one actor travel as one :class:`~.messages.Batch` (:mod:`.backlog`):
between processes each send costs about a millisecond, whatever its size.

What one client sends must not hurt the others (see docs/explanation/architecture.md):

- the bridge counts, per actor, what it was told and the actors have not taken in yet
  (:meth:`ActorBridge.backlog`): the gateway reads no more from clients whose room is behind;
- embedded, each round tells an actor at most ``embedded.ROUND_QUANTUM`` messages, so a
  flooded room delays the others by a round, not by its whole backlog;
- a message that fails (pickle cannot take it, its actor is gone, handling it raises) fails
  alone: counted, logged (once, then throttled), handed back to whoever waits for an answer;
  no error ends a bridge thread or round. If a thread, the embedded actors or Thespian's admin
  process die anyway, :attr:`ActorBridge.alive` says so, :meth:`ActorBridge.gone` returns
  (:mod:`.ending`: told by the end itself, never polled) and the server exits, for its
  supervisor to restart it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import socket
import threading
import uuid
from typing import Any, Callable

from thespian.actors import ActorSystem

from ..ops.logs import private_thespian_log, thespian_log_defs
from .actor import address_key
from .admin_actor import AdminActor
from .backlog import Backlogs, DropNumbering
from .embedded import DEFAULT_POLL_INTERVAL, EmbeddedRounds
from .ending import Ending
from .lifeline import Lifeline, LifelineWatching, WatchServer
from .messages import ADMIN_NAME, SUPERVISOR_NAME, Address, Reply, Request
from .messages.gateway import RegisterGateway, WakeListener
from .messages.leaders import SupervisorMoved
from .multiproc import STOP, ThreadRounds
from .ordering import OrderedSender, needs_numbering, set_numbering
from .placement import LEADER, capabilities_for, default_host_name
from .replies import Replies
from .supervisor import RoomSupervisor
from .transport import actor_key, advertise, authenticate, tune_convention

log = logging.getLogger(__name__)

#: The Thespian base names the two modes use.
EMBEDDED = "simpleSystemBase"
MULTIPROC = "multiprocTCPBase"
#: Thespian's own default admin port.
DEFAULT_ADMIN_PORT = 1900
#: Bound on every wait for the actor system itself (start-up, registration).
STARTUP_TIMEOUT = 20.0


class ActorSystemError(RuntimeError):
    """The actor system could not be started or did not answer in time."""


def port_in_use(port: int, address: str = "127.0.0.1") -> bool:
    """Whether something listens on ``address:port`` (e.g. a Thespian admin)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address, port)) == 0


class ActorBridge:
    """Runs an actor system (on the event loop, or on threads of its own) and connects it to
    one asyncio event loop."""

    def __init__(self, system_base: str = EMBEDDED, admin_port: int = DEFAULT_ADMIN_PORT,
                 capabilities: dict[str, Any] | None = None,
                 poll_interval: float = DEFAULT_POLL_INTERVAL, has_gateway: bool = True,
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
        #: This process's actor system has a gateway: find the supervisor and admin actor
        #: (creating them on the leader) and register as a gateway. False: the process only
        #: hosts rooms, and just runs its system.
        self.has_gateway = has_gateway
        #: A gateway (the supervisor tells it of closed rooms) or only a leader's handle.
        self.holds_sockets = holds_sockets
        #: The supervisor, the admin actor, and this gateway's own address as actors see it.
        self.supervisor: Address = None
        self.admin: Address = None
        self.address: Address = None
        #: Whether messages between the gateway and the actors are numbered (ordering.py):
        #: only where the base can re-order them.
        self.numbered = needs_numbering(system_base)
        #: Counts messages that failed alone, by kind (the server sets it to its metrics').
        self.count_error: Callable[[str, int], None] = lambda kind, count: None
        self._backlogs = Backlogs()
        self._replies = Replies(lambda kind, count: self.count_error(kind, count))
        self._ordered_out = OrderedSender(f"gateway:{uuid.uuid4()}",  # sending side only
                                          numbered=self.numbered)
        self._stopping = False  # a clean stop is under way: not a death
        self._lost = False  # given up for dead (abandon)
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Embedded: the actor system's rounds on the event loop (once started).
        self._rounds: EmbeddedRounds | None = None
        #: Multi-process: the queue to the sending thread, the threads, and their rounds.
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._listening = threading.Event()
        self._thread_rounds = ThreadRounds(self._inbox, self._ordered_out,
                                           self._backlogs.credit, self._replies,
                                           self._listening, STARTUP_TIMEOUT)
        #: Whatever ends the actor system other than a stop tells it: ``gone`` waits on it.
        self._ending = Ending(expected=lambda: self._stopping)

    @property
    def idle_wakeups(self) -> int:
        """Embedded: how often the actors were woken with nothing told them (a timer was due,
        or polled). Idle with no timer due, never."""
        return 0 if self._rounds is None else self._rounds.idle_wakeups

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
        self._ending.start(self._loop)
        self._replies.start(self._loop, on_message)
        if self.system_base == MULTIPROC and port_in_use(self.capabilities["Admin Port"]):
            raise ActorSystemError(
                f"admin port {self.capabilities['Admin Port']} is in use (another server?)")
        if self.system_base == EMBEDDED:
            self._start_embedded()
            return
        ready: asyncio.Future[None] = self._loop.create_future()
        self._start_thread("membrane-rtc-actors", self._run_sender, ready)
        await asyncio.wait_for(ready, STARTUP_TIMEOUT)

    def _start_thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=self._thread_main, args=(target, *args), name=name,
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    def _thread_main(self, target: Callable[..., None], *args: Any) -> None:
        """A bridge thread; one that ends other than by a stop says why (``alive`` turns
        False: the server exits)."""
        try:
            target(*args)
        except BaseException:  # SystemExit from a room's code, embedded, ends up here too
            log.critical("%s ended: the actor system is gone", threading.current_thread().name,
                         exc_info=True)
            raise
        finally:  # a thread that ends other than by a stop is the actor system's end
            self._ending.now_from_thread()

    async def gone(self) -> None:
        """Return once the actor system is gone other than by a stop (``failure`` says why),
        woken by the end itself, not by polling (:mod:`.ending`). Call it after ``start``."""
        await self._ending.wait()

    def abandon(self) -> None:
        """The actor system is gone: let the threads end, without waiting for them."""
        self._lost = True
        self._ending.now()
        self._listening.clear()
        if self._rounds is not None:
            self._rounds.abandon()
        self._inbox.put(STOP)

    def tell(self, target: Address, message: Any, key: str | None = None) -> None:
        """Send a message to an actor. Never blocks; call it on the event loop (the one
        thread that counts what is told). ``key``: ``address_key(target)``, if the caller
        keeps it (it tells the same room for every message of its clients)."""
        if key is None:
            key = address_key(target) if target is not None else ""
        backlog = self._backlogs.told(key)
        if self._rounds is not None:
            self._rounds.add((target, message, backlog))
        else:
            self._inbox.put((target, message, backlog))

    def actor_gone(self, actor: Address) -> None:
        """``actor`` is gone (its room ended): drop what the bridge keeps for it, both ways;
        its numbering once what was told it is out. Call it on the event loop."""
        key = address_key(actor)
        self._replies.ordered_in.forget_origin(key)
        self._backlogs.drop_if_idle(key)
        if self.numbered:  # multi-process only: the sending thread drops it, in order
            self._inbox.put(DropNumbering(key))

    def kept(self) -> dict[str, int]:
        """Sizes of what the bridge keeps per actor or request (tests: nothing may grow with
        every room that comes and goes)."""
        return {"bridge.ordering_out": self._ordered_out.receivers,
                "bridge.ordering_in": self._replies.ordered_in.channels,
                "bridge.backlogs": len(self._backlogs),
                "bridge.pending_requests": self._replies.pending}

    def backlog(self, target: Address = None, key: str | None = None) -> int:
        """Messages told and not yet taken in by the actors' side: all of them, or those for
        ``target`` (or its ``address_key``). Taken in is: embedded, handled; multi-process,
        acknowledged by the actor's process (which then has at most that one batch to
        handle)."""
        if target is None and key is None:
            return self._backlogs.waiting()
        return self._backlogs.waiting(key if key is not None else address_key(target))

    @property
    def alive(self) -> bool:
        """Whether the actor system still runs: the bridge's threads are up and, multi-process,
        Thespian's admin process lives. False once it is gone unexpectedly (a clean stop
        is not that): the server cannot serve any more."""
        return self.failure is None

    @property
    def failure(self) -> str | None:
        """Why the actor system is gone, or None while it runs (or stops on purpose)."""
        if self._lost:
            return "given up for dead"
        if self._stopping:
            return None
        if self._rounds is not None and self._rounds.failure is not None:
            return self._rounds.failure
        for thread in self._threads:
            if not thread.is_alive():
                return f"the bridge's thread {thread.name} ended"
        if self._ending.admin_exited():
            return f"Thespian's admin process ({self._ending.admin_pid}) exited"
        return None

    async def ask(self, target: Address, request: Request, timeout: float = 10.0) -> Reply:
        """Send a request and wait for its :class:`Reply`; raise ActorSystemError on timeout."""
        try:
            return await self._replies.ask(target, request, self.address, self.tell, timeout)
        except asyncio.TimeoutError:
            raise ActorSystemError(
                f"no answer to {type(request).__name__} within {timeout} s") from None

    async def stop(self) -> None:
        """Shut the actor system down (all its actors) and wait for the threads to end.

        The listener (multi-process) goes first: a second handle still receiving while the
        first shuts the system down can miss the admin's "shutdown completed", and Thespian
        then waits out its 10 s limit.
        """
        self._stopping = True
        if self._rounds is not None:
            rounds, self._rounds = self._rounds, None
            try:
                rounds.stop()
            finally:
                # Back to the safe default for whatever this process starts next (a
                # multi-process system forks its actors from here).
                set_numbering(True)
            return
        self._listening.clear()
        if self.address is not None:
            self._inbox.put(WakeListener(self.address))
        for thread in self._threads[1:]:
            await asyncio.to_thread(thread.join, STARTUP_TIMEOUT)
        self._inbox.put(STOP)
        for thread in self._threads[:1]:
            await asyncio.to_thread(thread.join, STARTUP_TIMEOUT)
        self._threads = []
        self._ending.close()

    def _resolve(self, future: asyncio.Future[Any], error: BaseException | None) -> None:
        assert self._loop is not None
        if error is None:
            self._loop.call_soon_threadsafe(future.set_result, None)
        else:
            self._loop.call_soon_threadsafe(future.set_exception, error)

    # -- starting the actor system -----------------------------------------------------------

    def _open(self) -> ActorSystem:
        """A handle on the actor system; the first one in the process starts it."""
        private_thespian_log()
        # Before the system starts: embedded, its actors run in this process; multi-process,
        # their processes are forked from this one and inherit the switch.
        set_numbering(self.numbered)
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
        # The name the actors drop this gateway's numbering by once it leaves.
        self._ordered_out.origin = address_key(self.address)

    def _start_embedded(self) -> None:
        """simpleSystemBase: start it here, on the event loop's thread, which then runs its
        actors in rounds (:class:`.embedded.EmbeddedRounds`)."""
        assert self._loop is not None
        system = None
        try:
            system = self._open()
            self._create_actors(system)
            self._register(system)
        except BaseException as exc:
            if system is not None:
                system.shutdown()
            set_numbering(True)
            raise ActorSystemError(f"cannot start the actor system: {exc}") from None
        self._rounds = EmbeddedRounds(system, self._loop, self.poll_interval,
                                      self._ordered_out, self._backlogs.credit, self._replies,
                                      on_failure=self._ending.now)

    def _watch_admin(self, system: ActorSystem) -> None:
        """This process's death, however it comes, ends the actor system (no orphans); and
        the actor system's (its admin's) is this process's cue to exit (``alive``)."""
        answer = system.ask(system.createActor(Lifeline), WatchServer(os.getpid()),
                            STARTUP_TIMEOUT)
        if not isinstance(answer, LifelineWatching):
            raise ActorSystemError(f"the lifeline did not answer (got {answer!r})")
        self._ending.watch_admin(answer.admin_pid)

    def _start_gateway(self, system: ActorSystem) -> None:
        """Find (or create) the supervisor and admin actor; the listener thread registers."""
        self._create_actors(system)
        listener_ready = threading.Event()
        errors: list[BaseException] = []
        self._listening.set()
        self._start_thread("membrane-rtc-listener", self._run_listener, listener_ready, errors)
        if not listener_ready.wait(STARTUP_TIMEOUT) or errors:
            raise ActorSystemError(f"the gateway could not register: {errors or 'timeout'}")

    def _run_sender(self, ready: asyncio.Future[None]) -> None:
        """multiprocTCPBase: start the system, then send what the event loop queues."""
        try:
            tune_convention()  # before the system (its admin) starts: read at its start
            system = self._open()
        except BaseException as exc:
            self._resolve(ready, ActorSystemError(f"cannot start the actor system: {exc}"))
            return
        try:
            self._watch_admin(system)
        except BaseException as exc:
            system.shutdown()
            self._resolve(ready, ActorSystemError(f"cannot start the lifeline: {exc}"))
            return
        if not self.has_gateway:  # a room host: its system runs; nothing else to do here
            self._resolve(ready, None)
            try:
                self._thread_rounds.wait_for_stop()
            finally:
                system.shutdown()
            return
        try:
            self._start_gateway(system)
        except BaseException as exc:
            self._listening.clear()
            system.shutdown()
            self._resolve(ready, ActorSystemError(f"cannot start the actor system: {exc}"))
            return
        self._resolve(ready, None)
        try:
            self._thread_rounds.send(system)
        finally:
            self._listening.clear()
            system.shutdown()

    def _moved(self, message: Any) -> bool:
        """Whether ``message`` says another leader's supervisor leads now: a gateway sends
        to it from then on (a leader's process keeps its own, which passes things on)."""
        if not isinstance(message, SupervisorMoved):
            return False
        if not self.capabilities.get(LEADER):
            log.warning("the supervisor moved to another leader; sending there now")
            # Its admin requests it takes itself (the admin actor only relays them).
            self.supervisor = self.admin = message.supervisor
        return True

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
        self._thread_rounds.listen(system, self._moved)
