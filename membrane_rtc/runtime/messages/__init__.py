"""The actor messages: one class per intent, as in Thespian's own examples, grouped by who
talks to whom so that a conversation reads in one module:

- :mod:`.gateway`: a gateway and the actors (its clients' connections, frames to write);
- :mod:`.rooms`: the supervisor and its room actors (start, end, heartbeat, crash), and the
  room events for the webhooks;
- :mod:`.admin`: the server's, the operators' and the Python API's requests to the supervisor;
- :mod:`.leaders`: several leaders and the room hosts' directories.

This package's own module holds what they all share: the request and reply envelope, the
batch, the types of addresses and class references, and the actors' global names.

All are plain picklable dataclasses, so the same messages cross process (and host) boundaries in
the multi-process bases. Those that carry secrets (credentials, headers, options, the TURN
secret, frames with tokens) have a repr without them (:mod:`membrane_rtc.redact`): Thespian
logs a message's repr when an actor fails on it.

A request that carries a ``request_id`` is answered with a :class:`Reply` carrying the same id,
which is how the asyncio side matches answers to the questions it asked. Answers go to
``reply_to`` when it is set, else to the sender: in the multi-process mode the gateway sends from
one actor-system handle and listens on another, so it always names where answers go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...redact import kinds_summary

#: Thespian global names: any process of the actor system finds these actors by name.
SUPERVISOR_NAME = "membrane_rtc.RoomSupervisor"
ADMIN_NAME = "membrane_rtc.Admin"

# An actor address (thespian.actors.ActorAddress); typed Any as Thespian ships no type hints.
Address = Any
#: A class, or a SPEC string naming one (see membrane_rtc.loading).
ClassRef = Any


@dataclass
class Request:
    """Base of the messages that expect a :class:`Reply`."""

    request_id: int | None = field(default=None, kw_only=True)
    reply_to: Address = field(default=None, kw_only=True)


@dataclass
class Reply:
    """Answer to a :class:`Request`: ``value``, or ``error``, a one-line reason for an operator
    (plain data: an exception would carry internals across processes). The layers above turn
    it into their one way of failing: :class:`~membrane_rtc.ServerError` in Python,
    ``AdminError`` in the admin client, an error line from the command."""

    request_id: int | None
    error: str | None = None
    value: Any = None


@dataclass
class Batch:
    """Several messages for one actor in one send (each hop costs ~1 ms between processes)."""

    messages: list[Any]

    def __repr__(self) -> str:
        # Thespian formats every message it sends or receives for a debug line, logged or not
        # (``identify()``): the kinds of messages, not each one's repr (87 µs for a batch of 20
        # client messages, several times per hop; this: about 3 µs).
        return f"Batch({kinds_summary(self.messages)})"


def batch_of(messages: list[Any]) -> Any:
    """One message as itself, several as a :class:`Batch`."""
    return messages[0] if len(messages) == 1 else Batch(messages)
