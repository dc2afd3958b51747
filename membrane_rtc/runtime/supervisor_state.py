"""What the supervisor's parts share, declared once: the state ``RoomSupervisor`` keeps and
the methods each part calls on the others or on Thespian.

The supervisor is one actor written as several mixins (:mod:`.failover`,
:mod:`.supervisor_watch`, :mod:`.supervisor_routing`) that read one another's state; each
derives from :class:`SupervisorState` so that the type checker sees one declaration of it,
with one type, instead of one per part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..supervision import Liveness, Registry, RoomHosts, RoomRecord, RoomStatus
from .messages import Address
from .ordering import OrderedReceiver

__all__ = ["SupervisorState"]


class SupervisorState:
    """Annotations only (no behaviour): set by ``RoomSupervisor.__init__``, its
    configuration and ``Leading._init_leading``; defined by the part named."""

    registry: Registry
    rooms: dict[str, RoomRecord]  # the registry's, by name
    hosts: RoomHosts
    placed: bool  # rooms go to named hosts (a convention)
    local_host: str | None
    gateways: dict[str, Address]  # by address key
    gateway_heard: Liveness
    room_heard: Liveness
    left_convention: set[str]  # room hosts Thespian says have left (Leading's)
    events_to: Address
    auto_create: tuple[Any, Any] | None
    empty_timeout: float
    # Thespian's (and MembraneActor's).
    myAddress: Address
    ordered_in: OrderedReceiver
    send: Callable[[Address, Any], None]
    createActor: Callable[..., Address]
    wakeupAfter: Callable[..., None]
    receiveMessage: Callable[[Any, Address], None]
    answer: Callable[..., None]
    # The supervisor's own (supervisor.py).
    _spawn: Callable[[RoomRecord], None]
    _end: Callable[[RoomRecord, RoomStatus, str], None]
    _current: Callable[[str, Address], RoomRecord | None]
    _room_gone: Callable[..., None]
    # Watching's.
    _start_waiting: Callable[[], None]
    # Leading's.
    _host_joined: Callable[[str, str | None], None]
    _host_lost_for_now: Callable[[str], None]
    _host_silent: Callable[[str, float], bool]

    if TYPE_CHECKING:
        @property
        def leads(self) -> bool: ...  # Leading's
