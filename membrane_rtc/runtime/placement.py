"""Where actors run: Thespian capabilities for the roles, and the choice of a room host.

Every actor system of a membrane-rtc deployment declares what it is for with capabilities:
the convention leader (``LEADER``) holds the supervisor, the registry and the admin actor; a
room host (``ROOMS``, named by ``HOST``) runs room actors. One process running everything (the
embedded and the multi-process modes) simply declares all of them. Thespian then places each
actor on a system whose capabilities it accepts, forwarding a ``createActor`` through the
convention when the local system does not fit.
"""

from __future__ import annotations

import socket
from typing import Any

#: Capability of the system that holds the supervisor and the admin actor (one per deployment).
LEADER = "membrane-rtc leader"
#: Capability of a system that runs rooms; ``HOST`` names it (unique in the deployment).
ROOMS = "membrane-rtc rooms"
HOST = "membrane-rtc host"
#: The placement requirement the supervisor gives ``createActor`` for a room.
ON_HOST = "host"


def default_host_name(admin_port: int | None) -> str:
    """A room host's name when none is given: this machine and its admin port."""
    return f"{socket.gethostname()}:{admin_port}" if admin_port else socket.gethostname()


def capabilities_for(roles: set[str], host: str) -> dict[str, Any]:
    """The capabilities an actor system declares for ``roles`` (``leader``, ``rooms``)."""
    capabilities: dict[str, Any] = {}
    if "leader" in roles:
        capabilities[LEADER] = True
    if "rooms" in roles:
        capabilities[ROOMS] = True
        capabilities[HOST] = host
    return capabilities


def accepts_room(capabilities: dict[str, Any], requirements: dict[str, Any]) -> bool:
    """Thespian's placement test for a room actor: a room host, the one asked for if any."""
    if not capabilities.get(ROOMS):
        return False
    wanted = (requirements or {}).get(ON_HOST)
    return wanted is None or capabilities.get(HOST) == wanted
