"""1,000 connect/disconnect cycles leave no actor process, peer or open file behind."""

from __future__ import annotations

import asyncio
import os

import pytest

from membrane_rtc import Server

from .conftest import ServerFactory
from .support.procfs import live_processes_in_group, wait_until_no_process_in
from .support.client import Client
from .support.waiting import room_info, until

pytestmark = pytest.mark.slow  # runs many rooms and clients to watch memory

CYCLES = 1000
AT_ONCE = 10
WARM_UP = 200
#: Every cycle is a new connection from 127.0.0.1: lift the per-address join rate.
NO_JOIN_RATE = {"joins_per_second": 0, "max_connections_per_ip": 0}


def open_files(pid: int) -> dict[str, str]:
    """fd -> what it is (a socket's inode, a file's path), to say what leaked, if anything.

    Thespian opens an epoll selector for each run of its transport and closes it after, so a
    snapshot may catch one in passing: those are not counted.
    """
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target != "anon_inode:[eventpoll]":
            found[fd] = target
    return found


def no_more_files(before: dict[str, str], after: dict[str, str]) -> bool:
    assert len(after) <= len(before), \
        f"{len(after) - len(before)} more: {[(fd, t) for fd, t in after.items() if before.get(fd) != t]}"
    return True


async def cycle(server: Server, count: int) -> None:
    async def one() -> None:
        client = await Client.connect(f"{server.url}/demo")
        await client.close()

    for _ in range(count // AT_ONCE):
        await asyncio.gather(*(one() for _ in range(AT_ONCE)))


async def settled(server: Server, group: int | None = None,
                  processes: set[int] | None = None) -> bool:
    info = await room_info(server, "demo")
    if info is None or info.peers != 0 or server.gateway.connections:  # type: ignore[union-attr]
        return False
    return group is None or live_processes_in_group(group) == processes


async def test_cycles_leave_nothing_behind_multiproc(start_multiproc_server: ServerFactory) -> None:
    server = await start_multiproc_server(**NO_JOIN_RATE)
    # Warm up: Thespian opens sockets between processes lazily, and keeps a few for reuse
    # (one more may open when sends overlap); a leak grows with the cycles, a cache does not.
    await cycle(server, WARM_UP)
    await until(lambda: settled(server))
    room_pid = (await room_info(server, "demo")).pid
    group = os.getpgid(room_pid)
    processes = live_processes_in_group(group)
    assert room_pid in processes and os.getpid() not in processes
    files, room_files = open_files(os.getpid()), open_files(room_pid)
    await cycle(server, CYCLES)
    await until(lambda: settled(server, group, processes), timeout=60)
    assert await server.list_peers("demo") == []
    assert no_more_files(files, open_files(os.getpid()))
    assert no_more_files(room_files, open_files(room_pid))
    await server.stop()
    await wait_until_no_process_in(group)  # and the whole actor system is gone


async def test_cycles_leave_nothing_behind_embedded(start_server: ServerFactory) -> None:
    server = await start_server(**NO_JOIN_RATE)
    await cycle(server, AT_ONCE)
    await until(lambda: settled(server))
    files = open_files(os.getpid())
    await cycle(server, CYCLES)
    await until(lambda: settled(server), timeout=60)
    assert await server.list_peers("demo") == []
    assert no_more_files(files, open_files(os.getpid()))
