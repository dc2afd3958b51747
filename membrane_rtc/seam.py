"""The seam between the gateway (sockets) and the runtime (actors): two small interfaces.

The gateway knows connections, HTTP and frames; the runtime knows rooms, peers and actors. They
meet here and nowhere else, so either side can be tested against a fake of the other, the way
``websockets`` tests its I/O adapters over its sans-I/O core.

Every connection is a ``conn_id`` the gateway chose. For each it calls :meth:`Runtime.connect`
once and, once it no longer holds that connection (refused, closed, cut off), exactly one
:meth:`Runtime.disconnected`. The runtime answers each ``connect`` with one
:meth:`ConnectionEvents.accept` or :meth:`ConnectionEvents.refuse`, then sends frames and may
close the connection. All calls happen on the gateway's event loop.
"""

from __future__ import annotations

from typing import Protocol

from .protocol import Message
from .room import AuthData

__all__ = ["Runtime", "ConnectionEvents", "READY_TIMEOUT"]

#: How long ``/readyz`` waits for the runtime to say whether the rooms can be reached
#: (seconds): the runtime's own question to the actors and the gateway's wait on it.
READY_TIMEOUT = 2.0


class Runtime(Protocol):
    """What the gateway asks of the runtime."""

    def connect(self, conn_id: int, room_name: str, auth: AuthData,
                resume_token: str | None = None, received: int | None = None) -> None:
        """A client asks to join ``room_name`` as ``auth.peer_id`` (its upgrade waits), or
        with ``resume_token`` to be again the peer that token was given to, having received
        ``received`` frames of its session (None: it does not say)."""

    def receive(self, conn_id: int, message: Message) -> None:
        """A decoded client message (``from`` already set to the client's peer id)."""

    def disconnected(self, conn_id: int, resumable: bool = False) -> None:
        """The gateway no longer holds this connection: the peer leaves its room, or if
        ``resumable`` (it dropped: no close from either side on purpose) may resume."""

    async def ready(self) -> bool:
        """Whether the rooms can be reached now (the actor system and its supervisor answer,
        and there is a room host): what ``/readyz`` says."""

    def backlog(self, conn_id: int | None = None) -> int:
        """Messages handed over and not yet taken in: all of them, or those for the room
        ``conn_id``'s messages go to. The gateway stops reading from a client while its room's
        (or the whole) backlog is high, so that a flood waits in TCP buffers, not in memory,
        and not in front of other rooms' messages."""

    def alive(self) -> bool:
        """Whether the runtime still runs (a quick, synchronous look: ``/healthz``). False
        when it is gone for good: the process should exit, for its supervisor to restart it."""

    async def detach(self) -> None:
        """The gateway is stopping: it takes no more connections."""


class ConnectionEvents(Protocol):
    """What the runtime tells the gateway; the gateway implements it."""

    def accept(self, conn_id: int, peer_id: str, idle_timeout: float | None,
               resumed: bool = False) -> None:
        """Upgrade the connection of peer ``peer_id`` (``resumed``: a member's, back after a
        drop; ``idle_timeout``: the peer's own, None for the server's)."""

    def refuse(self, conn_id: int, status: int, reason: str) -> None:
        """Answer the upgrade request with HTTP ``status`` instead."""

    def deliver(self, frames: list[tuple[int, bytes]]) -> None:
        """Write each encoded frame to its connection, in order."""

    def close(self, conn_id: int, code: int, reason: str, counted_as: str | None = None) -> None:
        """Close the connection after the frames delivered before; ``counted_as``: the
        refusal it is counted and logged as (e.g. ``join_refused``), if it is one."""

    def drain(self) -> None:
        """An operator asked for a drain (``membrane-rtc admin drain``): take no new clients,
        close the others after the drain timeout, then stop."""
