"""The actor runtime, lean: an idle embedded server does not wake."""

from __future__ import annotations

import asyncio
import time

from .conftest import ServerFactory
from .support.client import Client

#: Clients come from 127.0.0.1 again and again: lift the per-address limits.
NO_JOIN_RATE = {"joins_per_second": 0, "max_connections_per_ip": 0}
ROOM = "actors.default:DefaultRoom"


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
