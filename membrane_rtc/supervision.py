"""The supervisor's rules as plain state: the registry of rooms, restart budgets, room hosts,
and who has been heard from lately. No actors here (like :mod:`.room_state`); the supervisor
actor asks these what to do and does it, and the rules are tested with a fake clock.

Also the public records operators read: :class:`RoomInfo`, :class:`PeerInfo`,
:class:`HostInfo`, with the room states of :class:`RoomStatus`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Callable

from .config import DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_WINDOW
from .loading import class_spec
from .names import room_name_problem

__all__ = ["RoomStatus", "RoomInfo", "PeerInfo", "HostInfo", "RestartBudget", "RoomRecord",
           "Registry", "RoomHosts", "Liveness", "AfterExit", "Clock", "Leadership"]

#: Seconds on a monotonic clock; tests pass a fake one.
Clock = Callable[[], float]


class RoomStatus(StrEnum):
    """Where a room is in its life (a string, as admin listings and metrics show it)."""

    #: Its actor runs ``on_init``.
    STARTING = "starting"
    #: Serving peers.
    RUNNING = "running"
    #: Stopped on purpose; gone once its actor has exited.
    STOPPING = "stopping"
    #: Stopped to start again (an operator's restart).
    RESTARTING = "restarting"
    #: Crashed more often than its restart budget allows: stays down until restarted by hand.
    FAILED = "failed"
    #: No room host to run it on (several hosts); starts when one joins.
    WAITING = "waiting"


#: What clients of a crashed room are told instead of the exception (``--expose-errors``).
CRASH_DETAILS = "room_crashed"

#: States in which a room takes peers and messages.
SERVING = frozenset({RoomStatus.STARTING, RoomStatus.RUNNING})


@dataclass
class RoomInfo:
    """One row of the registry, as ``membrane-rtc admin list`` shows it."""

    name: str
    room_class: str
    state: RoomStatus
    peers: int = 0
    restarts: int = 0
    #: Why its previous actor exited, if one did.
    reason: str | None = None
    pid: int | None = None
    #: The room host it runs on.
    host: str | None = None


@dataclass
class HostInfo:
    """One room host and how many rooms it runs."""

    host: str
    rooms: int


@dataclass
class PeerInfo:
    """One peer of a room."""

    peer_id: str
    remote_address: str | None = None
    #: Its connection dropped; it may still resume (until its grace ends).
    away: bool = False


class RestartBudget:
    """OTP's restart intensity: at most ``max_restarts`` restarts within ``window`` seconds."""

    def __init__(self, max_restarts: int, window: float, clock: Clock = time.monotonic) -> None:
        self.max_restarts = max_restarts
        self.window = window
        self.clock = clock
        self._recent: list[float] = []

    def allow(self) -> bool:
        """Spend one restart if the budget has one left (True), else refuse (False)."""
        now = self.clock()
        self._recent = [t for t in self._recent if now - t < self.window]
        if len(self._recent) >= self.max_restarts:
            return False
        self._recent.append(now)
        return True

    @property
    def spent(self) -> int:
        """Restarts within the current window."""
        return len(self._recent)

    def reset(self) -> None:
        """An operator brought the room back: a fresh budget."""
        self._recent = []

    def recent_wall_times(self, wall: Clock = time.time) -> list[float]:
        """The recent restarts as wall-clock times (another host's monotonic clock differs)."""
        now, wall_now = self.clock(), wall()
        return [wall_now - (now - t) for t in self._recent]

    def restore(self, wall_times: list[float], wall: Clock = time.time) -> None:
        """Take over restarts another supervisor counted (as :meth:`recent_wall_times`)."""
        now, wall_now = self.clock(), wall()
        self._recent = [now - (wall_now - t) for t in wall_times]


#: Rooms created on demand (``--auto-create``) that may wait at once for their first client to
#: be admitted: a room runs a client's ``Peer.on_init`` (peers live in their room, for
#: isolation), so it exists before it knows whether that client is welcome. Refused clients
#: end such a room at once; this bounds how many exist meanwhile.
MAX_PROVISIONAL_ROOMS = 16


@dataclass
class RoomRecord:
    """The registry's row for one room name. ``address`` is the runtime's handle on its actor."""

    name: str
    room_class: Any
    options: Any
    budget: RestartBudget
    address: Any = None
    state: RoomStatus = RoomStatus.STARTING
    peers: int = 0
    pid: int | None = None
    restarts: int = 0
    host: str | None = None
    exit_reason: str | None = None  # why the current actor is exiting, once known
    #: The exit reason is a crash's (an exception's text): clients are not told it.
    crashed: bool = False
    last_reason: str | None = None  # why the previous actor exited, for the listing
    #: (request, asker) waiting for this room to be started, or stopped.
    waiting: list[tuple[Any, Any]] = field(default_factory=list)
    #: Created by a client's first connection (``--auto-create``): stopped once empty a while.
    auto: bool = False
    #: Auto-created and no peer has been admitted yet: it stops as soon as the client it was
    #: made for is refused (so unauthenticated clients cannot fill the server with rooms).
    provisional: bool = False
    #: Counts the room's empty spells, so that a timer of an earlier one stops nothing.
    empty_spells: int = 0
    #: Started by another leader's supervisor and taken over: its exit is not reported to
    #: this one (Thespian tells a parent only), so its silence is taken for its exit.
    adopted: bool = False

    @property
    def idle_auto_room(self) -> bool:
        """An auto-created room, running, with nobody in it: its empty timeout runs."""
        return self.auto and self.peers == 0 and self.state == RoomStatus.RUNNING

    @property
    def serving(self) -> bool:
        return self.address is not None and self.state in SERVING

    def info(self) -> RoomInfo:
        return RoomInfo(self.name, class_spec(self.room_class), self.state, self.peers,
                        self.restarts, self.last_reason, self.pid, self.host)


class AfterExit(Enum):
    """What follows a room actor's exit."""

    #: It was stopped on purpose: forget it.
    FORGET = "forget"
    #: Start it again (an operator's restart, its host lost, or a crash within the budget).
    START = "start"
    #: It crashed past its budget: mark it failed.
    FAIL = "fail"


class Registry:
    """The rooms by name, and what may happen to them."""

    def __init__(self, max_rooms: int = 0, max_restarts: int = DEFAULT_MAX_RESTARTS,
                 restart_window: float = DEFAULT_RESTART_WINDOW,
                 clock: Clock = time.monotonic) -> None:
        self.max_rooms = max_rooms
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.clock = clock
        self.rooms: dict[str, RoomRecord] = {}

    def refuse_provisional(self) -> str | None:
        """Why no further room may be created on demand now (None: it may): at most
        MAX_PROVISIONAL_ROOMS wait at once for their first client to be admitted."""
        waiting = sum(record.provisional for record in self.rooms.values())
        if waiting >= MAX_PROVISIONAL_ROOMS:
            return f"{waiting} rooms created on demand still wait for their first peer"
        return None

    def refuse_create(self, name: str) -> str | None:
        """Why a room of this name cannot be created now (None: it can)."""
        if (problem := room_name_problem(name)) is not None:
            return problem
        existing = self.rooms.get(name)
        if existing is not None and existing.state != RoomStatus.FAILED:
            return f"room {name!r} exists"
        if existing is None and self.max_rooms and len(self.rooms) >= self.max_rooms:
            return (f"cannot create room {name!r}: the server's limit of {self.max_rooms} "
                    "rooms is reached")
        return None

    def add(self, name: str, room_class: Any, options: Any) -> RoomRecord:
        """A new record (replacing a failed one of the same name)."""
        record = RoomRecord(name, room_class, options,
                            RestartBudget(self.max_restarts, self.restart_window, self.clock))
        self.rooms[name] = record
        return record

    def serving(self, name: str | None) -> RoomRecord | None:
        """The record of a room that takes peers and messages now."""
        record = self.rooms.get(name or "")
        return record if record is not None and record.serving else None

    def find(self, address: Any) -> RoomRecord | None:
        """The record whose current actor is ``address`` (compared with ``==``)."""
        return next((r for r in self.rooms.values()
                     if r.address is not None and r.address == address), None)

    def after_exit(self, record: RoomRecord, reason: str, crashed: bool) -> AfterExit:
        """A room's actor is gone: what now. A crash spends its restart budget; a stop, an
        operator's restart or a lost host do not."""
        record.last_reason = reason
        record.address, record.pid, record.peers = None, None, 0
        if record.state == RoomStatus.STOPPING:
            del self.rooms[record.name]
            return AfterExit.FORGET
        if record.state == RoomStatus.RESTARTING or not crashed or record.budget.allow():
            record.restarts += 1
            return AfterExit.START
        record.state = RoomStatus.FAILED
        return AfterExit.FAIL

    def rooms_per_host(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.rooms.values():
            if record.host is not None and record.address is not None:
                counts[record.host] = counts.get(record.host, 0) + 1
        return counts


@dataclass
class RoomHosts:
    """The room hosts the supervisor knows of, and the choice of the least loaded one."""

    hosts: set[str] = field(default_factory=set)

    def add(self, host: str) -> None:
        self.hosts.add(host)

    def remove(self, host: str) -> None:
        self.hosts.discard(host)

    def least_loaded(self, rooms_per_host: dict[str, int]) -> str | None:
        """The host with the fewest rooms (ties: by name, so the choice is stable); None when
        there is no room host at all."""
        if not self.hosts:
            return None
        return min(sorted(self.hosts), key=lambda host: rooms_per_host.get(host, 0))


class Liveness:
    """When each watched party (a room, a gateway) last gave a sign of life."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._heard: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._heard)

    def heard(self, key: str) -> None:
        self._heard[key] = self.clock()

    def forget(self, key: str) -> None:
        self._heard.pop(key, None)

    def silent(self, key: str, seconds: float) -> bool:
        """Not heard from for more than ``seconds`` (one never heard of is not silent)."""
        return self.clock() - self._heard.get(key, self.clock()) > seconds


class Leadership:
    """Which of several leaders' supervisors leads (one at a time), as plain state.

    ``leaders`` is the convention's list, the same on every process; ``own`` this one's entry.
    Every supervisor hears from the others each heartbeat (whether they live, whether they
    lead). The rules:

    - one leading stays leading until it is lost: a leader that comes back, or starts late,
      finds it leading and stands by (no failback: the rooms stay where they are);
    - when none that lives leads, the first in the list among those that live takes the lead
      (after ``silence`` since its start, time to hear from the others);
    - two leading at once (they could not hear each other) is ended by the later in the list
      standing down; the other then adopts its rooms.
    """

    def __init__(self, leaders: list[str], own: str, silence: float,
                 clock: Clock = time.monotonic) -> None:
        self.leaders = list(leaders)
        self.own = own
        self.rank = self.leaders.index(own)
        self.silence = silence
        self.clock = clock
        self.started = clock()
        #: By leader: when last heard, and whether it said it leads.
        self.heard: dict[str, tuple[float, bool]] = {}
        self.leading = len(self.leaders) == 1

    def heard_from(self, leader: str, leading: bool) -> None:
        if leader in self.leaders and leader != self.own:
            self.heard[leader] = (self.clock(), leading)

    def live(self, leader: str) -> bool:
        """Heard from within ``silence``."""
        when = self.heard.get(leader)
        return when is not None and self.clock() - when[0] <= self.silence

    def leader(self) -> str | None:
        """The leader that leads as far as this one knows (itself, another, or None)."""
        if self.leading:
            return self.own
        claiming = [leader for leader in self.leaders
                    if self.live(leader) and self.heard[leader][1]]
        return claiming[0] if claiming else None

    def step(self) -> str | None:
        """Apply the rules now: ``"lead"`` (this one just took the lead), ``"yield"`` (it just
        stood down for an earlier one), or None (nothing changed)."""
        others = [leader for leader in self.leaders if leader != self.own and self.live(leader)]
        if self.leading:
            if any(self.heard[leader][1] and self.leaders.index(leader) < self.rank
                   for leader in others):
                self.leading = False
                return "yield"
            return None
        if self.clock() - self.started < self.silence:
            return None
        if any(self.heard[leader][1] for leader in others):
            return None
        if all(self.leaders.index(leader) > self.rank for leader in others):
            self.leading = True
            return "lead"
        return None
