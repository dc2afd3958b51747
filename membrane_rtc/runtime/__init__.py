"""The Thespian side: supervisor and room actors (hosting peers), their messages, the bridge.

Actors here hold no sockets; they only react to the messages in :mod:`.messages`.

The operators' tools (:mod:`membrane_rtc.ops`) use the runtime only through the names below
(``__all__``): the bridge to an actor system and its error, the admin actor and the requests
and replies it takes, and how a client joins a multi-process system (its address, its key).
They are loaded on first use: importing a request class does not load the actors, whose admin
actor itself reads the operations table (:mod:`membrane_rtc.ops.operations`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; at run time __getattr__ loads them
    from .admin_actor import AdminActor
    from .bridge import ActorBridge, ActorSystemError, port_in_use
    from .messages import (ADMIN_NAME, CreateRoom, KickPeer, ListHosts, ListPeers, ListRooms,
                           Reply, Request, RestartRoom, StopRoom)
    from .transport import advertise, authenticate

__all__ = ["ADMIN_NAME", "ActorBridge", "ActorSystemError", "AdminActor", "CreateRoom",
           "KickPeer", "ListHosts", "ListPeers", "ListRooms", "Reply", "Request", "RestartRoom",
           "StopRoom", "advertise", "authenticate", "port_in_use"]

#: Where the names above are looked for, the lighter modules first: a request class does not
#: load the bridge and the actors.
_MODULES = ("messages", "transport", "bridge", "admin_actor")


def __getattr__(name: str) -> Any:
    """Load one of the operators' names from its module when first asked for."""
    if name in __all__:
        for module in _MODULES:
            found = importlib.import_module(f".{module}", __name__)
            if hasattr(found, name):
                return getattr(found, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
