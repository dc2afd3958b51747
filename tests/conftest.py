"""Shared fixtures: an in-process server on a free loopback port, always stopped."""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from membrane_rtc import RoomConfig, Server, ServerConfig

from .support.recording import RECORD

ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture(autouse=True)
def _clear_record() -> None:
    RECORD.clear()


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """Start ``Server``s on 127.0.0.1 with a free port; ``rooms`` maps name -> (class, options)."""
    servers: list[Server] = []

    async def start(rooms: dict[str, Any] | None = None, **settings: Any) -> Server:
        rooms = {"demo": ("actors.default:DefaultRoom", None)} if rooms is None else rooms
        config = ServerConfig(host="127.0.0.1", port=0, **settings,
                              rooms=[RoomConfig(name, cls, opts)
                                     for name, (cls, opts) in rooms.items()])
        server = Server(config)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
