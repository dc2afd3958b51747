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
before its actor system starts). Numbering state is kept per peer, and forgotten when the peer
ends (:meth:`OrderedSender.forget`, :meth:`OrderedReceiver.forget_origin`): rooms come and go.

Pure bookkeeping, no I/O: the actors and the bridge wrap and unwrap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)

#: Past this many held messages on one channel, a lost message is presumed: skip the gap.
MAX_HELD = 10_000
#: How long a forgotten channel's late messages are let through unordered (seconds): a room's
#: last messages may arrive after the news that it ended, which comes by another sender.
#: Numbering them from a fresh state would hold them forever.
LATE_FOR = 5.0

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
    """Message number ``seq`` on ``channel`` (one sender's stream to one receiver);
    ``origin`` names the sender as its receivers know it (its address key), to forget it by."""

    channel: str
    seq: int
    message: Any
    origin: str = ""


class OrderedSender:
    """Numbers a sender's messages per receiver; ``numbered`` False passes them unwrapped."""

    def __init__(self, channel: str, numbered: bool = True, origin: str = "") -> None:
        self.channel = channel
        self.numbered = numbered
        self.origin = origin
        self._next: dict[str, int] = {}

    @property
    def receivers(self) -> int:
        """How many receivers' counters are kept."""
        return len(self._next)

    def wrap(self, receiver: str, message: Any) -> Any:
        """Wrap ``message`` for the receiver known by the key ``receiver``."""
        if not self.numbered:
            return message
        seq = self._next.get(receiver, 0)
        self._next[receiver] = seq + 1
        return Sequenced(self.channel, seq, message, self.origin)

    def forget(self, receiver: str) -> None:
        """The receiver is gone: drop its counter."""
        self._next.pop(receiver, None)


class OrderedReceiver:
    """Releases each channel's messages in the order they were sent."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._expected: dict[str, int] = {}
        self._held: dict[str, dict[int, Any]] = {}
        self._channels: dict[str, set[str]] = {}  # by origin: its channels (incarnations)
        self._gone: dict[str, float] = {}  # channel -> when forgotten, oldest first
        self._clock = clock

    @property
    def channels(self) -> int:
        """How many channels' state is kept (expected numbers, held messages, origins, and
        forgotten channels for LATE_FOR seconds)."""
        self._expire()
        return len(self._expected.keys() | self._held.keys()) + len(self._channels) \
            + len(self._gone)

    def accept(self, item: Sequenced) -> list[Any]:
        """The messages ``item`` makes deliverable, in order (none if it came early)."""
        if self._gone and item.channel in self._gone:
            return [item.message]  # its sender is gone: late, nothing to keep it in order with
        expected = self._expected.get(item.channel, 0)
        if item.seq < expected:
            return []  # a duplicate
        if item.origin:
            self._channels.setdefault(item.origin, set()).add(item.channel)
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

    def forget_origin(self, origin: str) -> None:
        """The sender known as ``origin`` (an address key) is gone: drop all its channels.
        What still comes on them within LATE_FOR seconds is let through as it comes."""
        self._expire()
        now = self._clock()
        for channel in self._channels.pop(origin, ()):
            self.forget(channel)
            self._gone[channel] = now

    def _expire(self) -> None:
        limit = self._clock() - LATE_FOR
        gone = self._gone
        while gone:
            channel, when = next(iter(gone.items()))
            if when > limit:
                break
            del gone[channel]
