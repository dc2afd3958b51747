"""What the kernel says about processes and sockets, read from /proc (no psutil needed)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from pathlib import Path

#: /proc/net/tcp's state code for a listening socket.
_LISTEN = "0A"


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


async def wait_until_no_process_in(group: int, timeout: float = 15.0) -> None:
    """Wait (bounded) until no live process is left in ``group``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while live := live_processes_in_group(group):
        if loop.time() > deadline:
            raise AssertionError(f"actor processes left behind: {sorted(live)}")
        await asyncio.sleep(0.1)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _address(hex_address: str) -> str:
    """An address of /proc/net/tcp{,6}: little-endian 32-bit words of hex."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_addresses(pids: set[int]) -> set[tuple[str, int]]:
    """``(ip, port)`` of every TCP socket in LISTEN state that one of ``pids`` holds."""
    inodes = set().union(*(_socket_inodes(pid) for pid in pids)) if pids else set()
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local, state, inode = fields[1], fields[3], int(fields[9])
                if state == _LISTEN and inode in inodes:
                    host, port = local.split(":")
                    found.add((_address(host), int(port, 16)))
    return found
