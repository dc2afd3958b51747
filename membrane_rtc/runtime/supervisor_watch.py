"""The supervisor's watch over room hosts and gateways: who joined, who answers its heartbeat,
and who is taken for lost (their rooms start again elsewhere, their peers leave).

Mixed into :class:`~.supervisor.RoomSupervisor`, whose state it reads. In a convention,
Thespian's own check-ins take minutes to notice a dead member (and more frequent ones made
live members flap), so the supervisor pings for itself.
"""

from __future__ import annotations

import logging

from thespian.actors import ActorSystemConventionUpdate

from ..supervision import HostInfo, RoomRecord, RoomStatus
from .actor import address_key
from .messages import Address
from .messages.admin import Drain, ListHosts
from .messages.gateway import (DrainGateway, GatewayPing, GatewayPong, RegisterGateway,
                               UnregisterGateway)
from .messages.rooms import GatewayLost, RoomPing, RoomPong
from .placement import HOST, INCARNATION, ROOMS
from .supervisor_state import SupervisorState

__all__ = ["Watching", "HEARTBEAT_INTERVAL", "HOST_SILENCE"]

log = logging.getLogger("membrane_rtc.runtime.supervisor")  # one actor, four modules

#: In a convention, every room on another host, and every gateway, is pinged this often
#: (seconds); a host none of whose rooms answered for HOST_SILENCE plus the callback time
#: limit is taken for lost, and so is a gateway silent for HOST_SILENCE.
HEARTBEAT_INTERVAL = 1.0
HOST_SILENCE = 3.0


class Watching(SupervisorState):
    """The room hosts and gateways part of the supervisor (mixed into RoomSupervisor, whose
    state it reads: :class:`~.supervisor_state.SupervisorState`)."""

    def receiveMsg_ActorSystemConventionUpdate(self, message: ActorSystemConventionUpdate,
                                               sender: Address) -> None:
        capabilities = message.remoteCapabilities or {}
        host = capabilities.get(HOST)
        if not capabilities.get(ROOMS) or not host:
            return  # a gateway-only system: nothing to place there
        if message.remoteAdded:
            log.info("room host %s joined", host)
            self._host_joined(host, capabilities.get(INCARNATION))
            self.hosts.add(host)
            self._start_waiting()
        else:
            # Thespian forgot it: a clean stop, minutes of silence, or (several leaders) a
            # registration anew. Once its directory is silent too it is lost, and not asked
            # again: Thespian says "joined" if it comes back.
            self.left_convention.add(host)
            if self._host_silent(host, HOST_SILENCE):
                log.warning("room host %s left the convention", host)
                self.hosts.remove(host)
                self._host_lost(host)

    def _start_waiting(self) -> None:
        """Start the rooms that wait for a room host (one has joined)."""
        if self.leads:
            for record in list(self.rooms.values()):
                if record.state == RoomStatus.WAITING:
                    self._spawn(record)

    def _check_hosts(self, silent_for: float) -> None:
        """Ping the rooms on other hosts; a host none of whose rooms answered, or whose
        directory did not, is lost. An adopted room silent alone has exited."""
        by_host: dict[str, list[RoomRecord]] = {}
        for record in list(self.rooms.values()):
            host = record.host
            if record.serving and host is not None and host != self.local_host:
                if record.adopted and self.room_heard.silent(record.name, silent_for) \
                        and not self._host_silent(host, HOST_SILENCE):
                    # Thespian tells only a room's parent of its exit: the predecessor.
                    self._room_gone(record, record.address,
                                    record.exit_reason or "room actor exited", crashed=True)
                    continue
                by_host.setdefault(host, []).append(record)
                self.send(record.address, RoomPing(record.name))
        lost = {host for host, records in by_host.items()
                if all(self.room_heard.silent(record.name, silent_for) for record in records)}
        lost |= {host for host in self.hosts.hosts if self._host_silent(host, silent_for)}
        for host in sorted(lost):
            log.warning("room host %s: no answer for %.0f s; taking it for lost",
                        host, silent_for)
            self.hosts.remove(host)
            self._host_lost(host)

    def receiveMsg_RoomPong(self, message: RoomPong, sender: Address) -> None:
        if self._current(message.name, sender) is not None:
            self.room_heard.heard(message.name)

    def _host_lost(self, host: str) -> None:
        """Its rooms went with it, their peers too: as after a crash their sockets close with
        "Room closed", and the rooms start again elsewhere (not counted as crashes)."""
        self._host_lost_for_now(host)
        for record in list(self.rooms.values()):
            if record.host == host and record.address is not None:
                self._room_gone(record, record.address, f"room host {host} lost", crashed=False)

    def receiveMsg_ListHosts(self, message: ListHosts, sender: Address) -> None:
        counts = self.registry.rooms_per_host()
        self.answer(message, sender, [HostInfo(host, counts.get(host, 0))
                                      for host in sorted(self.hosts.hosts)])

    # -- gateways ----------------------------------------------------------------------------

    def receiveMsg_RegisterGateway(self, message: RegisterGateway, sender: Address) -> None:
        gateway = message.reply_to or sender
        if message.holds_sockets:
            self.gateways[address_key(gateway)] = gateway
            self.gateway_heard.heard(address_key(gateway))
        self.answer(message, sender, gateway)

    def receiveMsg_UnregisterGateway(self, message: UnregisterGateway, sender: Address) -> None:
        key = address_key(message.reply_to or sender)
        self.gateways.pop(key, None)
        self.gateway_heard.forget(key)
        self.ordered_in.forget_origin(key)
        self.answer(message, sender)

    def receiveMsg_Drain(self, message: Drain, sender: Address) -> None:
        log.info("drain asked for: telling %d gateways", len(self.gateways))
        for gateway in self.gateways.values():
            self.send(gateway, DrainGateway())
        self.answer(message, sender)

    def receiveMsg_GatewayPong(self, message: GatewayPong, sender: Address) -> None:
        key = address_key(message.gateway)
        if key in self.gateways:
            self.gateway_heard.heard(key)

    def _check_gateways(self) -> None:
        """Ping the gateways; one silent too long is gone (its host died): the rooms let the
        peers behind it leave, as if their sockets had closed."""
        for key, gateway in list(self.gateways.items()):
            if self.gateway_heard.silent(key, HOST_SILENCE):
                log.warning("gateway %s: no answer for %.0f s; taking it for lost",
                            key, HOST_SILENCE)
                del self.gateways[key]
                self.gateway_heard.forget(key)
                self.ordered_in.forget_origin(key)
                for record in self.rooms.values():
                    if record.serving:
                        self.send(record.address, GatewayLost(gateway))
            else:
                self.send(gateway, GatewayPing())
