"""What every membrane-rtc actor shares: type dispatch, batches, order, answering requests."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

from thespian.actors import ActorTypeDispatcher, PoisonMessage

from .messages import Address, Batch, Reply, Request
from .ordering import OrderedReceiver, OrderedSender, Sequenced, numbering


def address_key(address: Address) -> str:
    """A dict key for an address (Thespian addresses are not hashable).

    Only for addresses that arrived in messages (gateways, senders): the address an actor's own
    ``createActor`` returned is a local stand-in in the multi-process bases, whose string
    changes once the child is up - compare those with ``==``.
    """
    return str(address.actorAddressString)


log = logging.getLogger(__name__)

def _handler_for(actor_class: type, message_class: type) -> Callable[..., Any] | None:
    """The ``receiveMsg_<Type>`` function ``actor_class`` has for the nearest class in
    ``message_class``'s MRO, or None."""
    for each in message_class.__mro__:
        handler: Callable[..., Any] | None = getattr(actor_class,
                                                     "receiveMsg_" + each.__name__, None)
        if handler is not None:
            return handler
    return None


class MembraneActor(ActorTypeDispatcher):  # type: ignore[misc]  # Thespian is untyped
    """Thespian's type-dispatching actor, plus :class:`Batch` unpacking, ordered sends
    (:meth:`send_ordered`, see :mod:`.ordering`), :meth:`answer`, and one guard per message:
    each message, and each one a Batch or Sequenced carries, that fails is :meth:`failed`
    alone (requests answered). Subclasses extend :meth:`handle`, not ``receiveMessage``."""

    #: Per actor class: message type -> its ``receiveMsg_`` function (None: there is none).
    _handlers: dict[type, Callable[..., Any] | None] = {}

    def receiveMessage(self, message: Any, sender: Address) -> None:
        # An exception let out would make Thespian retry the whole envelope, which ordering
        # then drops as a duplicate: everything after the failing message would be lost,
        # silently. So none gets out (BaseExceptions aside: SystemExit ends the process).
        try:
            self.handle(message, sender)
        except Exception as error:
            try:
                self.failed(message, sender, error)
            except Exception:
                log.exception("%s: handling the failure of %s failed too",
                              type(self).__name__, type(message).__name__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}  # each actor class its own

    def handle(self, message: Any, sender: Address) -> None:
        """Handle one message: ``receiveMsg_<Type>`` for its type or its nearest base class,
        as Thespian's ``ActorTypeDispatcher`` would find it, but looked up once per type (it
        walks both classes' MROs for every message). No handler here returns ``SUPER``."""
        handlers = type(self)._handlers
        kind = type(message)
        if kind in handlers:
            handler = handlers[kind]
        else:
            handler = handlers[kind] = _handler_for(type(self), kind)
        if handler is None:  # none: Thespian's own way (receiveUnrecognizedMessage, if any)
            super().receiveMessage(message, sender)
        else:
            handler(self, message, sender)

    def failed(self, message: Any, sender: Address, error: Exception) -> None:
        """Handling ``message`` raised: log it (with its traceback) and answer a request with
        an error. The actor goes on with the next message."""
        log.error("%s: handling %s failed", type(self).__name__, type(message).__name__,
                  exc_info=(type(error), error, error.__traceback__))
        if isinstance(message, Request):
            self.answer(message, sender,
                        error=f"{type(message).__name__} failed on the server (see its log)")

    def receiveMsg_PoisonMessage(self, poison: PoisonMessage, sender: Address) -> None:
        """Something this actor sent failed in its receiver: an asker waiting for the answer
        learns at once."""
        request = poison.poisonMessage
        log.warning("%s: %s sent to %s failed there", type(self).__name__,
                    type(request).__name__, sender)
        if isinstance(request, Request) and request.reply_to is not None:
            self.send(request.reply_to, Reply(request.request_id,
                                              f"{type(request).__name__} failed on the server"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Numbered only where the base can re-order (ordering.set_numbering, set by the
        # bridge in this process or the one this actor's process was forked from).
        self.ordered_out = OrderedSender(f"{type(self).__name__}:{uuid.uuid4()}",
                                         numbered=numbering())
        self.ordered_in = OrderedReceiver()

    def send_ordered(self, target: Address, message: Any) -> None:
        """Send so that ``target`` handles this after everything sent it this way before.

        ``target`` must be a real address (one that came in a message), not the stand-in an
        own ``createActor`` returned.
        """
        out = self.ordered_out
        if out.numbered and not out.origin:  # known once the actor is up, not in __init__
            out.origin = address_key(self.myAddress)
        self.send(target, out.wrap(address_key(target), message))

    def receiveMsg_Sequenced(self, item: Sequenced, sender: Address) -> None:
        for message in self.ordered_in.accept(item):
            self.receiveMessage(message, sender)

    def receiveMsg_Batch(self, batch: Batch, sender: Address) -> None:
        for message in batch.messages:
            self.receiveMessage(message, sender)

    def answer(self, request: Request, sender: Address, value: Any = None,
               error: str | None = None) -> None:
        """Reply to a request where it asked (``reply_to``), else to its sender."""
        self.send(request.reply_to or sender, Reply(request.request_id, error, value))
