"""Per-pair message order, kept by the application rather than by the transport.

Thespian's TCP transport keeps up to 20 sends in flight per actor, so two messages from one actor
to another can arrive swapped under load (seen here: a room's occupancy reports; it would be the
frames for a peer). Capping it at one send in flight keeps order, but one slow send - to an actor
that just exited - then stalls everything behind it for seconds. So instead each sender numbers
what it sends each receiver, and each receiver holds back what arrives early: the order the
protocol promises (one sender, one addressee: docs/reference/protocol.md) holds on every base,
without head-of-line blocking.

Only where the base can re-order: simpleSystemBase (embedded) runs every actor in one thread
and delivers in order, so there nothing is numbered (:func:`set_numbering`, set by the bridge
before its actor system starts).

Pure bookkeeping, no I/O: the actors and the bridge wrap and unwrap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("membrane_rtc.ordering")

#: Past this many held messages on one channel, a lost message is presumed: skip the gap.
MAX_HELD = 10_000

#: Whether the actors of this process number what they send. The one switch: the bridge sets
#: it before its actor system starts; actor processes (multiprocTCPBase) are forked from the
#: server, or from its actors, so they inherit it.
_numbering = True


def set_numbering(on: bool) -> None:
    """Number actors' sends in this process (on: the base may re-order) or not."""
    global _numbering
    _numbering = on


def numbering() -> bool:
    """Whether actors created in this process number what they send."""
    return _numbering


def needs_numbering(system_base: str) -> bool:
    """Whether a Thespian base can re-order two messages between one pair: all but the
    in-process simpleSystemBase, which delivers in order on one thread."""
    return system_base != "simpleSystemBase"


@dataclass
class Sequenced:
    """Message number ``seq`` on ``channel`` (one sender's stream to one receiver)."""

    channel: str
    seq: int
    message: Any


class OrderedSender:
    """Numbers a sender's messages per receiver; ``numbered`` False passes them unwrapped."""

    def __init__(self, channel: str, numbered: bool = True) -> None:
        self.channel = channel
        self.numbered = numbered
        self._next: dict[str, int] = {}

    def wrap(self, receiver: str, message: Any) -> Any:
        """Wrap ``message`` for the receiver known by the key ``receiver``."""
        if not self.numbered:
            return message
        seq = self._next.get(receiver, 0)
        self._next[receiver] = seq + 1
        return Sequenced(self.channel, seq, message)

    def forget(self, receiver: str) -> None:
        """The receiver is gone: drop its counter."""
        self._next.pop(receiver, None)


class OrderedReceiver:
    """Releases each channel's messages in the order they were sent."""

    def __init__(self) -> None:
        self._expected: dict[str, int] = {}
        self._held: dict[str, dict[int, Any]] = {}

    def accept(self, item: Sequenced) -> list[Any]:
        """The messages ``item`` makes deliverable, in order (none if it came early)."""
        expected = self._expected.get(item.channel, 0)
        if item.seq < expected:
            return []  # a duplicate
        held = self._held.setdefault(item.channel, {})
        held[item.seq] = item.message
        if item.seq != expected:
            if len(held) <= MAX_HELD:
                return []
            expected = min(held)
            log.error("channel %s: message %d never came; skipping it", item.channel, expected)
        released = []
        while expected in held:
            released.append(held.pop(expected))
            expected += 1
        self._expected[item.channel] = expected
        if not held:
            del self._held[item.channel]
        return released

    def forget(self, channel: str) -> None:
        """The sender is gone: drop its state."""
        self._expected.pop(channel, None)
        self._held.pop(channel, None)
