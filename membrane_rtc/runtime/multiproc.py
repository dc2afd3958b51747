"""The multi-process mode's two bridge threads, once their actor system handles are open.

``multiprocTCPBase``: actors are processes. One thread sends what the event loop queues
(blocking on the queue, never polling) through one handle, pipelined (:mod:`.transport`);
another blocks in ``listen`` on a second handle, whose address is the gateway's, and hands what
arrives to the event loop. An error fails one message or one round, never a thread.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable

from thespian.actors import ActorSystem

from .backlog import Item, Queued, Token
from .messages.gateway import WakeListener
from .ordering import OrderedSender
from .replies import Replies
from .transport import PipelinedSender

#: Queued to end the sending thread.
STOP = object()
#: How long the listener pauses after an error before it listens again (seconds).
ERROR_PAUSE = 0.05
#: The longest one wait of the listener (seconds). A stop wakes it (:class:`WakeListener`);
#: this only bounds how long a listener whose bridge never registered outlives it.
LISTEN_TIMEOUT = 60.0


class ThreadRounds:
    """The rounds of multiproc's sending and listening threads (each method runs on its own
    thread until the bridge stops)."""

    def __init__(self, inbox: queue.SimpleQueue[Any], order: OrderedSender,
                 credit: Callable[[Token], None], replies: Replies,
                 listening: threading.Event, stop_timeout: float) -> None:
        self._inbox = inbox
        self._order = order  # sending thread only
        self._credit = credit
        self._replies = replies
        self._listening = listening
        self._stop_timeout = stop_timeout

    def take(self, block_for: float | None) -> tuple[list[Item | WakeListener], bool]:
        """Everything queued (waiting up to ``block_for`` for the first): (items, stop?)."""
        try:
            item = self._inbox.get(timeout=block_for)
        except queue.Empty:
            return [], False
        items: list[Item | WakeListener] = []
        stopping = False
        while True:
            if item is STOP:
                stopping = True
            else:
                items.append(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return items, stopping

    def wait_for_stop(self) -> None:
        """A room host's sending thread: nothing to send, its system just runs until the stop."""
        while not self.take(None)[1]:
            pass

    def send(self, system: ActorSystem) -> None:
        """Send what the event loop queues, until it queues the stop (then what is in flight
        gets up to ``stop_timeout`` to be over)."""
        sender = PipelinedSender(system, self._credit_send)
        queued = Queued()
        while True:
            stopping = False
            try:  # an error fails a round (or one message: see PipelinedSender), no more
                # Wait for work only when nothing is in flight; else look again after a step.
                items, stopping = self.take(0 if sender.busy else None)
                wakes: list[tuple[Any, Any, Any]] = []
                kept: list[Item] = []
                for item in items:
                    if isinstance(item, WakeListener):
                        wakes.append((item.address, item, None))  # unnumbered, in no backlog
                    else:
                        kept.append(item)
                queued.add(kept)
                sender.send([*queued.sends(self._order), *wakes])
                for failure in sender.step():
                    if not all(isinstance(each, WakeListener) for each in failure.messages):
                        self._replies.failed(failure)  # (a listener that ended first: fine)
                if stopping:
                    deadline = time.monotonic() + self._stop_timeout
                    while sender.busy and time.monotonic() < deadline:
                        sender.step(0.1)
            except Exception:
                self._replies.round_failed("sender thread")
            if stopping:
                return

    def _credit_send(self, token: Token | None) -> None:
        if token is not None:  # None: a WakeListener, counted in no backlog
            self._credit(token)

    def listen(self, system: ActorSystem, moved: Callable[[Any], bool]) -> None:
        """Block in ``listen`` on the gateway's own handle and hand batches over, while the
        bridge listens; ``moved`` takes (and says it took) a message about the supervisor.
        Idle, it waits without waking: the bridge's stop sends it a :class:`WakeListener`."""
        while self._listening.is_set():
            try:
                message = system.listen(LISTEN_TIMEOUT)
                if message is None:
                    continue
                batch = [message]
                while (message := system.listen(0)) is not None:
                    batch.append(message)
                self._replies.hand_over([each for each in batch
                                         if not moved(each) and not isinstance(each, WakeListener)])
            except Exception:
                self._replies.round_failed("listener thread")
                time.sleep(ERROR_PAUSE)  # no busy loop if the error repeats
