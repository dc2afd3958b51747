"""Adaptations of Thespian's TCP transport (the multi-process mode), kept in one place.

Where it listens: the one address it advertises, nothing more.

Thespian's TCP transport advertises one IP address per actor (``THESPIAN_BASE_IPADDR``) but
binds every actor socket - the admin port, the supervisor, each room - to all interfaces, and
it speaks pickle: anyone who reaches one of those ports can run code in the server. Thespian
has no setting for the bind address, so this module adapts it in one place: an address that
Thespian would bind on every interface binds the address it advertises instead.

Actor processes are forked from the server process, so the adaptation, made before the actor
system starts, holds in every one of them.

How the gateway sends: :class:`PipelinedSender` overlaps its sends.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from thespian.system.transport import TransmitIntent
from thespian.system.transport.IPBase import IPActorAddress, thisSystem

from .messages import Batch

__all__ = ["ACTOR_ADDRESS_VARIABLE", "DEFAULT_ACTOR_ADDRESS", "advertise", "bind_advertised_only",
           "PipelinedSender"]

#: Thespian's environment variable for the IP address actors advertise (and now bind).
ACTOR_ADDRESS_VARIABLE = "THESPIAN_BASE_IPADDR"
#: One machine: actor traffic stays on the loopback interface.
DEFAULT_ACTOR_ADDRESS = "127.0.0.1"

_thespian_bind_args = IPActorAddress.bindArgs


def _bind_args(self: Any) -> tuple[Any, ...]:
    """Thespian binds ``('', port)`` for addresses meant to be reached from outside; bind the
    advertised ``(ip, port)`` (``sockname``) instead."""
    if self.bindname[0] == "" and self.sockname[0]:
        return (self.sockname,)
    return _thespian_bind_args.fget(self)  # type: ignore[no-any-return]


def bind_advertised_only() -> None:
    """Make Thespian's TCP transport bind only the address it advertises (idempotent)."""
    IPActorAddress.bindArgs = property(_bind_args)


def advertise(address: str | None = None) -> str:
    """Set the IP address this process's actors advertise and listen on, and return it.

    ``address`` wins; else an operator's ``THESPIAN_BASE_IPADDR``; else 127.0.0.1. Set in the
    environment so that every actor process, and Thespian itself, sees the same one.
    """
    chosen = address or os.environ.get(ACTOR_ADDRESS_VARIABLE) or DEFAULT_ACTOR_ADDRESS
    os.environ[ACTOR_ADDRESS_VARIABLE] = chosen
    thisSystem.add_local_addr(chosen)  # Thespian read the variable once, at its import
    bind_advertised_only()
    return chosen


#: Bound on how long sends may stay unacknowledged, as Thespian bounds one ``tell``.
SEND_TIMEOUT = 10.0
#: How long one step of the transport may wait for acknowledgements before the sender looks
#: for new work again (seconds): the most a message waits behind sends still in flight.
SEND_STEP = 0.001


class PipelinedSender:
    """Sends through a multi-process ``ActorSystem`` handle without waiting for each send.

    ``ActorSystem.tell`` sends one message and waits for the receiver's acknowledgement before
    it returns, so everything queued meanwhile, for any actor, waits behind it. Here sends to
    different actors overlap, and each actor has one send in flight at a time: what comes for
    it meanwhile is gathered and goes as one :class:`~.messages.Batch` once that send is
    acknowledged - fast when messages come one at a time, batched when they come faster than
    an actor takes them. (Thespian's external handle has no public call for this; scheduling a
    ``TransmitIntent`` and running the transport are the two steps its own ``tell`` takes.)
    """

    def __init__(self, system: Any) -> None:
        self._base = system._systemBase
        #: Per receiver (its address key): messages waiting for its send in flight to end.
        self._waiting: dict[str, tuple[Any, list[Any]]] = {}
        self._in_flight: set[str] = set()
        self._failures: list[str] = []

    @property
    def busy(self) -> bool:
        """Sends are still in flight."""
        return bool(self._in_flight)

    def send(self, sends: list[tuple[Any, Any]]) -> None:
        """Send every ``(address, message)``, in order per receiver."""
        for target, message in sends:
            key = target.actorAddressString
            if key in self._in_flight:
                self._waiting.setdefault(key, (target, []))[1].append(message)
            else:
                self._transmit(key, target, message)

    def step(self, seconds: float = SEND_STEP) -> list[str]:
        """Run the transport for at most ``seconds``; return the sends that failed since."""
        if self._in_flight:
            self._base._run_transport(seconds, txonly=True)
        failures, self._failures = self._failures, []
        return failures

    def _transmit(self, key: str, target: Any, message: Any) -> None:
        self._in_flight.add(key)
        done = lambda result, intent: self._done(key, result, intent)  # noqa: E731
        self._base.transport.scheduleTransmit(None, TransmitIntent(
            target, message, onSuccess=done, onError=done,
            maxPeriod=timedelta(seconds=SEND_TIMEOUT)))

    def _done(self, key: str, result: Any, intent: Any) -> None:
        if not result:
            self._failures.append(f"{type(intent.message).__name__} to {intent.targetAddr}: "
                                  f"{result}")
        waiting = self._waiting.pop(key, None)
        if waiting is None:
            self._in_flight.discard(key)
            return
        target, messages = waiting
        self._transmit(key, target, messages[0] if len(messages) == 1 else Batch(messages))
