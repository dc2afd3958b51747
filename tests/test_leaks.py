"""1,000 connect/disconnect cycles leave no actor process, peer or open file behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from membrane_rtc import Server

from .conftest import ServerFactory
from .support.client import Client
from .test_supervision import room_info, until

CYCLES = 1000
AT_ONCE = 10


def process_group(pid: int) -> int:
    return os.getpgid(pid)


def live_processes_in_group(group: int) -> set[int]:
    """Live processes of a process group (zombies, already dead, are not counted).

    Thespian's multi-process admin daemonizes into a process group of its own, and every actor
    process of the system is forked below it: that group is the actor system.
    """
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            found.add(int(entry.name))
    return found


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


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
    server = await start_multiproc_server()
    await cycle(server, AT_ONCE)  # warm up: lazily opened sockets between processes
    await until(lambda: settled(server))
    room_pid = (await room_info(server, "demo")).pid
    group = process_group(room_pid)
    processes = live_processes_in_group(group)
    assert room_pid in processes and os.getpid() not in processes
    files, room_files = open_files(os.getpid()), open_files(room_pid)
    await cycle(server, CYCLES)
    await until(lambda: settled(server, group, processes), timeout=60)
    assert await server.list_peers("demo") == []
    assert open_files(os.getpid()) <= files
    assert open_files(room_pid) <= room_files
    await server.stop()
    await until(lambda: _empty(group), timeout=20)  # and the whole actor system is gone


async def _empty(group: int) -> bool:
    return not live_processes_in_group(group)


async def test_cycles_leave_nothing_behind_embedded(start_server: ServerFactory) -> None:
    server = await start_server()
    await cycle(server, AT_ONCE)
    await until(lambda: settled(server))
    files = open_files(os.getpid())
    await cycle(server, CYCLES)
    await until(lambda: settled(server), timeout=60)
    assert await server.list_peers("demo") == []
    assert open_files(os.getpid()) <= files
