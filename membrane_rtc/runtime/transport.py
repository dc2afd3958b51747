"""Adaptations of Thespian's TCP transport (the multi-process mode), kept in one place.

Where it listens: the one address it advertises, nothing more.

Thespian's TCP transport advertises one IP address per actor (``THESPIAN_BASE_IPADDR``) but
binds every actor socket - the admin port, the supervisor, each room - to all interfaces, and
it speaks pickle: anyone who reaches one of those ports can run code in the server. Thespian
has no setting for the bind address, so this module adapts it in one place: an address that
Thespian would bind on every interface binds the address it advertises instead.

Actor processes are forked from the server process, so the adaptation, made before the actor
system starts, holds in every one of them.

How the gateway sends: :func:`tell_all` overlaps sends to several actors.
"""

from __future__ import annotations

import os
import time
from typing import Any

from thespian.system.transport.IPBase import IPActorAddress, thisSystem

__all__ = ["ACTOR_ADDRESS_VARIABLE", "DEFAULT_ACTOR_ADDRESS", "advertise", "bind_advertised_only",
           "tell_all"]

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
    IPActorAddress.bindArgs = property(_bind_args)  # type: ignore[method-assign,assignment]


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


#: Bound on one round of sends, as Thespian bounds one ``tell``.
SEND_ROUND_TIMEOUT = 10.0


def tell_all(system: Any, sends: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Send every ``(address, message)`` of a multi-process ``ActorSystem`` handle at once;
    return the sends that failed.

    ``ActorSystem.tell`` sends one message and waits for the receiver's acknowledgement before
    it returns, so a gateway sending to four rooms waited for each in turn. Here every
    transmit is scheduled first, then the handle's transport runs until all are acknowledged:
    sends to different actors overlap. (Thespian's external handle has no public call for
    this; these are the two steps its own ``tell`` takes.)
    """
    base = system._systemBase
    watches = [(base._tx_to_actor(target, message), (target, message))
               for target, message in sends]
    deadline = time.monotonic() + SEND_ROUND_TIMEOUT
    while base._run_transport(max(0.0, deadline - time.monotonic()), txonly=True):
        if time.monotonic() >= deadline:
            break
    return [send for watch, send in watches if watch.failed]
