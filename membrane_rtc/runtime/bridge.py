"""The bridge between asyncio and a Thespian actor system.

The event loop tells actors ``(address, message)`` pairs and gets back, in batches, what the
actors send the gateway: replies to a :class:`~.messages.Request` resolve the matching future,
everything else goes to the ``on_message`` callback (the gateway). An ``ActorSystem`` handle is
not thread-safe, so each handle has one owner. Two ways to run, one interface:

- ``simpleSystemBase`` (embedded): every actor runs inside the caller's ``tell``, so the
  event loop itself runs them, in rounds (:mod:`.embedded`): no thread, no hop.
- ``multiprocTCPBase``: actors are processes. One thread sends (blocking on the queue, never
  polling) through one handle; another blocks in ``listen`` on a second handle, whose address
  is the gateway's. Requests name that address in ``reply_to``.

Messages queued together for one actor travel as one :class:`~.messages.Batch`: between
processes each send costs about a millisecond, whatever its size.

What one client sends must not hurt the others (see docs/explanation/architecture.md):

- the bridge counts, per actor, what it was told and the actors have not taken in yet
  (:meth:`ActorBridge.backlog`): the gateway reads no more from clients whose room is behind;
- embedded, each round tells an actor at most ``embedded.ROUND_QUANTUM`` messages, so a
  flooded room delays the others by a round, not by its whole backlog;
- a message that fails (pickle cannot take it, its actor is gone, handling it raises) fails
  alone: counted, logged (once, then throttled), handed back to whoever waits for an answer;
  no error ends a bridge thread or round. If a thread, the embedded actors or Thespian's admin
  process die anyway, :attr:`ActorBridge.alive` says so and the server exits, for its
  supervisor to restart it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import select
import socket
import threading
import time
import uuid
from collections import deque
from typing import Any, Callable

from thespian.actors import ActorSystem, ActorSystemMessage, PoisonMessage

from ..ops.logs import Throttled, private_thespian_log, thespian_log_defs
from .actor import address_key
from .admin_actor import AdminActor
from .embedded import DEFAULT_POLL_INTERVAL, EmbeddedRounds
from .lifeline import Lifeline, Watching, WatchServer
from .ordering import (OrderedReceiver, OrderedSender, Sequenced, needs_numbering,
                       set_numbering)
from .placement import LEADER, capabilities_for, default_host_name
from .messages import (
    ADMIN_NAME,
    SUPERVISOR_NAME,
    Address,
    RegisterGateway,
    Reply,
    Request,
    SupervisorMoved,
    Undelivered,
    batch_of,
)
from .supervisor import RoomSupervisor
from .transport import (Failed, PipelinedSender, actor_key, advertise, authenticate,
                        leaves, tune_convention)

log = logging.getLogger("membrane_rtc.bridge")

_STOP = object()

#: The Thespian base names the two modes use.
EMBEDDED = "simpleSystemBase"
MULTIPROC = "multiprocTCPBase"
#: Thespian's own default admin port.
DEFAULT_ADMIN_PORT = 1900
#: Bound on every wait for the actor system itself (start-up, registration).
STARTUP_TIMEOUT = 20.0
#: Thespian's capability naming the convention leader's admin address.
CONVENTION_ADDRESS = "Convention Address.IPv4"
#: How long the listener pauses after an error before it listens again (seconds).
ERROR_PAUSE = 0.05


class ActorSystemError(RuntimeError):
    """The actor system could not be started or did not answer in time."""


def port_in_use(port: int, address: str = "127.0.0.1") -> bool:
    """Whether something listens on ``address:port`` (e.g. a Thespian admin)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((address, port)) == 0


class _Backlog:
    """Messages for one actor told to the bridge and not yet taken in by the actors' side.
    ``told`` is counted on the event loop, ``taken`` on the bridge's sending thread: one writer
    each, so no lock (the event loop, the only reader, sees ``taken <= told``)."""

    __slots__ = ("key", "told", "taken")

    def __init__(self, key: str) -> None:
        self.key = key
        self.told = 0
        self.taken = 0


#: What the sending thread credits once a send is over: its actor's backlog, and how many.
Token = tuple[_Backlog, int]


class _Forget:
    """Queued after the sends to an actor that is gone: the sending thread then drops its
    numbering (in order: what was told it before still goes out numbered)."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


#: What the event loop queues for the sending thread.
_Item = tuple[Address, Any, _Backlog] | _Forget


class _Queued:
    """What the sending thread took from the event loop and has not sent yet: per actor (per
    backlog), in the order it came. Sending thread only."""

    def __init__(self) -> None:
        self._by_backlog: dict[_Backlog, tuple[Address, deque[Any]]] = {}
        self._forget: list[str] = []  # actors gone: forget once their queued sends are out

    def __bool__(self) -> bool:
        return bool(self._by_backlog)

    def add(self, items: list[_Item]) -> None:
        by_backlog = self._by_backlog
        for item in items:
            if isinstance(item, _Forget):
                self._forget.append(item.key)
                continue
            target, message, backlog = item
            entry = by_backlog.get(backlog)
            if entry is None:
                entry = by_backlog[backlog] = (target, deque())
            entry[1].append(message)

    def sends(self, order: OrderedSender,
              quantum: int | None = None) -> list[tuple[Address, Any, Token]]:
        """Up to ``quantum`` messages per actor (all if None), in order, as sends: each run of
        messages as one numbered Batch (see :mod:`.ordering`); Thespian's own messages
        (ActorExitRequest...) alone and unnumbered: they act on the actor, not its handlers."""
        sends: list[tuple[Address, Any, Token]] = []
        for backlog in list(self._by_backlog):
            target, messages = self._by_backlog[backlog]
            budget = len(messages) if quantum is None else quantum
            while messages and budget > 0:
                if isinstance(messages[0], ActorSystemMessage):
                    sends.append((target, messages.popleft(), (backlog, 1)))
                    budget -= 1
                    continue
                run: list[Any] = []
                while messages and len(run) < budget \
                        and not isinstance(messages[0], ActorSystemMessage):
                    run.append(messages.popleft())
                budget -= len(run)
                sends.append((target, order.wrap(backlog.key, batch_of(run)),
                              (backlog, len(run))))
            if not messages:
                del self._by_backlog[backlog]
        if self._forget:
            waiting = {backlog.key for backlog in self._by_backlog}
            for key in [key for key in self._forget if key not in waiting]:
                order.forget(key)
                self._forget.remove(key)
        return sends


class ActorBridge:
    """Runs an actor system (on the event loop, or on threads of its own) and connects it to
    one asyncio event loop."""

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
        #: Whether messages between the gateway and the actors are numbered (ordering.py):
        #: only where the base can re-order them.
        self.numbered = needs_numbering(system_base)
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: Per actor (address key), and in all: told and not yet taken in (see _Backlog).
        self._backlogs: dict[str, _Backlog] = {}
        self._prune_at = 64
        self._told = 0  # event loop only
        self._taken = 0  # sending thread only
        #: Counts messages that failed alone, by kind (the server sets it to its metrics').
        self.count_error: Callable[[str, int], None] = lambda kind, count: None
        self._errors = Throttled(log)
        self._stopping = False  # a clean stop is under way: not a death
        self._lost = False  # given up for dead (abandon)
        self._admin_pid = 0  # multiproc: Thespian's admin process, watched by a pidfd
        self._admin_pidfd: int | None = None
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._request_ids = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._listening = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_message: Callable[[Any], None] = lambda message: None
        self._ordered_out = OrderedSender(f"gateway:{uuid.uuid4()}",  # sending thread only
                                          numbered=self.numbered)
        self._ordered_in = OrderedReceiver()  # event loop only
        #: Embedded: the actor system's rounds on the event loop (once started).
        self._rounds: EmbeddedRounds | None = None

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
        self._on_message = on_message
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

    def abandon(self) -> None:
        """The actor system is gone: let the threads end, without waiting for them."""
        self._lost = True
        self._listening.clear()
        if self._rounds is not None:
            self._rounds.abandon()
        self._inbox.put(_STOP)

    def tell(self, target: Address, message: Any, key: str | None = None) -> None:
        """Send a message to an actor. Never blocks; call it on the event loop (the one
        thread that counts what is told). ``key``: ``address_key(target)``, if the caller
        keeps it (it tells the same room for every message of its clients)."""
        if key is None:
            key = address_key(target) if target is not None else ""
        backlog = self._backlogs.get(key)
        if backlog is None:
            if len(self._backlogs) >= self._prune_at:
                self._prune()
            backlog = self._backlogs[key] = _Backlog(key)
        backlog.told += 1
        self._told += 1
        if self._rounds is not None:
            self._rounds.add((target, message, backlog))
        else:
            self._inbox.put((target, message, backlog))

    def _prune(self) -> None:
        """Forget the backlogs of actors with nothing waiting (rooms come and go)."""
        self._backlogs = {key: backlog for key, backlog in self._backlogs.items()
                          if backlog.told != backlog.taken}
        self._prune_at = max(64, 2 * len(self._backlogs))

    def forget(self, actor: Address) -> None:
        """``actor`` is gone (its room ended): drop what the bridge keeps for it, both ways.
        Call it on the event loop."""
        key = address_key(actor)
        self._ordered_in.forget_origin(key)
        backlog = self._backlogs.get(key)
        if backlog is not None and backlog.told == backlog.taken:
            del self._backlogs[key]
        if self.numbered:
            self._inbox.put(_Forget(key))

    def kept(self) -> dict[str, int]:
        """Sizes of what the bridge keeps per actor or request (tests: nothing may grow with
        every room that comes and goes)."""
        return {"bridge.ordering_out": self._ordered_out.receivers,
                "bridge.ordering_in": self._ordered_in.channels,
                "bridge.backlogs": len(self._backlogs),
                "bridge.pending_requests": len(self._pending)}

    def backlog(self, target: Address = None, key: str | None = None) -> int:
        """Messages told and not yet taken in by the actors' side: all of them, or those for
        ``target`` (or its ``address_key``). Taken in is: embedded, handled; multi-process,
        acknowledged by the actor's process (which then has at most that one batch to
        handle)."""
        if target is None and key is None:
            return self._told - self._taken
        backlog = self._backlogs.get(key if key is not None else address_key(target))
        return 0 if backlog is None else backlog.told - backlog.taken

    def _credit(self, token: Token) -> None:
        """A send is over (taken in, or failed): its messages wait no more."""
        backlog, count = token
        backlog.taken += count
        self._taken += count

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
        fd = self._admin_pidfd
        if fd is not None and select.select([fd], [], [], 0)[0]:  # readable: it exited
            return f"Thespian's admin process ({self._admin_pid}) exited"
        return None

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
        for thread in self._threads[1:]:
            await asyncio.to_thread(thread.join, STARTUP_TIMEOUT)
        self._inbox.put(_STOP)
        for thread in self._threads[:1]:
            await asyncio.to_thread(thread.join, STARTUP_TIMEOUT)
        self._threads = []
        if self._admin_pidfd is not None:
            os.close(self._admin_pidfd)
            self._admin_pidfd = None

    # -- event loop side ---------------------------------------------------------------------

    def _dispatch(self, messages: list[Any]) -> None:
        for message in messages:
            try:  # each on its own: one that fails is counted and logged, the others go on
                self._dispatch_one(message)
            except Exception:
                self.count_error("unhandled", 1)
                self._errors.error(f"unhandled {type(message).__name__}",
                                   "error handling %s from the actor system",
                                   type(message).__name__, exc_info=True)

    def _dispatch_one(self, message: Any) -> None:
        if isinstance(message, Sequenced):
            self._dispatch(self._ordered_in.accept(message))
            return
        if isinstance(message, PoisonMessage):  # an actor failed to handle what we sent
            failed = message.poisonMessage
            log.warning("the actor system could not handle %s", type(failed).__name__)
            if not isinstance(failed, Request):
                return
            message = Reply(failed.request_id, f"{type(failed).__name__} failed on the server")
        elif isinstance(message, Undelivered) and isinstance(message.message, Request):
            failed = message.message
            message = Reply(failed.request_id,
                            f"{type(failed).__name__} could not reach the actors")
        if isinstance(message, Reply):
            future = self._pending.get(message.request_id)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(message)
            return
        self._on_message(message)

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
        # The name the actors forget this gateway's numbering by once it leaves.
        self._ordered_out.origin = address_key(self.address)

    def _take(self, block_for: float | None) -> tuple[list[_Item], bool]:
        """Everything queued (waiting up to ``block_for`` for the first): (items, stop?)."""
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
                return items, stopping

    def _failed(self, failure: Failed) -> None:
        """Messages that failed alone: counted, logged (the first of a kind, then throttled),
        and handed back, so that whoever waits for an answer to one hears at once."""
        kind = "unsendable" if failure.unsendable else "undelivered"
        names = ", ".join(sorted({type(message).__name__ for message in failure.messages}))
        self.count_error(kind, len(failure.messages))
        self._errors.error(f"{kind} {names}", "%s %d message(s) (%s): %s",
                           "cannot serialise for the actors:" if failure.unsendable
                           else "could not deliver", len(failure.messages), names,
                           failure.reason)
        self._hand_over([Undelivered(message, failure.reason) for message in failure.messages])

    def _round_failed(self, where: str) -> None:
        """An error in a bridge thread's own round (not one message's): the next goes on."""
        self.count_error("bridge", 1)
        self._errors.error(f"bridge {where}", "the bridge's %s failed a round; going on",
                           where, exc_info=True)

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
        self._rounds = EmbeddedRounds(self, system, _Queued(), self._loop, self.poll_interval)

    def _run_sender(self, ready: asyncio.Future[None]) -> None:
        """multiprocTCPBase: start the system, then send what the event loop queues."""
        try:
            tune_convention()  # before the system (its admin) starts: read at its start
            system = self._open()
        except BaseException as exc:
            self._resolve(ready, ActorSystemError(f"cannot start the actor system: {exc}"))
            return
        try:
            # This process's death, however it comes, ends the actor system (no orphans); and
            # the actor system's (its admin's) is this process's cue to exit (alive).
            answer = system.ask(system.createActor(Lifeline), WatchServer(os.getpid()),
                                STARTUP_TIMEOUT)
            if not isinstance(answer, Watching):
                raise ActorSystemError(f"the lifeline did not answer (got {answer!r})")
            self._admin_pid = answer.admin_pid
            self._admin_pidfd = os.pidfd_open(answer.admin_pid)
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
        sender = PipelinedSender(system, self._credit)
        queued = _Queued()
        try:
            while True:
                stopping = False
                try:  # an error fails a round (or one message: see PipelinedSender), no more
                    # Wait for work only when nothing is in flight; else look again after a
                    # step.
                    items, stopping = self._take(0 if sender.busy else None)
                    queued.add(items)
                    sender.send(queued.sends(self._ordered_out))
                    for failure in sender.step():
                        self._failed(failure)
                    if stopping:
                        deadline = time.monotonic() + STARTUP_TIMEOUT
                        while sender.busy and time.monotonic() < deadline:
                            sender.step(0.1)
                except Exception:
                    self._round_failed("sender thread")
                if stopping:
                    return
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
        while self._listening.is_set():
            try:
                message = system.listen(0.5)
                if message is None:
                    continue
                batch = [message]
                while (message := system.listen(0)) is not None:
                    batch.append(message)
                self._hand_over([each for each in batch if not self._moved(each)])
            except Exception:
                self._round_failed("listener thread")
                time.sleep(ERROR_PAUSE)  # no busy loop if the error repeats
