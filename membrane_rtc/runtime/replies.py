"""What the actors send the gateway, handed to the event loop: a reply to a
:class:`~.messages.Request` resolves the future its ``request_id`` names, everything else goes to
the gateway's callback. Sends that failed come back here too, as answers to whoever waits.

Each message is handled on its own: one that fails is counted and logged (once, then
throttled), the others go on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Callable

from thespian.actors import PoisonMessage

from ..ops.logs import Throttled
from .messages import Address, Reply, Request
from .messages.gateway import Undelivered
from .ordering import OrderedReceiver, Sequenced
from .transport import Failed

log = logging.getLogger(__name__)


class Replies:
    """Requests waiting for their reply (futures by ``request_id``), and the hand-over of what
    the actors send to the event loop."""

    def __init__(self, count_error: Callable[[str, int], None]) -> None:
        #: Counts messages that failed alone, by kind.
        self._count_error = count_error
        self._errors = Throttled(log)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._request_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_message: Callable[[Any], None] = lambda message: None
        #: Numbered messages from the actors, back in order (event loop only).
        self.ordered_in = OrderedReceiver()

    def start(self, loop: asyncio.AbstractEventLoop, on_message: Callable[[Any], None]) -> None:
        """Hand messages to ``loop`` from now on; those not a reply go to ``on_message``."""
        self._loop = loop
        self._on_message = on_message

    @property
    def pending(self) -> int:
        """How many requests wait for their reply."""
        return len(self._pending)

    async def ask(self, target: Address, request: Request, reply_to: Address,
                  tell: Callable[[Address, Any], None], timeout: float) -> Reply:
        """Send ``request`` with ``tell`` and wait for its :class:`Reply`; raise
        ``asyncio.TimeoutError`` past ``timeout``."""
        assert self._loop is not None, "bridge not started"
        request.request_id = next(self._request_ids)
        request.reply_to = reply_to
        future: asyncio.Future[Reply] = self._loop.create_future()
        self._pending[request.request_id] = future
        tell(target, request)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request.request_id, None)

    def dispatch(self, messages: list[Any]) -> None:
        """Handle what the actors sent (on the event loop), each on its own."""
        for message in messages:
            try:
                self._dispatch_one(message)
            except Exception:
                self._count_error("unhandled", 1)
                self._errors.error(f"unhandled {type(message).__name__}",
                                   "error handling %s from the actor system",
                                   type(message).__name__, exc_info=True)

    def _dispatch_one(self, message: Any) -> None:
        if isinstance(message, Sequenced):
            self.dispatch(self.ordered_in.accept(message))
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

    def hand_over(self, messages: list[Any]) -> None:
        """From any thread: have the event loop handle ``messages``."""
        loop = self._loop
        if messages and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.dispatch, messages)

    def failed(self, failure: Failed) -> None:
        """Messages that failed alone: counted, logged (the first of a kind, then throttled),
        and handed back, so that whoever waits for an answer to one hears at once."""
        kind = "unsendable" if failure.unsendable else "undelivered"
        names = ", ".join(sorted({type(message).__name__ for message in failure.messages}))
        self._count_error(kind, len(failure.messages))
        self._errors.error(f"{kind} {names}", "%s %d message(s) (%s): %s",
                           "cannot serialise for the actors:" if failure.unsendable
                           else "could not deliver", len(failure.messages), names,
                           failure.reason)
        self.hand_over([Undelivered(message, failure.reason) for message in failure.messages])

    def round_failed(self, where: str) -> None:
        """An error in a sending or listening round of its own (not one message's): counted
        and logged; the next round goes on."""
        self._count_error("bridge", 1)
        self._errors.error(f"bridge {where}", "the bridge's %s failed a round; going on",
                           where, exc_info=True)
