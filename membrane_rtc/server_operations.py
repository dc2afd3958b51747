"""The Python face of the operations: create, stop, restart and list rooms, kick a peer,
forward a message; each a request to the actors, a refusal raised as :class:`ServerError`."""

from __future__ import annotations

from typing import Any, Literal

from .config import DEFAULT_ROOM_CLASS
from .protocol import Message
from .runtime.bridge import ActorBridge
from .runtime.gateway_link import ActorRuntime
from .runtime.messages import Address, Reply, Request
from .runtime.messages.admin import (CreateRoom, ForwardMessage, KeptState, KickPeer, ListHosts,
                                     ListPeers, ListRooms, ReloadRoom, RestartRoom, StopRoom)
from .supervision import HostInfo, PeerInfo, RoomInfo

__all__ = ["ServerError", "ServerOperations", "ForwardStatus"]

#: What happened to a forwarded message: ``ok`` (delivered), ``no_such_peer`` (an addressee
#: is not in the room; nobody got it). Anything else about the room raises ServerError.
ForwardStatus = Literal["ok", "no_such_peer"]


class ServerError(RuntimeError):
    """An operation the actors refused (the message says why: unknown room, name taken...),
    or a room that crashed doing it."""


class ServerOperations:
    """The operations of :class:`~membrane_rtc.Server`, asked of its actors."""

    bridge: ActorBridge
    roles: frozenset[str]
    runtime: ActorRuntime | None

    async def _ask(self, request: Request, target: Address = None,
                   timeout: float = 10.0) -> Reply:
        """Ask an actor (by default the admin actor, where operations enter)."""
        reply = await self.bridge.ask(target or self.bridge.admin, request, timeout)
        if reply.error is not None:
            raise ServerError(reply.error)
        return reply

    async def create_room(self, name: str, room_class: str | type = DEFAULT_ROOM_CLASS,
                          options: Any = None) -> None:
        """Create a room and wait for its ``on_init``; raise ServerError if it cannot start."""
        await self._ask(CreateRoom(name, room_class, options))

    async def stop_room(self, name: str) -> None:
        """Stop a room on purpose (not restarted); its peers are told ``"Room closed"``."""
        await self._ask(StopRoom(name))

    async def restart_room(self, name: str) -> None:
        """Stop a room and start it afresh under the same name; wait until it serves again."""
        await self._ask(RestartRoom(name))

    async def reload_room(self, name: str) -> None:
        """:meth:`restart_room` for a code change (``--reload``); its peers are told so."""
        await self._ask(ReloadRoom(name))

    async def list_hosts(self) -> list[HostInfo]:
        """The room hosts and how many rooms each runs."""
        return list((await self._ask(ListHosts())).value)

    async def list_rooms(self) -> list[RoomInfo]:
        """The registry: every room with its class, state, peers and restart count."""
        return list((await self._ask(ListRooms())).value)

    async def list_peers(self, room: str) -> list[PeerInfo]:
        """The peers of a room."""
        return list((await self._ask(ListPeers(room))).value)

    async def kick_peer(self, room: str, peer_id: str) -> None:
        """Disconnect a peer (close 1000 ``kicked``); the room sees it leave."""
        await self._ask(KickPeer(room, peer_id))

    async def kept_state(self) -> dict[str, int]:
        """How much the runtime keeps, per table (supervisor, bridge, gateway side): the
        sizes must not grow with every room or connection that came and went."""
        kept: dict[str, int] = {}
        if "leader" in self.roles:  # first: what was told before has gone out once it answers
            kept.update((await self._ask(KeptState(), self.bridge.supervisor)).value)
        kept.update(self.bridge.kept())
        if self.runtime is not None:
            kept.update(self.runtime.kept())
        return kept

    async def forward_message(self, room: str, message: Message) -> ForwardStatus:
        """Have ``room`` forward ``message`` as if a peer sent it: ``ok`` (delivered) or
        ``no_such_peer`` (an addressee is not in the room; nobody got it). Raises ServerError
        for a room that does not exist, or that crashed forwarding it (it is then supervised
        as any crashed room)."""
        reply = await self._ask(ForwardMessage(message, room_name=room), self.bridge.supervisor)
        return reply.value  # type: ignore[no-any-return]
