"""Several leaders: who leads, how the next one takes over, and what each room host keeps.

A deployment may give ``--convention`` several leaders (the same list everywhere). Each
leader's system runs a supervisor; one leads (it places, restarts and admits), the others
stand by and pass what reaches them to the one that leads. They tell each other every
heartbeat that they live (:class:`~.messages.leaders.SupervisorBeat`); the rules of who leads are
plain state (:class:`~membrane_rtc.supervision.Leadership`).

What a successor needs it does not get from its predecessor (gone, in the cases that
matter): every room host runs a :class:`RoomDirectory` - the leading supervisor notes each
room it starts there, with its class, options and restart budget - and a supervisor that
takes the lead asks every host's directory for its rooms and adopts them
(:class:`~.messages.leaders.AdoptRoom`). The same directories answer the leading supervisor's
heartbeat, which is how a room host cut off and back again is seen again, its stale copies
of rooms that moved meanwhile stopped, and the host taken back into the pool.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from thespian.actors import PoisonMessage

from ..ops.operations import OPERATIONS
from ..supervision import Leadership, Liveness, RoomRecord, RoomStatus
from .actor import MembraneActor, address_key
from .messages import Address, Reply, Request
from .messages.admin import ForwardMessage
from .messages.gateway import (ConnectPeer, GatewayPong, RefuseConnection, RegisterGateway,
                               UnregisterGateway)
from .messages.leaders import (AdoptRoom, ConfigureLeaders, ForgetRoom, HostRooms, ListHostRooms,
                               NoteRoom, Rejoin, RoomNote, SupervisorBeat, SupervisorMoved)
from .messages.rooms import EndRoom
from .placement import (LEADER_AT, ON_HOST, REJOINED, accepts_room,
                        directory_name)
from .supervisor_state import SupervisorState

__all__ = ["RoomDirectory", "Leading", "LEADER_SILENCE", "RELAY_LIFE"]

log = logging.getLogger("membrane_rtc.runtime.supervisor")  # one actor, four modules


class RoomDirectory(MembraneActor):
    """One per room host (a global name per host run): the rooms that run there, as the
    leading supervisor noted them. Answers :class:`~.messages.leaders.ListHostRooms`."""

    actorSystemCapabilityCheck = staticmethod(accepts_room)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rooms: dict[str, RoomNote] = {}

    def receiveMsg_NoteRoom(self, message: NoteRoom, sender: Address) -> None:
        self.rooms[message.note.name] = message.note

    def receiveMsg_ForgetRoom(self, message: ForgetRoom, sender: Address) -> None:
        note = self.rooms.get(message.name)
        if note is not None and note.pid == message.pid:
            del self.rooms[message.name]

    def receiveMsg_ListHostRooms(self, message: ListHostRooms, sender: Address) -> None:
        self.answer(message, sender, HostRooms(message.host, list(self.rooms.values())))

    def receiveMsg_Rejoin(self, message: Rejoin, sender: Address) -> None:
        # A changed capability is Thespian's one way to make a system register again now.
        self.updateCapability(REJOINED, uuid.uuid4().hex[:12])


#: A leader's supervisor not heard from for this long is taken for lost (seconds): the
#: next one takes the lead this long after the last beat of the one that led, plus at most
#: a heartbeat.
LEADER_SILENCE = 3.0
#: How soon a supervisor tries again to reach a leader it does not hear from (seconds; each
#: try doubles it, up to RETRY_MAX): one not started yet, or lost.
RETRY_FIRST = 1.0
RETRY_MAX = 30.0
#: How long a relay (``RoomSupervisor.relay_class``) lives (seconds): time enough to find the
#: supervisor it passes a beat to.
RELAY_LIFE = 10.0
#: A room host taken for lost is asked whether it is back at most this far apart (seconds).
LOST_HOST_RETRY_MAX = 8.0
#: For this long after taking the lead, the rooms hosts report that the registry lacks are
#: adopted (seconds); afterwards such a room is a stale copy (its host was cut off while it
#: moved or stopped) and is stopped.
ADOPT_WINDOW = 10.0
#: At most this many requests wait at a standing-by supervisor while no leader is known;
#: more are refused.
MAX_HELD = 1000


#: What a supervisor standing by passes to the one that leads (it answers the asker): every
#: operators' operation (built from their one table, so a new one cannot be forgotten and
#: answered by a supervisor that does not lead), ``Server.forward_message`` and the gateways'.
FOLLOWED: tuple[type, ...] = tuple(operation.request for operation in OPERATIONS) + (
    ForwardMessage, ConnectPeer, RegisterGateway, UnregisterGateway, GatewayPong)


class Leading(SupervisorState):
    """The supervisor's part in several leaders (mixed into RoomSupervisor, whose state it
    reads: :class:`~.supervisor_state.SupervisorState`). With one leader, or none of this
    configured, it always leads and only keeps its room hosts' directories."""

    #: Created on a leader not heard from, to pass it a beat: the supervisor's module defines
    #: it (it creates a supervisor there), so this one does not import that module.
    relay_class: type

    def _init_leading(self) -> None:
        self.leadership: Leadership | None = None
        self.peers: dict[str, Address] = {}  # by leader: its supervisor
        self.retry_at: dict[str, tuple[float, float]] = {}  # by leader: (when, next interval)
        self.held: list[tuple[Any, Address]] = []
        self.directories: dict[str, Address] = {}  # by room host
        self.answered: dict[str, Address] = {}  # ... those that answered: real addresses
        self.incarnations: dict[str, str] = {}
        self.host_heard = Liveness()
        #: Room hosts taken for lost, still asked now and then whether they are back: by
        #: host, (when next, the interval after that).
        self.lost_hosts: dict[str, tuple[float, float]] = {}
        self.left_convention: set[str] = set()  # room hosts Thespian says have left
        self.adopt_until = 0.0
        self.rejoin_at: dict[str, float] = {}  # by room host: when it may be asked again
        #: From the last beat of the one leading: it, its room host name, and the rooms no
        #: directory keeps (see SupervisorBeat).
        self.predecessor: tuple[str, str | None, list[RoomNote]] | None = None

    @property
    def leads(self) -> bool:
        """This supervisor places, restarts and admits (the only one, or the one leading)."""
        return self.leadership is None or self.leadership.leading

    # -- who leads ---------------------------------------------------------------------------

    def handle(self, message: Any, sender: Address) -> None:
        if not self.leads and isinstance(message, FOLLOWED):
            self._follow(message, sender)
            return
        super().handle(message, sender)  # type: ignore[misc]

    def receiveMsg_ConfigureLeaders(self, message: ConfigureLeaders, sender: Address) -> None:
        self.leadership = Leadership(message.leaders, message.own, LEADER_SILENCE)
        self.answer(message, sender)

    def _leading_supervisor(self) -> Address:
        if self.leads:
            return self.myAddress
        assert self.leadership is not None
        leader = self.leadership.leader()
        return None if leader is None else self.peers.get(leader)

    def _follow(self, message: Any, sender: Address) -> None:
        if isinstance(message, Request):
            message.reply_to = message.reply_to or sender
        leader = self._leading_supervisor()
        if leader is None:
            self._hold(message, sender)
        else:
            self.send(leader, message)

    def _hold(self, message: Any, sender: Address) -> None:
        """No leader known yet (starting, or between two): the request waits, bounded."""
        if len(self.held) < MAX_HELD:
            self.held.append((message, sender))
        elif isinstance(message, ConnectPeer):
            self.send(message.gateway, RefuseConnection(message.conn_id, 503, "no leader"))
        elif isinstance(message, Request):
            self.answer(message, sender, error="no leader reachable")

    def _release_held(self) -> None:
        if self.held and self._leading_supervisor() is not None:
            held, self.held = self.held, []
            for message, sender in held:
                self.receiveMessage(message, sender)

    def receiveMsg_SupervisorBeat(self, beat: SupervisorBeat, sender: Address) -> None:
        if self.leadership is None:
            return
        new = not self.leadership.live(beat.leader) or self.peers.get(beat.leader) is None
        stood_down = self.leads and not beat.leading and self.leadership.live(beat.leader) \
            and self.leadership.heard[beat.leader][1]
        self.leadership.heard_from(beat.leader, beat.leading)
        if stood_down:
            self._reclaim(beat.leader)
        self.peers[beat.leader] = beat.supervisor
        self.retry_at.pop(beat.leader, None)
        if beat.leading and not self.leads:  # the gateways a successor must tell
            self.gateways.clear()
            for gateway in beat.gateways:
                self.gateways[address_key(gateway)] = gateway
            self._rejoin_unknown(beat.directories)
            self.predecessor = (beat.leader, beat.host, beat.rooms)
        if new:  # a newcomer (or one back) hears from this one at once
            log.info("leader %s hears from leader %s (%s)", self.leadership.own, beat.leader,
                     "leading" if beat.leading else "standing by")
            self.send(beat.supervisor, self._beat())
        self._release_held()

    def receiveMsg_PoisonMessage(self, poison: PoisonMessage, sender: Address) -> None:
        """A beat to a leader that is gone, or a directory's question to a host that is: the
        heartbeats say so in their own time, quietly."""
        if not isinstance(poison.poisonMessage, (SupervisorBeat, ListHostRooms)):
            super().receiveMsg_PoisonMessage(poison, sender)  # type: ignore[misc]

    def _rejoin_unknown(self, directories: dict[str, Address]) -> None:
        """Room hosts the one leading knows and this system does not (it started after them,
        or came back): asked to register again, now and then until they have."""
        now = time.monotonic()
        for host, directory in directories.items():
            if host in self.hosts.hosts or now < self.rejoin_at.get(host, 0.0):
                continue
            self.rejoin_at[host] = now + LEADER_SILENCE
            log.info("asking room host %s to register with this leader too", host)
            self.send(directory, Rejoin())

    def _beat(self) -> SupervisorBeat:
        assert self.leadership is not None
        if not self.leads:
            return SupervisorBeat(self.leadership.own, self.myAddress, False)
        return SupervisorBeat(self.leadership.own, self.myAddress, True,
                              list(self.gateways.values()),
                              {host: self.answered[host] for host in self.hosts.hosts
                               if host in self.answered},
                              [self._note(record, None) for record in self.rooms.values()
                               if not self._on_other_host(record.host)
                               and record.state != RoomStatus.FAILED],
                              self.local_host)

    @staticmethod
    def _note(record: RoomRecord, address: Address) -> RoomNote:
        return RoomNote(record.name, address, record.room_class, record.options,
                        record.restarts, record.budget.recent_wall_times(), record.pid,
                        record.auto)

    def _leaders_heartbeat(self) -> None:
        """Beat to the other leaders (through a relay to those not heard from, now and then),
        then apply the rules of who leads."""
        if self.leadership is None:
            return
        beat, now = self._beat(), time.monotonic()
        for leader in self.leadership.leaders:
            if leader == self.leadership.own:
                continue
            if self.leadership.live(leader) and leader in self.peers:
                self.send(self.peers[leader], beat)
                continue
            when, interval = self.retry_at.get(leader, (now, RETRY_FIRST))
            if now >= when:  # not heard from: not started yet, lost, or cut off
                self.retry_at[leader] = (now + interval, min(2 * interval, RETRY_MAX))
                if leader in self.peers:
                    self.send(self.peers[leader], beat)
                self.send(self.createActor(self.relay_class,
                                           targetActorRequirements={LEADER_AT: leader}), beat)
        change = self.leadership.step()
        if change == "lead":
            self._take_lead()
        elif change == "yield":
            log.warning("leader %s stands down: %s leads", self.leadership.own,
                        self.leadership.leader())
            self.registry.rooms.clear()  # the one that leads adopts them from the hosts
            self.gateway_heard = Liveness()
        self._release_held()

    def _take_lead(self) -> None:
        """Adopt the rooms the hosts report, and tell the gateways where to send."""
        assert self.leadership is not None
        log.warning("leader %s leads now: adopting the rooms of %d room hosts",
                    self.leadership.own, len(self.hosts.hosts))
        self.adopt_until = time.monotonic() + ADOPT_WINDOW
        for host in self.hosts.hosts:  # heard from as of now: they have had nobody to answer
            self.host_heard.heard(host)
        for key, gateway in self.gateways.items():
            self.gateway_heard.heard(key)
            self.send(gateway, SupervisorMoved(self.myAddress))
        if self.predecessor is not None:
            self._succeed(*self.predecessor)
            self.predecessor = None
        self._ask_directories()

    def _reclaim(self, leader: str) -> None:
        """Another that led at the same time (they could not reach each other) stood down
        for this one: its rooms are adopted, and the rooms it may have adopted meanwhile
        report here again."""
        log.warning("leader %s stood down: adopting what it led", leader)
        self.adopt_until = time.monotonic() + ADOPT_WINDOW
        for record in self.rooms.values():
            if record.serving and self._on_other_host(record.host):
                self.send(record.address, AdoptRoom(self.events_to))
        self._ask_directories()

    def _succeed(self, leader: str, host: str | None, notes: list[RoomNote]) -> None:
        """The rooms only the lost leader knew: those of its own system start again
        elsewhere (as for a lost room host), those that waited for a host wait here."""
        if host is not None:
            self.hosts.remove(host)
            self._host_lost_for_now(host)
        for note in notes:
            if note.name in self.rooms:
                continue
            record = self.registry.add(note.name, note.room_class, note.options)
            record.restarts, record.auto = note.restarts, note.auto
            record.budget.restore(note.recent_restarts)
            if note.pid is not None:  # it ran in the lost leader's system
                record.restarts += 1
                record.last_reason = f"leader {leader} lost"
            self._spawn(record)

    # -- room hosts' directories -------------------------------------------------------------

    def _host_joined(self, host: str, incarnation: str | None) -> None:
        if incarnation and self.incarnations.get(host) != incarnation:
            self.incarnations[host] = incarnation
            self.directories.pop(host, None)  # an earlier run's
            self.answered.pop(host, None)
        self.lost_hosts.pop(host, None)
        self.left_convention.discard(host)
        self.host_heard.heard(host)

    def _host_lost_for_now(self, host: str) -> None:
        """Taken for lost: its notes stay (its directory is asked again, less and less often;
        what it reports once back is stopped where it moved meanwhile) - unless Thespian
        said it left the convention."""
        if host in self.left_convention:
            self.left_convention.discard(host)
            self.lost_hosts.pop(host, None)
            return
        self.lost_hosts.setdefault(host, (time.monotonic() + RETRY_FIRST, 2 * RETRY_FIRST))

    def _directory(self, host: str) -> Address:
        directory = self.directories.get(host)
        if directory is None:
            directory = self.directories[host] = self.createActor(
                RoomDirectory, targetActorRequirements={ON_HOST: host},
                globalName=directory_name(host, self.incarnations.get(host)))
        return directory

    def _on_other_host(self, host: str | None) -> bool:
        return self.placed and host is not None and host != self.local_host

    def _note_room(self, record: RoomRecord, address: Address) -> None:
        """The room runs: its host's directory keeps what a successor needs to adopt it."""
        if record.host is not None and self._on_other_host(record.host):
            self.send(self._directory(record.host), NoteRoom(self._note(record, address)))

    def _forget_room(self, record: RoomRecord) -> None:
        if record.host is not None and self._on_other_host(record.host) \
                and record.pid is not None and record.host not in self.lost_hosts:
            self.send(self._directory(record.host), ForgetRoom(record.name, record.pid))

    def _ask_directories(self) -> None:
        """The directories' heartbeat: the hosts in the pool, and those taken for lost."""
        now = time.monotonic()
        for host, (when, interval) in list(self.lost_hosts.items()):
            if now >= when:
                self.lost_hosts[host] = (now + interval, min(2 * interval, LOST_HOST_RETRY_MAX))
                self.send(self._directory(host), ListHostRooms(host))
        for host in sorted(self.hosts.hosts):
            if self._on_other_host(host):
                self.send(self._directory(host), ListHostRooms(host))

    def receiveMsg_Reply(self, reply: Reply, sender: Address) -> None:
        if isinstance(reply.value, HostRooms):
            self._host_reported(reply.value, sender)

    def _host_reported(self, report: HostRooms, directory: Address) -> None:
        host = report.host
        self.directories[host] = self.answered[host] = directory
        self.host_heard.heard(host)
        if not self.leads:
            return
        adopting = time.monotonic() < self.adopt_until
        for note in report.rooms:
            record = self.rooms.get(note.name)
            if record is None and adopting:
                self._adopt(host, note)
            elif record is None or record.address is None or record.address != note.address:
                # A copy the registry does not know: its host was cut off while the room
                # moved (or stopped). It goes; the registry's copy stays.
                log.warning("room host %s: stopping a stale copy of room %s", host, note.name)
                self.send(note.address, EndRoom())
                self.send(directory, ForgetRoom(note.name, note.pid))
        if host in self.lost_hosts:
            log.info("room host %s joined again", host)
            del self.lost_hosts[host]
            self.hosts.add(host)
            self._start_waiting()

    def _adopt(self, host: str, note: RoomNote) -> None:
        record = self.registry.add(note.name, note.room_class, note.options)
        record.address, record.host, record.pid = note.address, host, note.pid
        record.state, record.restarts, record.auto = RoomStatus.RUNNING, note.restarts, note.auto
        record.adopted = True
        record.budget.restore(note.recent_restarts)
        self.room_heard.heard(note.name)
        self.send(note.address, AdoptRoom(self.events_to))
        log.info("room %s on %s adopted", note.name, host)

    def _host_silent(self, host: str, seconds: float) -> bool:
        return self._on_other_host(host) and self.host_heard.silent(host, seconds)
