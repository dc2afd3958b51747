"""Where the multi-process actor system listens: the one address it advertises, nothing more.

Thespian's TCP transport advertises one IP address per actor (``THESPIAN_BASE_IPADDR``) but
binds every actor socket - the admin port, the supervisor, each room - to all interfaces, and
it speaks pickle: anyone who reaches one of those ports can run code in the server. Thespian
has no setting for the bind address, so this module adapts it in one place: an address that
Thespian would bind on every interface binds the address it advertises instead.

Actor processes are forked from the server process, so the adaptation, made before the actor
system starts, holds in every one of them.
"""

from __future__ import annotations

import os
from typing import Any

from thespian.system.transport.IPBase import IPActorAddress, thisSystem

__all__ = ["ACTOR_ADDRESS_VARIABLE", "DEFAULT_ACTOR_ADDRESS", "advertise", "bind_advertised_only"]

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
