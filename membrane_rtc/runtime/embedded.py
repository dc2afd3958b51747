"""The embedded mode's actor system, run on the event loop's own thread.

``simpleSystemBase`` runs every actor inside the caller's ``tell``. So instead of a thread of
its own (two thread hops per message and the GIL handed back and forth), the event loop runs it
in *rounds*: what the gateway tells the actors during one loop turn is queued, and one round,
scheduled with ``call_soon``, tells it - each actor's run as one Batch - then hands what the
actors sent straight to the gateway. One hop per direction, no envelopes, no locks.

A round tells each actor at most ROUND_QUANTUM messages; what is left waits for the next round,
after the loop has served the sockets once more: a room flooded faster than it forwards delays
another room's messages by one round of its own, and its backlog (the bridge's count) pauses
reading from its clients. Thespian's timers (``wakeupAfter``) are armed on the loop with
``call_later`` for exactly when the next one is due: no polling when nobody talks.

The price of running on the loop's thread: a room callback that blocks holds up the whole
server for that long (the watchdog interrupts Python code past its time limit). The multi-process
mode is the isolation for rooms that block.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from thespian.actors import ActorSystem

from .backlog import Item, Queued, Token
from .ordering import OrderedSender
from .replies import Replies
from .transport import Failed, leaves

log = logging.getLogger(__name__)

#: Messages one round tells one actor at most. A room flooded faster than it forwards then
#: delays another room's messages by one round of this many of its own, not by all it has
#: waiting; below it (nearly always) a round is all that was queued, as one Batch.
ROUND_QUANTUM = 16
#: Only if this Thespian's simpleSystemBase does not keep its timers as expected (see
#: _SimpleWakeups): how often to look for due timers (seconds).
DEFAULT_POLL_INTERVAL = 0.02


class _SimpleWakeups:
    """When simpleSystemBase's next timer (``wakeupAfter``) is due, and firing due ones.

    simpleSystemBase keeps the timers actors ask for in its ``_wakeUps`` (``WakeupManager``)
    and fires them only inside a ``tell`` or a ``listen``: it has no public "when is the next
    one". So it is asked here, the one place that reads Thespian's internals, to arm one loop
    timer for exactly then. Without those internals (another Thespian) it falls back to polling
    every ``poll_interval``.
    """

    def __init__(self, system: ActorSystem, poll_interval: float) -> None:
        base = getattr(system, "_systemBase", None)
        self._base = base if all(hasattr(base, name) for name in
                                 ("_next_wakeup", "_realizeWakeups", "_runSends")) else None
        self._poll_interval = poll_interval

    def due_in(self) -> float | None:
        """Seconds until the next timer is due (0: due now), None when there is none."""
        if self._base is None:
            return self._poll_interval
        timer = self._base._next_wakeup()
        return None if timer is None else max(0.0, float(timer.view().remainingSeconds()))

    def fire_due(self, system: ActorSystem) -> None:
        """Deliver the timers that are due (what ``tell`` does before it sends)."""
        if self._base is None:
            system.listen(0.00001)  # a listen that waits at all fires due wakeups
            return
        self._base._realizeWakeups()
        self._base._runSends()


class EmbeddedRounds:
    """Runs a simpleSystemBase actor system in rounds on the event loop (see the module).

    What a round needs from the bridge is named here: the numbering of what it sends
    (``order``), crediting a send's backlog once it is over (``credit``), where what the
    actors answer, and what failed, goes (``replies``), and whom to tell when the actors are
    gone (``on_failure``)."""

    def __init__(self, system: ActorSystem, loop: asyncio.AbstractEventLoop,
                 poll_interval: float, order: OrderedSender, credit: Callable[[Token], None],
                 replies: Replies, on_failure: Callable[[], None] = lambda: None) -> None:
        self._system = system
        self._on_failure = on_failure
        self._queued = Queued()
        self._order = order
        self._credit = credit
        self._replies = replies
        self._loop = loop
        self._wakeups = _SimpleWakeups(system, poll_interval)
        self._items: list[Item] = []
        self._scheduled = False
        self._timer: asyncio.Handle | None = None
        self._timer_when = 0.0  # the loop time self._timer was armed for
        self._stopped = False
        #: How often a timer woke the actors with nothing told them (an idle server: never).
        self.idle_wakeups = 0
        #: Why the actor system is gone (code in an actor raised SystemExit), or None.
        self.failure: str | None = None

    def add(self, item: Item) -> None:
        """Queue a message for the next round (scheduled on the first one of a loop turn)."""
        self._items.append(item)
        if not self._scheduled and not self._stopped:
            self._scheduled = True
            self._loop.call_soon(self._round)

    def _round(self, quantum: int | None = ROUND_QUANTUM) -> None:
        """Tell each actor up to ``quantum`` of its messages, fire due timers, hand what the
        actors sent to the gateway. An error fails the round, not the next one."""
        self._scheduled = False
        if self._stopped:
            return
        system, replies = self._system, self._replies
        try:
            items, self._items = self._items, []
            self._queued.add(items)
            for target, message, token in self._queued.sends(self._order, quantum):
                try:
                    system.tell(target, message)
                except Exception as exc:
                    replies.failed(Failed(leaves(message), f"{type(exc).__name__}: {exc}",
                                          unsendable=False))
                finally:
                    self._credit(token)
            if self._wakeups.due_in() == 0:
                self._wakeups.fire_due(system)
            outgoing = []
            while (message := system.listen(0)) is not None:
                outgoing.append(message)
            replies.dispatch(outgoing)
        except Exception:
            replies.round_failed("embedded round")
        except (SystemExit, GeneratorExit) as exc:
            # An actor's code ended "the thread" (sys.exit in a room): no guard takes that for
            # one message's error. The server sees ``failure`` and exits, to be restarted.
            self.failure = f"code in an actor raised {type(exc).__name__}"
            self._stopped = True
            log.critical("the embedded actor system is gone: %s", self.failure, exc_info=True)
            self._on_failure()
            return
        if self._queued and not self._scheduled:  # past the quantum: after the sockets' turn
            self._scheduled = True
            self._loop.call_soon(self._round)
        self._arm_timer()

    def _arm_timer(self) -> None:
        """One loop timer for the actors' next due ``wakeupAfter``, or none."""
        due = self._wakeups.due_in()
        timer = self._timer
        if due is None:
            if timer is not None:
                timer.cancel()
                self._timer = None
            return
        when = self._loop.time() + due
        if timer is not None:
            # Compared with the time it was armed for: uvloop's handle for a time already
            # past is a plain Handle, without ``when()``.
            if abs(self._timer_when - when) < 0.001:
                return
            timer.cancel()
        self._timer = self._loop.call_at(when, self._on_timer)
        self._timer_when = when

    def _on_timer(self) -> None:
        self._timer = None
        if not self._items and not self._queued:
            self.idle_wakeups += 1
        self._round()

    def stop(self) -> None:
        """Tell what is still queued (all of it), then shut the actor system down."""
        if self._stopped:
            return
        try:
            self._round(quantum=None)
        finally:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._system.shutdown()

    def abandon(self) -> None:
        """Given up for dead: no more rounds."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
