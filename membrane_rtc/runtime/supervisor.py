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
from typing import Any

from thespian.actors import ActorExitRequest, ActorTypeDispatcher, ChildActorExited

from ..loading import class_spec
from .messages import (
    Address,
    ClassRef,
    ConnectPeer,
    CreateRoom,
    ForwardMessage,
    ListRooms,
    PeerRefused,
    RegisterGateway,
    Reply,
    RoomClosed,
    RoomCrashed,
    RoomInfo,
    RoomStarted,
    StartRoom,
    StopAllRooms,
    StopRoom,
    UnregisterGateway,
)
from .room_actor import RoomActor, address_key

log = logging.getLogger("membrane_rtc.supervisor")

#: Elixir's supervisor defaults: 3 restarts within 5 seconds.
DEFAULT_MAX_RESTARTS = 3
DEFAULT_RESTART_WINDOW = 5.0

#: Details of "Room closed" for a room stopped on purpose (Elixir's exit reason ``:normal``).
STOPPED_REASON = "normal"


@dataclass
class RoomRecord:
    """The registry's row for one room name."""

    name: str
    room_class: ClassRef
    options: Any
    address: Address = None
    state: str = "starting"  # starting | running | stopping | failed
    restarts: int = 0
    recent_restarts: list[float] = field(default_factory=list)
    exit_reason: str | None = None  # why the current actor is exiting, once known
    last_reason: str | None = None  # why the previous actor exited, for the listing
    #: (asker, request_id) waiting for this room to start, or to stop.
    waiting: list[tuple[Address, int | None]] = field(default_factory=list)


class RoomSupervisor(ActorTypeDispatcher):
    """Owns every room actor. Found by the global name ``SUPERVISOR_NAME``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_restarts = DEFAULT_MAX_RESTARTS
        self.restart_window = DEFAULT_RESTART_WINDOW
        self.rooms: dict[str, RoomRecord] = {}
        self.names_by_actor: dict[str, str] = {}
        self.gateways: dict[str, Address] = {}
        self.stop_all_waiting: list[tuple[Address, int | None]] = []

    # -- gateways ----------------------------------------------------------------------------

    def receiveMsg_RegisterGateway(self, message: RegisterGateway, sender: Address) -> None:
        self.gateways[address_key(sender)] = sender
        self.send(sender, Reply(message.request_id))

    def receiveMsg_UnregisterGateway(self, message: UnregisterGateway, sender: Address) -> None:
        self.gateways.pop(address_key(sender), None)
        self.send(sender, Reply(message.request_id))

    def receiveMsg_ConnectPeer(self, message: ConnectPeer, sender: Address) -> None:
        record = self.rooms.get(message.room_name)
        if record is None or record.state not in ("starting", "running"):
            self.send(sender, PeerRefused(message.conn_id, 404, "no such room"))
            return
        message.gateway = sender
        self.send(record.address, message)

    def receiveMsg_ForwardMessage(self, message: ForwardMessage, sender: Address) -> None:
        record = self.rooms.get(message.room_name or "")
        if record is None or record.state not in ("starting", "running"):
            self.send(sender, Reply(message.request_id, error=f"no such room {message.room_name!r}"))
            return
        message.reply_to = sender
        self.send(record.address, message)

    # -- rooms -------------------------------------------------------------------------------

    def receiveMsg_CreateRoom(self, message: CreateRoom, sender: Address) -> None:
        existing = self.rooms.get(message.name)
        if existing is not None and existing.state != "failed":
            self.send(sender, Reply(message.request_id, error=f"room {message.name!r} exists"))
            return
        record = RoomRecord(message.name, message.room_class, message.options)
        record.waiting.append((sender, message.request_id))
        self.rooms[message.name] = record
        self._spawn(record)

    def _spawn(self, record: RoomRecord) -> None:
        record.address = self.createActor(RoomActor)
        record.state = "starting"
        record.exit_reason = None
        self.names_by_actor[address_key(record.address)] = record.name
        self.send(record.address, StartRoom(record.name, record.room_class, record.options))

    def _is_current(self, record: RoomRecord | None, sender: Address) -> bool:
        return record is not None and record.address is not None and record.address == sender

    def receiveMsg_RoomStarted(self, message: RoomStarted, sender: Address) -> None:
        record = self.rooms.get(message.name)
        if not self._is_current(record, sender) or record.state != "starting":
            return
        record.state = "running"
        self._answer(record, None)

    def receiveMsg_RoomCrashed(self, message: RoomCrashed, sender: Address) -> None:
        record = self.rooms.get(message.name)
        if self._is_current(record, sender):
            record.exit_reason = message.reason

    def receiveMsg_StopRoom(self, message: StopRoom, sender: Address) -> None:
        record = self.rooms.get(message.name)
        if record is None:
            self.send(sender, Reply(message.request_id, error=f"no such room {message.name!r}"))
            return
        if record.state == "failed":
            del self.rooms[message.name]
            self.send(sender, Reply(message.request_id))
            return
        record.waiting.append((sender, message.request_id))
        self._stop(record)

    def _stop(self, record: RoomRecord) -> None:
        if record.state != "stopping":
            record.state = "stopping"
            record.exit_reason = STOPPED_REASON
            self.send(record.address, ActorExitRequest())

    def receiveMsg_StopAllRooms(self, message: StopAllRooms, sender: Address) -> None:
        self.stop_all_waiting.append((sender, message.request_id))
        for record in list(self.rooms.values()):
            if record.state == "failed":
                del self.rooms[record.name]
            else:
                self._stop(record)
        self._check_all_stopped()

    def _check_all_stopped(self) -> None:
        if self.stop_all_waiting and not self.rooms:
            for asker, request_id in self.stop_all_waiting:
                self.send(asker, Reply(request_id))
            self.stop_all_waiting = []

    def receiveMsg_ListRooms(self, message: ListRooms, sender: Address) -> None:
        rooms = [RoomInfo(r.name, class_spec(r.room_class), r.state, r.restarts, r.last_reason)
                 for r in self.rooms.values()]
        self.send(sender, Reply(message.request_id, value=rooms))

    def _answer(self, record: RoomRecord, error: str | None) -> None:
        for asker, request_id in record.waiting:
            self.send(asker, Reply(request_id, error=error))
        record.waiting = []

    # -- supervision -------------------------------------------------------------------------

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender: Address) -> None:
        name = self.names_by_actor.pop(address_key(message.childAddress), None)
        record = self.rooms.get(name) if name is not None else None
        if record is None or record.address != message.childAddress:
            return
        reason = record.exit_reason or "room actor exited"
        record.last_reason = reason
        for gateway in self.gateways.values():
            self.send(gateway, RoomClosed(record.name, message.childAddress, reason))
        record.address = None
        if record.state == "stopping":
            log.info("room %s stopped", record.name)
            del self.rooms[record.name]
            self._answer(record, None)
            self._check_all_stopped()
            return
        now = time.monotonic()
        record.recent_restarts = [t for t in record.recent_restarts
                                  if now - t < self.restart_window]
        if len(record.recent_restarts) >= self.max_restarts:
            log.error("room %s failed: %d restarts within %.1f s (last reason: %s)",
                      record.name, len(record.recent_restarts), self.restart_window, reason)
            record.state = "failed"
            self._answer(record, f"room {record.name!r} failed: {reason}")
            return
        record.recent_restarts.append(now)
        record.restarts += 1
        log.warning("room %s exited (%s); restart %d", record.name, reason, record.restarts)
        self._spawn(record)
