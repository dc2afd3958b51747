"""Loopback ports for the servers tests start."""

from __future__ import annotations

from random import SystemRandom
import socket
from pathlib import Path

#: Where the kernel picks the port of a ``bind(("", 0))`` - and of every outgoing connection.
_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_random = SystemRandom()  # not the random module's state, which a test may seed


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, _RANGE.read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback port nobody listens on right now, outside the kernel's ephemeral range.

    A port is only free until someone binds it. A test that chooses a port and hands it to a
    process started later (a Thespian admin port above all) races every socket bound to port 0
    meanwhile - each actor process of a multiproc server binds one, and so does every outgoing
    connection. Those ports come from the ephemeral range, so the ports chosen here never do:
    only another test choosing the same port at random could still take it first (callers that
    start a process on it retry with another port when it says the port is in use).
    """
    low, _ = _ephemeral_range()
    candidates = range(10000, low) if low > 11000 else range(low // 2, low)
    for _ in range(200):
        port = _random.choice(candidates)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: another
            return port
    raise AssertionError(f"no free port between {candidates.start} and {candidates.stop}")
