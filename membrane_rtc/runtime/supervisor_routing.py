"""Where the supervisor sends what is for a room: a client's connection (to a room created
on demand for it, if need be, stopped once empty for a while), and the requests a room answers
itself.

Mixed into :class:`~.supervisor.RoomSupervisor`, whose state it reads.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ..names import may_auto_create
from ..supervision import RoomRecord, RoomStatus
from .messages import Address, Request
from .messages.admin import ForwardMessage, KickPeer, ListPeers
from .messages.gateway import ConnectPeer, RefuseConnection
from .supervisor_state import SupervisorState

__all__ = ["Routing", "EMPTY", "EMPTY_REASON"]

log = logging.getLogger("membrane_rtc.runtime.supervisor")  # one actor, four modules

#: Why an auto-created room stopped (its empty timeout), and its wakeups' payload tag.
EMPTY_REASON = "empty"
EMPTY = "membrane_rtc.empty"


class Routing(SupervisorState):
    """What is for a room, to its actor (mixed into RoomSupervisor, whose state it reads:
    :class:`~.supervisor_state.SupervisorState`)."""

    def receiveMsg_ConnectPeer(self, message: ConnectPeer, sender: Address) -> None:
        record = self.registry.serving(message.room_name)
        if record is None and self.auto_create is not None \
                and message.room_name not in self.rooms and may_auto_create(message.room_name):
            refusal = self.registry.refuse_create(message.room_name) \
                or self.registry.refuse_provisional()
            if refusal is not None:
                log.warning("no room created for a client: %s", refusal)
                self.send(message.gateway, RefuseConnection(message.conn_id, 503, "room limit"))
                return
            room_class, options = self.auto_create
            record = self.registry.add(message.room_name, room_class, options)
            record.auto = record.provisional = True
            log.info("room %s created on demand", record.name)
            self._spawn(record)
            record = self.registry.serving(message.room_name)  # None while it waits for a host
        if record is None:
            self.send(message.gateway, RefuseConnection(message.conn_id, 404, "no such room"))
            return
        self.send(record.address, message)

    # -- rooms on demand: an auto-created room stops once empty for a while ------------------

    def _watch_emptiness(self, record: RoomRecord) -> None:
        record.empty_spells += 1
        if record.idle_auto_room:
            self.wakeupAfter(timedelta(seconds=self.empty_timeout),
                             (EMPTY, record.name, record.empty_spells))

    def _empty_for_long(self, name: str, spell: int) -> None:
        record = self.rooms.get(name)
        if record is not None and record.idle_auto_room and record.empty_spells == spell:
            log.info("room %s stopped: empty for %g s", name, self.empty_timeout)
            self._end(record, RoomStatus.STOPPING, EMPTY_REASON)

    # -- requests a room answers itself ------------------------------------------------------

    def _pass_to_room(self, message: Request, room_name: str | None, sender: Address) -> None:
        record = self.registry.serving(room_name)
        if record is None:
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
