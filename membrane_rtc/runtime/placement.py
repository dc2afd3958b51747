"""Where actors run: the Thespian capabilities each role declares, and the placement tests
that send an actor to a system that fits.

Every actor system of a membrane-rtc deployment declares what it is for with capabilities:
the convention leader (``LEADER``) holds the supervisor, the registry and the admin actor; a
room host (``ROOMS``, named by ``HOST``) runs room actors. One process running everything (the
embedded and the multi-process modes) simply declares all of them. Thespian then places each
actor on a system whose capabilities it accepts, forwarding a ``createActor`` through the
convention when the local system does not fit. Which room host a room goes to the supervisor
chooses (:meth:`membrane_rtc.supervision.RoomHosts.least_loaded`); this module only says how
to ask for it (``ON_HOST``).
"""

from __future__ import annotations

import socket
import uuid
from typing import Any, Collection, Sequence

from ..config_checks import convention_address

#: Capability of the system that holds the supervisor and the admin actor (one per deployment).
LEADER = "membrane-rtc leader"
#: Capability of a system that runs rooms; ``HOST`` names it (unique in the deployment).
ROOMS = "membrane-rtc rooms"
HOST = "membrane-rtc host"
#: The placement requirement the supervisor gives ``createActor`` for a room.
ON_HOST = "host"
#: Capability of a leader's system among several: its own convention address (``HOST:PORT``);
#: also the requirement that places an actor on that leader's system.
LEADER_AT = "membrane-rtc leader at"
#: Capability a room host's directory changes to make its system register again with every
#: leader (see :class:`~.messages.leaders.Rejoin`).
REJOINED = "membrane-rtc rejoined"
#: Capability of a room host: a token new at each start, so that what names a host's actors
#: (its directory's global name) never points at an earlier run of the same host name.
INCARNATION = "membrane-rtc incarnation"
#: Thespian's capability naming the convention leader(s) a system joins (``(host, port)``,
#: or a list of them with several leaders).
CONVENTION_ADDRESS = "Convention Address.IPv4"


def default_host_name(admin_port: int | None) -> str:
    """A room host's name when none is given: this machine and its admin port."""
    return f"{socket.gethostname()}:{admin_port}" if admin_port else socket.gethostname()


def capabilities_for(roles: Collection[str], host: str, leaders: Sequence[str] = (),
                     own_leader: str | None = None) -> dict[str, Any]:
    """The capabilities an actor system declares for ``roles`` (``leader``, ``rooms``) and the
    convention it joins: ``leaders`` (``HOST:PORT``, none: no convention), ``own_leader`` this
    leader's own address among them (it asks for ``LEADER_AT`` only when there are several)."""
    capabilities: dict[str, Any] = {}
    if "leader" in roles:
        capabilities[LEADER] = True
        if own_leader is not None and len(leaders) > 1:
            capabilities[LEADER_AT] = own_leader
    if "rooms" in roles:
        capabilities[ROOMS] = True
        capabilities[HOST] = host
    if leaders:
        if "rooms" in roles:
            capabilities[INCARNATION] = incarnation()
        addresses = [convention_address(text) for text in leaders]
        capabilities[CONVENTION_ADDRESS] = addresses[0] if len(addresses) == 1 else addresses
    return capabilities


def incarnation() -> str:
    """A room host's :data:`INCARNATION`: new at each start."""
    return uuid.uuid4().hex[:12]


def accepts_leader(capabilities: dict[str, Any], requirements: dict[str, Any]) -> bool:
    """Thespian's placement test for the supervisor and the admin actor: a leader's system,
    the one asked for (``LEADER_AT``) if any."""
    if not capabilities.get(LEADER):
        return False
    wanted = (requirements or {}).get(LEADER_AT)
    return wanted is None or capabilities.get(LEADER_AT) == wanted


def directory_name(host: str, incarnation: str | None) -> str:
    """The global name of room host ``host``'s directory (one per run of the host)."""
    return f"membrane_rtc.RoomDirectory@{host}#{incarnation or ''}"


def accepts_room(capabilities: dict[str, Any], requirements: dict[str, Any]) -> bool:
    """Thespian's placement test for a room actor: a room host, the one asked for if any."""
    if not capabilities.get(ROOMS):
        return False
    wanted = (requirements or {}).get(ON_HOST)
    return wanted is None or capabilities.get(HOST) == wanted
