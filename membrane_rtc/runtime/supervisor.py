"""The room supervisor: creates room actors, keeps the name -> address registry, restarts them.

Semantics of an OTP one-for-one supervisor with Elixir's default budget: a room that dies
without being asked to is restarted under the same name with a fresh ``on_init``, at most
``max_restarts`` times within ``restart_window`` seconds; past that it is marked failed and
stays down. Every room exit is told to the gateways so they close that room's sockets.

The rules themselves are plain state in :mod:`membrane_rtc.supervision`; this actor applies
them.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from thespian.actors import ActorExitRequest, ChildActorExited, WakeupMessage

from ..events import EventKind, new_event
from ..sessions import SessionSettings
from ..supervision import (CRASH_DETAILS, AfterExit, Liveness, Registry, RoomHosts, RoomRecord,
                           RoomStatus)
from .actor import MembraneActor, address_key
from .supervisor_routing import EMPTY, EMPTY_REASON, Routing
from .failover import RELAY_LIFE, Leading
from .messages import SUPERVISOR_NAME, Address, Request
from .messages.admin import (ConfigureSupervisor, CreateRoom, KeptState, ListRooms, ReloadRoom,
                             RestartRoom, StopAllRooms, StopRoom)
from .messages.gateway import RoomClosed
from .messages.leaders import SupervisorBeat
from .messages.rooms import EndRoom, Event, RoomCrashed, RoomOccupancy, RoomStarted, StartRoom
from .placement import ON_HOST, accepts_leader
from .room_actor import RoomActor
from .supervisor_watch import HEARTBEAT_INTERVAL, HOST_SILENCE, Watching

log = logging.getLogger("membrane_rtc.runtime.supervisor")  # one actor, four modules

#: Details of "Room closed" for a room stopped on purpose (Elixir's exit reason ``:normal``).
STOPPED_REASON = "normal"
RESTARTED_REASON = "restarted by operator"
#: ... and for a code change (``serve --reload``).
RELOADED_REASON = "restarted for a code change"
#: The room host name of a supervisor that runs its rooms in its own system (one process).
LOCAL_HOST = "local"


class RoomSupervisor(Leading, Watching, Routing, MembraneActor):
    """Owns every room actor. Found by the global name ``SUPERVISOR_NAME``.

    Only a convention leader's actor system may run it: a gateway on another host that asks
    its own system for the global name is forwarded to a leader's, which knows the name.
    With several leaders, each runs one; one leads (see :mod:`.failover`). Its other parts:
    the room hosts and gateways it watches (:mod:`.supervisor_watch`), what it passes to a room
    (:mod:`.supervisor_routing`).
    """

    actorSystemCapabilityCheck = staticmethod(accepts_leader)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_leading()
        self.registry = Registry()  # configured by ConfigureSupervisor
        self.rooms = self.registry.rooms
        self.max_peers_per_room = 0
        self.expose_errors = False
        self.callback_timeout = 0.0
        self.sessions = SessionSettings()
        self.events_to: Address = None  # the webhooks' process, when there are webhooks
        self.auto_create: tuple[Any, Any] | None = None
        self.empty_timeout = 0.0
        # Until configured otherwise, rooms run in the supervisor's own actor system.
        self.hosts = RoomHosts({LOCAL_HOST})
        self.placed = False  # rooms go to named hosts (a convention), not just "anywhere"
        self.local_host: str | None = None
        self.room_heard = Liveness()  # by room name: rooms on other hosts answer pings
        self.gateways: dict[str, Address] = {}
        self.gateway_heard = Liveness()  # by address key
        self.stop_all_waiting: list[tuple[Request, Address]] = []

    def receiveMsg_ConfigureSupervisor(self, message: ConfigureSupervisor,
                                       sender: Address) -> None:
        self.registry.max_restarts = message.max_restarts
        self.registry.restart_window = message.restart_window
        self.registry.max_rooms = message.max_rooms
        self.max_peers_per_room = message.max_peers_per_room
        self.expose_errors = message.expose_errors
        self.callback_timeout = message.callback_timeout
        self.sessions = message.sessions
        self.events_to = message.events_to
        self.auto_create = message.auto_create
        self.empty_timeout = message.empty_timeout
        if message.convention:
            self.placed = True
            self.local_host = message.local_host
            self.hosts = RoomHosts({message.local_host} if message.local_host else set())
            self.notifyOnSystemRegistrationChanges(True)
            self.wakeupAfter(timedelta(seconds=HEARTBEAT_INTERVAL), "heartbeat")
        elif message.local_host:
            self.hosts = RoomHosts({message.local_host})
        self.answer(message, sender)

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: Address) -> None:
        if isinstance(message.payload, tuple) and message.payload[0] == EMPTY:
            self._empty_for_long(*message.payload[1:])
            return
        if message.payload != "heartbeat":
            return
        self.wakeupAfter(timedelta(seconds=HEARTBEAT_INTERVAL), "heartbeat")
        self._leaders_heartbeat()
        if not self.leads:
            return  # the one that leads watches the hosts and gateways
        self._check_hosts(HOST_SILENCE + self.callback_timeout)
        self._check_gateways()
        self._ask_directories()

    def _event(self, kind: EventKind, room: str, **fields: Any) -> None:
        """Report a room event to the webhooks' process, if there is one."""
        if self.events_to is not None:
            self.send(self.events_to, Event(new_event(kind, room, **fields)))

    def receiveMsg_KeptState(self, message: KeptState, sender: Address) -> None:
        self.answer(message, sender, {
            "supervisor.rooms": len(self.rooms),
            "supervisor.room_heard": len(self.room_heard),
            "supervisor.gateways": len(self.gateways),
            "supervisor.gateway_heard": len(self.gateway_heard),
            "supervisor.ordering_in": self.ordered_in.channels,
            "supervisor.ordering_out": self.ordered_out.receivers,
            "supervisor.stop_all_waiting": len(self.stop_all_waiting)})

    # -- rooms -------------------------------------------------------------------------------

    def receiveMsg_CreateRoom(self, message: CreateRoom, sender: Address) -> None:
        refusal = self.registry.refuse_create(message.name)
        if refusal is not None:
            log.warning("refused to create room %r: %s", message.name, refusal)
            self.answer(message, sender, error=refusal)
            return
        record = self.registry.add(message.name, message.room_class, message.options)
        record.waiting.append((message, sender))
        self._spawn(record)

    def _spawn(self, record: RoomRecord) -> None:
        host = self.hosts.least_loaded(self.registry.rooms_per_host())
        if host is None:
            # No room host (yet): Thespian would wait forever for one. Wait here instead,
            # visibly; a host joining starts it.
            log.warning("room %s waits for a room host", record.name)
            record.state, record.host, record.address, record.pid = \
                RoomStatus.WAITING, None, None, None
            self._answer_waiting(record, None)  # created (or restarted): it starts on a host
            return
        record.host = host
        self.room_heard.heard(record.name)  # starting counts as a sign of life
        record.address = self.createActor(
            RoomActor, targetActorRequirements={ON_HOST: host} if self.placed else None)
        record.state = RoomStatus.STARTING
        record.exit_reason, record.crashed = None, False
        record.peers = 0
        record.pid = None
        self.send(record.address, StartRoom(record.name, record.room_class, record.options,
                                            self.max_peers_per_room, self.callback_timeout,
                                            self.sessions, self.events_to))

    def _current(self, name: str, sender: Address) -> RoomRecord | None:
        """The record of room ``name`` if ``sender`` is its current actor (not a late one)."""
        record = self.rooms.get(name)
        if record is None or record.address is None or record.address != sender:
            return None
        return record

    def receiveMsg_RoomStarted(self, message: RoomStarted, sender: Address) -> None:
        record = self._current(message.name, sender)
        if record is None or record.state != RoomStatus.STARTING:
            return
        record.state = RoomStatus.RUNNING
        record.pid = message.pid
        self._note_room(record, sender)
        self._answer_waiting(record, None)
        self._watch_emptiness(record)

    def receiveMsg_RoomOccupancy(self, message: RoomOccupancy, sender: Address) -> None:
        record = self._current(message.name, sender)
        if record is not None:
            record.peers = message.peers
            if record.provisional and message.peers == 0:
                # The client it was made for was refused: it ends now, not after the empty
                # timeout, and its name is free again.
                log.info("room %s stopped: created on demand, its first client was refused",
                         record.name)
                self._end(record, RoomStatus.STOPPING, EMPTY_REASON)
                return
            record.provisional = False
            self._watch_emptiness(record)

    def receiveMsg_RoomCrashed(self, message: RoomCrashed, sender: Address) -> None:
        record = self._current(message.name, sender)
        if record is not None:
            record.exit_reason, record.crashed = message.reason, True

    def receiveMsg_StopRoom(self, message: StopRoom, sender: Address) -> None:
        record = self.rooms.get(message.name)
        if record is None:
            self.answer(message, sender, error=f"no such room {message.name!r}")
            return
        if record.state == RoomStatus.FAILED:
            del self.rooms[message.name]
            self.answer(message, sender)
            return
        record.waiting.append((message, sender))
        self._end(record, RoomStatus.STOPPING, STOPPED_REASON)

    def receiveMsg_RestartRoom(self, message: RestartRoom, sender: Address) -> None:
        record = self.rooms.get(message.name)
        if record is None:
            self.answer(message, sender, error=f"no such room {message.name!r}")
            return
        record.waiting.append((message, sender))
        if record.state == RoomStatus.FAILED:  # an operator may bring a failed room back
            record.budget.reset()
            record.restarts += 1
            self._spawn(record)
            return
        self._end(record, RoomStatus.RESTARTING,
                  RELOADED_REASON if isinstance(message, ReloadRoom) else RESTARTED_REASON)

    def _end(self, record: RoomRecord, state: RoomStatus, reason: str) -> None:
        """Ask a room's actor to exit; ChildActorExited finishes the job."""
        if record.address is None:  # waiting for a host: nothing runs
            if state == RoomStatus.STOPPING:
                del self.rooms[record.name]
                self._answer_waiting(record, None)
                self._check_all_stopped()
            return
        if record.state in (RoomStatus.STOPPING, RoomStatus.RESTARTING):  # on its way out
            if state == RoomStatus.STOPPING:  # a stop overrides a pending restart
                record.state, record.exit_reason = state, reason
            return
        record.state = state
        record.exit_reason = reason
        self.send(record.address, EndRoom())

    def receiveMsg_StopAllRooms(self, message: StopAllRooms, sender: Address) -> None:
        if not self.leads:  # a leader standing by stops: the rooms are not its to stop
            self.answer(message, sender)
            return
        self.stop_all_waiting.append((message, sender))
        for record in list(self.rooms.values()):
            if record.state == RoomStatus.FAILED:
                del self.rooms[record.name]
            else:
                self._end(record, RoomStatus.STOPPING, STOPPED_REASON)
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
        record = self.registry.find(message.childAddress)
        if record is None:
            return
        if self.leadership is not None and self._on_other_host(record.host) \
                and not record.crashed \
                and record.state not in (RoomStatus.STOPPING, RoomStatus.RESTARTING):
            # With several leaders, Thespian says so too when a room host registers anew with
            # this leader's system (it forgets what it made there, see Rejoin): the room's
            # own silence decides.
            record.adopted = True
            return
        # A room that crashed or was stopped said why; one that did not say was killed
        # (kill -9, out of memory...).
        self._room_gone(record, message.childAddress, record.exit_reason or "room actor exited",
                        crashed=True)

    def _room_gone(self, record: RoomRecord, address: Address, reason: str,
                   crashed: bool) -> None:
        """A room's actor is gone: its gateways close its sockets, then the registry says
        whether the room is forgotten, started again, or failed."""
        told = CRASH_DETAILS if record.crashed and not self.expose_errors else reason
        self._forget_room(record)
        record.adopted = False
        for gateway in self.gateways.values():
            self.send(gateway, RoomClosed(record.name, address, told))
        self.room_heard.forget(record.name)
        # What this incarnation sent numbered is in; a next one numbers afresh.
        self.ordered_in.forget_origin(address_key(address))
        on_purpose = record.state in (RoomStatus.STOPPING, RoomStatus.RESTARTING)
        self._event(EventKind.ROOM_STOPPED if on_purpose else EventKind.ROOM_CRASHED,
                    record.name, reason=told)
        decision = self.registry.after_exit(record, reason, crashed)
        if decision is AfterExit.FORGET:
            log.info("room %s stopped", record.name)
            self._answer_waiting(record, None)
            self._check_all_stopped()
        elif decision is AfterExit.START:
            unplanned = crashed and record.state != RoomStatus.RESTARTING
            log.log(logging.WARNING if unplanned else logging.INFO,
                    "room %s starting again (%s); restart %d", record.name, reason,
                    record.restarts)
            self._spawn(record)
        else:
            log.error("room %s failed: %d restarts within %.1f s (last reason: %s)",
                      record.name, record.budget.spent, self.registry.restart_window, reason)
            self._event(EventKind.ROOM_FAILED, record.name, reason=told)
            self._answer_waiting(record, f"room {record.name!r} failed: {reason}")
            if record.auto:  # nobody named it: it would hold a place of --max-rooms forever
                del self.rooms[record.name]
                self._check_all_stopped()


class SupervisorRelay(MembraneActor):
    """A first word to the supervisor of another leader, whose address is not known yet:
    created on that leader's system (``LEADER_AT``), it passes one beat to the supervisor
    there (found by its global name, local to that system) and exits. The answer comes
    straight back: the beat carries its sender's address. Defined beside the supervisor it
    creates, so that :mod:`.failover` need not import this module."""

    actorSystemCapabilityCheck = staticmethod(accepts_leader)

    def receiveMsg_SupervisorBeat(self, message: SupervisorBeat, sender: Address) -> None:
        self.send(self.createActor(RoomSupervisor, globalName=SUPERVISOR_NAME), message)
        # Not at once: what is sent to an address createActor just returned waits for the
        # actor to be found, and an actor exiting drops what waits.
        self.wakeupAfter(timedelta(seconds=RELAY_LIFE))

    def receiveMsg_WakeupMessage(self, message: WakeupMessage, sender: Address) -> None:
        self.send(self.myAddress, ActorExitRequest())


#: What the supervisor creates on a leader it has not heard from (see Leading).
RoomSupervisor.relay_class = SupervisorRelay
