"""What every membrane-rtc actor shares: type dispatch, batches, and answering requests."""

from __future__ import annotations

from typing import Any

from thespian.actors import ActorTypeDispatcher

from .messages import Address, Batch, Reply, Request


def address_key(address: Address) -> str:
    """A dict key for an address (Thespian addresses are not hashable).

    Only for addresses that arrived in messages (gateways, senders): the address an actor's own
    ``createActor`` returned is a local stand-in in the multi-process bases, whose string
    changes once the child is up - compare those with ``==``.
    """
    return address.actorAddressString


class MembraneActor(ActorTypeDispatcher):
    """Thespian's type-dispatching actor, plus :class:`Batch` unpacking and :meth:`answer`."""

    def receiveMsg_Batch(self, batch: Batch, sender: Address) -> None:
        for message in batch.messages:
            self.receiveMessage(message, sender)

    def answer(self, request: Request, sender: Address, value: Any = None,
               error: str | None = None) -> None:
        """Reply to a request where it asked (``reply_to``), else to its sender."""
        self.send(request.reply_to or sender, Reply(request.request_id, error, value))
