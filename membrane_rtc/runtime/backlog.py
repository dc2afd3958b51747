"""What the event loop told the actors and their side has not taken in yet.

Counted per actor (:class:`Backlogs`: the gateway reads no more from clients whose room is
behind), and queued per actor (:class:`Queued`) until sent, each run as one numbered
:class:`~.messages.Batch`. The bridge counts; embedded rounds and multiproc's sending thread
queue and send.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from thespian.actors import ActorSystemMessage

from .messages import Address, batch_of
from .ordering import OrderedSender


class Backlog:
    """Messages for one actor told to the bridge and not yet taken in by the actors' side.
    ``told`` is counted on the event loop, ``taken`` on the bridge's sending thread: one writer
    each, so no lock (the event loop, the only reader, sees ``taken <= told``)."""

    __slots__ = ("key", "told", "taken")

    def __init__(self, key: str) -> None:
        self.key = key
        self.told = 0
        self.taken = 0


#: What the sending side credits once a send is over: its actor's backlog, and how many.
Token = tuple[Backlog, int]


class DropNumbering:
    """Queued after the sends to an actor that is gone: once those are out, the sending side
    drops its numbering towards it (in order: what was told it before still goes out
    numbered)."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


#: What the event loop queues for the sending side.
Item = tuple[Address, Any, Backlog] | DropNumbering


class Backlogs:
    """Per actor (address key), and in all: told and not yet taken in (see :class:`Backlog`).
    Backlogs of actors with nothing waiting are pruned as rooms come and go."""

    def __init__(self) -> None:
        self._by_key: dict[str, Backlog] = {}
        self._prune_at = 64
        self._told = 0  # event loop only
        self._taken = 0  # sending side only

    def __len__(self) -> int:
        return len(self._by_key)

    def told(self, key: str) -> Backlog:
        """One more message told to the actor ``key`` (event loop): its backlog."""
        backlog = self._by_key.get(key)
        if backlog is None:
            if len(self._by_key) >= self._prune_at:
                self._prune()
            backlog = self._by_key[key] = Backlog(key)
        backlog.told += 1
        self._told += 1
        return backlog

    def _prune(self) -> None:
        """Drop the backlogs of actors with nothing waiting (rooms come and go)."""
        self._by_key = {key: backlog for key, backlog in self._by_key.items()
                        if backlog.told != backlog.taken}
        self._prune_at = max(64, 2 * len(self._by_key))

    def credit(self, token: Token) -> None:
        """A send is over (taken in, or failed): its messages wait no more."""
        backlog, count = token
        backlog.taken += count
        self._taken += count

    def waiting(self, key: str | None = None) -> int:
        """Told and not yet taken in: all of them, or those for the actor ``key``."""
        if key is None:
            return self._told - self._taken
        backlog = self._by_key.get(key)
        return 0 if backlog is None else backlog.told - backlog.taken

    def drop_if_idle(self, key: str) -> None:
        """The actor ``key`` is gone: drop its backlog unless sends to it are still out."""
        backlog = self._by_key.get(key)
        if backlog is not None and backlog.told == backlog.taken:
            del self._by_key[key]


class Queued:
    """What the sending side took from the event loop and has not sent yet: per actor (per
    backlog), in the order it came. Sending side only."""

    def __init__(self) -> None:
        self._by_backlog: dict[Backlog, tuple[Address, deque[Any]]] = {}
        #: Actors gone whose numbering to drop once their queued sends are out.
        self._drop_numbering: list[str] = []

    def __bool__(self) -> bool:
        return bool(self._by_backlog)

    def add(self, items: list[Item]) -> None:
        by_backlog = self._by_backlog
        for item in items:
            if isinstance(item, DropNumbering):
                self._drop_numbering.append(item.key)
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
        if self._drop_numbering:
            waiting = {backlog.key for backlog in self._by_backlog}
            for key in [key for key in self._drop_numbering if key not in waiting]:
                order.forget(key)
                self._drop_numbering.remove(key)
        return sends
