"""The room supervisor: creates room actors, keeps the name -> address registry, restarts them.

Semantics of an OTP one-for-one supervisor with Elixir's default budget: a room that dies
without being asked to is restarted under the same name with a fresh ``on_init``, at most
``max_restarts`` times within ``restart_window`` seconds; past that it is marked failed and
stays down. Every room exit is told to the gateways so they close that room's sockets.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from thespian.actors import (ActorSystemConventionUpdate, ChildActorExited, WakeupMessage,
                             requireCapability)

from ..loading import class_spec
from .actor import MembraneActor, address_key
from .messages import (
    Address,
    ClassRef,
    ConfigureSupervisor,
    ConnectPeer,
    CreateRoom,
    EndRoom,
    ForwardMessage,
    GatewayLost,
    GatewayPing,
    GatewayPong,
    HostInfo,
    KickPeer,
    ListHosts,
    ListPeers,
    ListRooms,
    PeerRefused,
    RegisterGateway,
    Request,
    RestartRoom,
    RoomClosed,
    RoomCrashed,
    RoomInfo,
    RoomOccupancy,
    RoomPing,
    RoomPong,
    RoomStarted,
    StartRoom,
    StopAllRooms,
    StopRoom,
    UnregisterGateway,
)
from .placement import HOST, LEADER, ON_HOST, ROOMS, RoomHosts
from .room_actor import RoomActor

log = logging.getLogger("membrane_rtc.supervisor")

#: Elixir's supervisor defaults: 3 restarts within 5 seconds.
DEFAULT_MAX_RESTARTS = 3
DEFAULT_RESTART_WINDOW = 5.0

#: Details of "Room closed" for a room stopped on purpose (Elixir's exit reason ``:normal``).
STOPPED_REASON = "normal"
RESTARTED_REASON = "restarted by operator"
#: The room host name of a supervisor that runs its rooms in its own system (one process).
LOCAL_HOST = "local"
#: In a convention, every room on another host, and every gateway, is pinged this often
#: (seconds); a host none of whose rooms answered for HOST_SILENCE plus the callback time
#: limit is taken for lost, and so is a gateway silent for HOST_SILENCE.
#: Thespian's own convention check-ins take minutes to notice a dead member (and more
#: frequent ones made live members flap here), so the supervisor watches for itself.
HEARTBEAT_INTERVAL = 1.0
HOST_SILENCE = 3.0

#: Room states in which it takes peers and messages.
SERVING = ("starting", "running")


@dataclass
class RoomRecord:
    """The registry's row for one room name."""

    name: str
    room_class: ClassRef
    options: Any
    address: Address = None
    state: str = "starting"  # starting | running | stopping | restarting | failed | waiting
    peers: int = 0
    pid: int | None = None
    restarts: int = 0
    host: str | None = None
    last_heard: float = 0.0  # monotonic time of the room actor's last sign of life
    recent_restarts: list[float] = field(default_factory=list)
    exit_reason: str | None = None  # why the current actor is exiting, once known
    last_reason: str | None = None  # why the previous actor exited, for the listing
    #: (request, sender) waiting for this room to be started, or stopped.
    waiting: list[tuple[Request, Address]] = field(default_factory=list)

    def info(self) -> RoomInfo:
        return RoomInfo(self.name, class_spec(self.room_class), self.state, self.peers,
                        self.restarts, self.last_reason, self.pid, self.host)


@requireCapability(LEADER)
class RoomSupervisor(MembraneActor):
    """Owns every room actor. Found by the global name ``SUPERVISOR_NAME``.

    Only the convention leader's actor system may run it: a gateway on another host that asks
    its own system for the global name is forwarded to the leader's, which knows the name.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_restarts = DEFAULT_MAX_RESTARTS
        self.restart_window = DEFAULT_RESTART_WINDOW
        self.max_rooms = 0
        self.max_peers_per_room = 0
        self.callback_timeout = 0.0
        # Until configured otherwise, rooms run in the supervisor's own actor system.
        self.hosts = RoomHosts({LOCAL_HOST})
        self.placed = False  # rooms go to named hosts (a convention), not just "anywhere"
        self.local_host: str | None = None
        self.rooms: dict[str, RoomRecord] = {}
        self.gateways: dict[str, Address] = {}
        self.gateway_heard: dict[str, float] = {}  # monotonic time of each one's last pong
        self.stop_all_waiting: list[tuple[Request, Address]] = []

    def receiveMsg_ConfigureSupervisor(self, message: ConfigureSupervisor,
                                       sender: Address) -> None:
        self.max_restarts = message.max_restarts
        self.restart_window = message.restart_window
        self.max_rooms = message.max_rooms
        self.max_peers_per_room = message.max_peers_per_room
        self.callback_timeout = message.callback_timeout
        if message.convention:
            self.placed = True
            self.local_host = message.local_host
            self.hosts = RoomHosts({message.local_host} if message.local_host else set())
            self.notifyOnSystemRegistrationChanges(True)
            self.wakeupAfter(timedelta(seconds=HEARTBEAT_INTERVAL), "heartbeat")
        elif message.local_host:
            self.hosts = RoomHosts({message.local_host})
        self.answer(message, sender)

    # -- room hosts --------------------------------------------------------------------------

    def receiveMsg_ActorSystemConventionUpdate(self, message: ActorSystemConventionUpdate,
                                               sender: Address) -> None:
        capabilities = message.remoteCapabilities or {}
        host = capabilities.get(HOST)
        if not capabilities.get(ROOMS) or not host:
            return  # a gateway-only system: nothing to place there
        if message.remoteAdded:
            log.info("room host %s joined", host)
            self.hosts.add(host)
            for record in self.rooms.values():
                if record.state == "waiting":
                    self._spawn(record)
        else:
            log.warning("room host %s left the convention", host)
            self.hosts.remove(host)
            self._host_lost(host)

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: Address) -> None:
        if message.payload != "heartbeat":
            return
        now = time.monotonic()
        silent_for = HOST_SILENCE + self.callback_timeout
        by_host: dict[str, list[RoomRecord]] = {}
        for record in self.rooms.values():
            if record.address is not None and record.host not in (None, self.local_host) \
                    and record.state in SERVING:
                by_host.setdefault(record.host, []).append(record)  # type: ignore[arg-type]
                self.send(record.address, RoomPing(record.name))
        for host, records in by_host.items():
            if all(now - record.last_heard > silent_for for record in records):
                log.warning("room host %s: no room answered for %.0f s; taking it for lost",
                            host, silent_for)
                self.hosts.remove(host)
                self._host_lost(host)
        self._check_gateways(now)
        self.wakeupAfter(timedelta(seconds=HEARTBEAT_INTERVAL), "heartbeat")

    def receiveMsg_RoomPong(self, message: RoomPong, sender: Address) -> None:
        record = self._current(message.name, sender)
        if record is not None:
            record.last_heard = time.monotonic()

    def _host_lost(self, host: str) -> None:
        """Its rooms went with it, their peers too: as after a crash their sockets close with
        "Room closed", and the rooms start again elsewhere (not counted as crashes)."""
        for record in list(self.rooms.values()):
            if record.host == host and record.address is not None:
                self._room_gone(record, record.address, f"room host {host} lost", crashed=False)

    def receiveMsg_ListHosts(self, message: ListHosts, sender: Address) -> None:
        counts = self._rooms_per_host()
        self.answer(message, sender, [HostInfo(host, counts.get(host, 0))
                                      for host in sorted(self.hosts.hosts)])

    def _rooms_per_host(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.rooms.values():
            if record.host is not None and record.address is not None:
                counts[record.host] = counts.get(record.host, 0) + 1
        return counts

    # -- gateways ----------------------------------------------------------------------------

    def receiveMsg_RegisterGateway(self, message: RegisterGateway, sender: Address) -> None:
        gateway = message.reply_to or sender
        if message.holds_sockets:
            self.gateways[address_key(gateway)] = gateway
            self.gateway_heard[address_key(gateway)] = time.monotonic()
        self.answer(message, sender, gateway)

    def receiveMsg_UnregisterGateway(self, message: UnregisterGateway, sender: Address) -> None:
        self.gateways.pop(address_key(message.reply_to or sender), None)
        self.gateway_heard.pop(address_key(message.reply_to or sender), None)
        self.answer(message, sender)

    def receiveMsg_GatewayPong(self, message: GatewayPong, sender: Address) -> None:
        key = address_key(message.gateway)
        if key in self.gateways:
            self.gateway_heard[key] = time.monotonic()

    def _check_gateways(self, now: float) -> None:
        """Ping the gateways; one silent too long is gone (its host died): the rooms end the
        peers behind it, as if their sockets had closed."""
        for key, gateway in list(self.gateways.items()):
            if now - self.gateway_heard.get(key, now) > HOST_SILENCE:
                log.warning("gateway %s: no answer for %.0f s; taking it for lost",
                            key, HOST_SILENCE)
                del self.gateways[key]
                self.gateway_heard.pop(key, None)
                for record in self.rooms.values():
                    if record.address is not None and record.state in SERVING:
                        self.send(record.address, GatewayLost(gateway))
            else:
                self.send(gateway, GatewayPing())

    def receiveMsg_ConnectPeer(self, message: ConnectPeer, sender: Address) -> None:
        record = self.rooms.get(message.room_name)
        if record is None or record.state not in SERVING:
            self.send(message.gateway, PeerRefused(message.conn_id, 404, "no such room"))
            return
        self.send(record.address, message)

    # -- requests a room answers itself ------------------------------------------------------

    def _pass_to_room(self, message: Request, room_name: str | None, sender: Address) -> None:
        record = self.rooms.get(room_name or "")
        if record is None or record.state not in SERVING:
            self.answer(message, sender, error=f"no such room {room_name!r}")
            return
        message.reply_to = message.reply_to or sender
        self.send(record.address, message)

    def receiveMsg_ForwardMessage(self, message: ForwardMessage, sender: Address) -> None:
        self._pass_to_room(message, message.room_name, sender)

    def receiveMsg_ListPeers(self, message: ListPeers, sender: Address) -> None:
        self._pass_to_room(message, message.room, sender)

    def receiveMsg_KickPeer(self, message: KickPeer, sender: Address) -> None:
        self._pass_to_room(message, message.room, sender)

    # -- rooms -------------------------------------------------------------------------------

    def receiveMsg_CreateRoom(self, message: CreateRoom, sender: Address) -> None:
        existing = self.rooms.get(message.name)
        if existing is not None and existing.state != "failed":
            self.answer(message, sender, error=f"room {message.name!r} exists")
            return
        if existing is None and self.max_rooms and len(self.rooms) >= self.max_rooms:
            log.warning("refused to create room %r: %d rooms is the limit",
                        message.name, self.max_rooms)
            self.answer(message, sender,
                        error=f"cannot create room {message.name!r}: the server's limit of "
                              f"{self.max_rooms} rooms is reached")
            return
        record = RoomRecord(message.name, message.room_class, message.options)
        record.waiting.append((message, sender))
        self.rooms[message.name] = record
        self._spawn(record)

    def _spawn(self, record: RoomRecord) -> None:
        host = self.hosts.least_loaded(self._rooms_per_host())
        if host is None:
            # No room host (yet): Thespian would wait forever for one. Wait here instead,
            # visibly; a host joining starts it.
            log.warning("room %s waits for a room host", record.name)
            record.state, record.host, record.address, record.pid = "waiting", None, None, None
            self._answer_waiting(record, None)  # created (or restarted): it starts on a host
            return
        record.host = host
        record.last_heard = time.monotonic()  # starting counts as a sign of life
        record.address = self.createActor(
            RoomActor, targetActorRequirements={ON_HOST: host} if self.placed else None)
        record.state = "starting"
        record.exit_reason = None
        record.peers = 0
        record.pid = None
        self.send(record.address, StartRoom(record.name, record.room_class, record.options,
                                            self.max_peers_per_room, self.callback_timeout))

    def _current(self, name: str, sender: Address) -> RoomRecord | None:
        """The record of room ``name`` if ``sender`` is its current actor (not a late one)."""
        record = self.rooms.get(name)
        if record is None or record.address is None or record.address != sender:
            return None
        return record

    def receiveMsg_RoomStarted(self, message: RoomStarted, sender: Address) -> None:
        record = self._current(message.name, sender)
        if record is None or record.state != "starting":
            return
        record.state = "running"
        record.pid = message.pid
        self._answer_waiting(record, None)

    def receiveMsg_RoomOccupancy(self, message: RoomOccupancy, sender: Address) -> None:
        record = self._current(message.name, sender)
        if record is not None:
            record.peers = message.peers

    def receiveMsg_RoomCrashed(self, message: RoomCrashed, sender: Address) -> None:
        record = self._current(message.name, sender)
        if record is not None:
            record.exit_reason = message.reason

    def receiveMsg_StopRoom(self, message: StopRoom, sender: Address) -> None:
        record = self.rooms.get(message.name)
        if record is None:
            self.answer(message, sender, error=f"no such room {message.name!r}")
            return
        if record.state == "failed":
            del self.rooms[message.name]
            self.answer(message, sender)
            return
        record.waiting.append((message, sender))
        self._end(record, "stopping", STOPPED_REASON)

    def receiveMsg_RestartRoom(self, message: RestartRoom, sender: Address) -> None:
        record = self.rooms.get(message.name)
        if record is None:
            self.answer(message, sender, error=f"no such room {message.name!r}")
            return
        record.waiting.append((message, sender))
        if record.state == "failed":  # an operator may bring a failed room back
            record.recent_restarts = []
            record.restarts += 1
            self._spawn(record)
            return
        self._end(record, "restarting", RESTARTED_REASON)

    def _end(self, record: RoomRecord, state: str, reason: str) -> None:
        """Ask a room's actor to exit; ChildActorExited finishes the job."""
        if record.address is None:  # waiting for a host: nothing runs
            if state == "stopping":
                del self.rooms[record.name]
                self._answer_waiting(record, None)
                self._check_all_stopped()
            return
        if record.state in ("stopping", "restarting"):  # already on its way out
            if state == "stopping":  # a stop overrides a pending restart
                record.state, record.exit_reason = state, reason
            return
        record.state = state
        record.exit_reason = reason
        self.send(record.address, EndRoom())

    def receiveMsg_StopAllRooms(self, message: StopAllRooms, sender: Address) -> None:
        self.stop_all_waiting.append((message, sender))
        for record in list(self.rooms.values()):
            if record.state == "failed":
                del self.rooms[record.name]
            else:
                self._end(record, "stopping", STOPPED_REASON)
        self._check_all_stopped()

    def _check_all_stopped(self) -> None:
        if self.stop_all_waiting and not self.rooms:
            for request, asker in self.stop_all_waiting:
                self.answer(request, asker)
            self.stop_all_waiting = []

    def receiveMsg_ListRooms(self, message: ListRooms, sender: Address) -> None:
        self.answer(message, sender, [record.info() for record in self.rooms.values()])

    def _answer_waiting(self, record: RoomRecord, error: str | None) -> None:
        for request, asker in record.waiting:
            self.answer(request, asker, error=error)
        record.waiting = []

    # -- supervision -------------------------------------------------------------------------

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Address) -> None:
        # Compare addresses with ==, never by their strings: in the multi-process bases the
        # address createActor returned is a local stand-in whose string changes once the
        # child is up; Thespian's equality knows both forms.
        record = next((r for r in self.rooms.values()
                       if r.address is not None and r.address == message.childAddress), None)
        if record is None:
            return
        # A room that crashed or was stopped said why; one that did not say was killed
        # (kill -9, out of memory...).
        self._room_gone(record, message.childAddress, record.exit_reason or "room actor exited",
                        crashed=True)

    def _room_gone(self, record: RoomRecord, address: Address, reason: str,
                   crashed: bool) -> None:
        """A room's actor is gone: its gateways close its sockets, then the room is deleted
        (stopped on purpose), started again (restarted, or its host lost), or restarted within
        its budget (``crashed``)."""
        record.last_reason = reason
        for gateway in self.gateways.values():
            self.send(gateway, RoomClosed(record.name, address, reason))
        record.address = None
        record.pid = None
        record.peers = 0
        if record.state == "stopping":
            log.info("room %s stopped", record.name)
            del self.rooms[record.name]
            self._answer_waiting(record, None)
            self._check_all_stopped()
        elif record.state == "restarting" or not crashed:
            log.info("room %s starting again (%s)", record.name, reason)
            record.restarts += 1
            self._spawn(record)
        else:
            self._restart_after_crash(record, reason)

    def _restart_after_crash(self, record: RoomRecord, reason: str) -> None:
        now = time.monotonic()
        record.recent_restarts = [t for t in record.recent_restarts
                                  if now - t < self.restart_window]
        if len(record.recent_restarts) >= self.max_restarts:
            log.error("room %s failed: %d restarts within %.1f s (last reason: %s)",
                      record.name, len(record.recent_restarts), self.restart_window, reason)
            record.state = "failed"
            self._answer_waiting(record, f"room {record.name!r} failed: {reason}")
            return
        record.recent_restarts.append(now)
        record.restarts += 1
        log.warning("room %s exited (%s); restart %d", record.name, reason, record.restarts)
        self._spawn(record)
