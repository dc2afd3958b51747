"""The actor runtime, lean: an idle embedded server does not wake; numbering only where the base
can re-order; rooms that come and go leave no state behind (supervisor, bridge, gateway side).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from membrane_rtc import Server
from membrane_rtc.runtime import ordering

from .conftest import ServerFactory, record_actor_group
from .support.client import Client
from .support.net import free_port
from .support.process import ServeProcess, run_cli
from .support.procfs import live_processes_in_group, wait_until_no_process_in

#: Clients come from 127.0.0.1 again and again: lift the per-address limits.
NO_JOIN_RATE = {"joins_per_second": 0, "max_connections_per_ip": 0}
ROOM = "actors.default:DefaultRoom"


@pytest.mark.slow
async def test_an_idle_embedded_server_does_not_wake(start_server: ServerFactory) -> None:
    """Rooms, clients connected but silent, no timer due: over 2 s the actor thread returns
    from its wait not once (it used to poll every 20 ms: about 100 wakeups). The supervisor's
    only periodic timer, the heartbeat, runs in a convention alone: none here."""
    server = await start_server({"a": (ROOM, None), "b": (ROOM, None)}, **NO_JOIN_RATE)
    clients = [await Client.connect(f"{server.url}/{room}") for room in ("a", "a", "b")]
    try:
        await asyncio.sleep(0.3)  # the joins' own frames are handed over
        before = server.bridge.idle_wakeups
        await asyncio.sleep(2.0)
        assert server.bridge.idle_wakeups - before == 0
    finally:
        for client in clients:
            await client.connection.close()


def _wakeups_per_thread(pid: int) -> dict[str, int]:
    """How often each thread of process ``pid`` gave up the CPU of its own accord (a wait or
    a sleep that ended is one such switch): thread id and name -> count."""
    counts = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = dict(line.split(":", 1) for line in (task / "status").read_text()
                          .splitlines())
        except OSError:  # the thread ended meanwhile
            continue
        counts[f"{task.name} {fields['Name'].strip()}"] = int(fields["voluntary_ctxt_switches"])
    return counts


async def _actor_processes(server: ServeProcess) -> set[int]:
    """The processes of a multi-process server's actor system (Thespian's admin daemonizes
    into a process group of its own: the rooms' group)."""
    status, out, _ = await run_cli("admin", "--port", str(server.port), "--json", "list")
    assert status == 0, out
    pid = next(room["pid"] for room in json.loads(out) if room["pid"])
    record_actor_group(pid)
    return live_processes_in_group(os.getpgid(pid))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedded", "multiproc"])
async def test_an_idle_server_wakes_no_thread_of_any_process(mode: str) -> None:
    """The whole server, not just the actors' rounds: rooms, silent clients, a forwarded
    message behind them (the watchdog has run), then 2 s in which no thread of any of its
    processes returns from a wait - no liveness poll, no watchdog tick, no listener timeout,
    no timer. (A convention's heartbeat is the one periodic thing, by design: none here.)"""
    ports = ("--admin-port", str(free_port())) if mode == "multiproc" else ()
    server = await ServeProcess.start("--port", "0", "--actor-system", mode, *ports,
                                      "--room", "a", "--room", "b", "--joins-per-second", "0",
                                      "--metrics-port", "0")
    clients = []
    group = -1
    try:
        clients = [await Client.connect(f"{server.url}/{room}") for room in ("a", "a", "b")]
        await clients[0].send("hello", "there", "all")
        await clients[1].recv_event("hello")
        pids = {server.pid}
        if mode == "multiproc":
            actors = await _actor_processes(server)
            group = os.getpgid(next(iter(actors)))
            pids |= actors
        await asyncio.sleep(0.5)  # what the message set going (frames, a flush) is over
        before = {pid: _wakeups_per_thread(pid) for pid in pids}
        await asyncio.sleep(2.0)
        woken = {}
        for pid in pids:
            after = _wakeups_per_thread(pid)
            woken |= {f"{pid}/{thread}": after[thread] - count
                      for thread, count in before[pid].items()
                      if thread in after and after[thread] != count}
        assert woken == {}
    finally:
        for client in clients:
            await client.connection.close()
        await server.stop()
        if group != -1:
            await wait_until_no_process_in(group)


async def test_timers_still_fire_without_polling(start_server: ServerFactory) -> None:
    """The thread blocks until the next Thespian wakeup exactly: a room created on demand
    and left empty stops after its empty timeout (a supervisor timer), not never."""
    server = await start_server({}, auto_create=True, empty_timeout=0.3, **NO_JOIN_RATE)
    client = await Client.connect(f"{server.url}/lonely")
    await client.connection.close()
    deadline = time.monotonic() + 5
    while any(room.name == "lonely" for room in await server.list_rooms()):
        assert time.monotonic() < deadline, "the empty-room timer never fired"
        await asyncio.sleep(0.05)


async def _cycle(server: Server, count: int, client_every: int) -> dict[str, int]:
    """Start and stop a room ``count`` times, a client in every ``client_every``-th
    incarnation (its frames are numbered where the base needs it). Returns the largest size
    each table reached meanwhile."""
    peak: dict[str, int] = {}
    for n in range(count):
        await server.create_room("churn", ROOM)
        client = None
        if n % client_every == 0:
            client = await Client.connect(f"{server.url}/churn")
            await client.send("hello", "anyone?")  # a message for the room: gateway -> room
            for key, size in (await server.kept_state()).items():
                peak[key] = max(peak.get(key, 0), size)
        await server.stop_room("churn")
        if client is not None:
            await client.recv_event("error")  # "Room closed"
            await client.connection.close()
    return peak


async def _settled(server: Server, before: dict[str, int], within: float) -> dict[str, int]:
    """The sizes once back to ``before`` (closed sockets and late-message grace may take a
    moment), or as they are at the deadline."""
    deadline = time.monotonic() + within
    while (kept := await server.kept_state()) != before and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return kept


@pytest.mark.slow
async def test_a_thousand_rooms_leave_no_state_behind(start_server: ServerFactory) -> None:
    """Embedded: 1,000 incarnations of a room, some with a client; every table the supervisor,
    the bridge and the gateway side keep is back to its size before. Nothing is numbered:
    simpleSystemBase cannot re-order."""
    server = await start_server({}, **NO_JOIN_RATE)
    await _cycle(server, 1, client_every=1)  # the first time: every actor told something once
    before = await server.kept_state()
    peak = await _cycle(server, 1000, client_every=50)
    assert await _settled(server, before, within=5) == before
    assert peak["bridge.ordering_out"] == peak["bridge.ordering_in"] == 0
    assert peak["supervisor.ordering_in"] == peak["supervisor.ordering_out"] == 0
    assert peak["supervisor.rooms"] == 1 and peak["runtime.members"] == 1


async def test_rooms_in_processes_leave_no_state_behind(
        start_multiproc_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Multi-process: numbered both ways (the TCP base can re-order), and each room's
    numbering forgotten by the supervisor and the bridge once it ends (after the grace its
    late messages get, ordering.LATE_FOR: shortened here, before the actor processes fork)."""
    monkeypatch.setattr(ordering, "LATE_FOR", 0.5)
    server = await start_multiproc_server({}, **NO_JOIN_RATE)
    await _cycle(server, 1, client_every=1)
    await asyncio.sleep(1.0)  # the warm-up room's grace is over
    before = await server.kept_state()
    peak = await _cycle(server, 20, client_every=2)
    assert peak["bridge.ordering_out"] > before["bridge.ordering_out"]
    assert peak["bridge.ordering_in"] > before["bridge.ordering_in"]
    assert peak["supervisor.ordering_in"] > before["supervisor.ordering_in"]
    assert await _settled(server, before, within=10) == before
