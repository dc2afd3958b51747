"""The runtime's face for the operators' tools (:mod:`membrane_rtc.ops`): the bridge to an
actor system and its error, the admin actor and the requests and replies it takes, and how a
client joins a multi-process system (its address, its key). ``ops/`` imports these names from
here, not from the modules behind them, so those can change without touching the tools."""

from .admin_actor import AdminActor
from .bridge import ActorBridge, ActorSystemError, port_in_use
from .messages import ADMIN_NAME, Reply, Request
from .messages.admin import (CreateRoom, KickPeer, ListHosts, ListPeers, ListRooms, RestartRoom,
                             StopRoom)
from .transport import advertise, authenticate

__all__ = ["ADMIN_NAME", "ActorBridge", "ActorSystemError", "AdminActor", "CreateRoom",
           "KickPeer", "ListHosts", "ListPeers", "ListRooms", "Reply", "Request", "RestartRoom",
           "StopRoom", "advertise", "authenticate", "port_in_use"]
