"""Bounded waits on a server's state: re-checked until true, never a sleep-and-hope."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from membrane_rtc import RoomInfo, Server

from .client import Client


async def room_info(server: Server, name: str) -> RoomInfo | None:
    return next((r for r in await server.list_rooms() if r.name == name), None)


async def until(condition: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Re-check an async condition until it holds (bounded); return its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition still false after the timeout")
        await asyncio.sleep(0.05)


async def expect_room_closed(client: Client, reason_part: str) -> None:
    frame = await client.recv_event("error")
    assert frame["data"]["description"] == "Room closed"
    assert reason_part in frame["data"]["details"], frame
    assert await client.closed() == 1000
