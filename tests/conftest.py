"""Shared fixtures: servers on free loopback ports, always stopped."""

from __future__ import annotations

import os
import socket
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from membrane_rtc import RoomConfig, Server, ServerConfig

from .support.recording import RECORD

ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture(autouse=True)
def _clear_record() -> None:
    RECORD.clear()


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Servers started by tests (and their subprocesses) write state files here, not in ~."""
    os.environ["MEMBRANE_RTC_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _servers(mode: str) -> AsyncIterator[ServerFactory]:
    servers: list[Server] = []

    async def start(rooms: dict[str, Any] | None = None, **settings: Any) -> Server:
        rooms = {"demo": ("actors.default:DefaultRoom", None)} if rooms is None else rooms
        if mode == "multiproc":
            settings.setdefault("admin_port", free_port())
        config = ServerConfig(host="127.0.0.1", port=0, actor_system=mode, **settings,
                              rooms=[RoomConfig(name, cls, opts)
                                     for name, (cls, opts) in rooms.items()])
        server = Server(config)
        servers.append(server)
        await server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            await server.stop()


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """Start embedded ``Server``s on 127.0.0.1, free port; ``rooms``: name -> (class, options).

    Tests that read the in-process RECORD use this one: their rooms must run in this process.
    """
    async for start in _servers("embedded"):
        yield start


@pytest.fixture
async def start_multiproc_server() -> AsyncIterator[ServerFactory]:
    """Like ``start_server``, on the multi-process base (each room its own OS process)."""
    async for start in _servers("multiproc"):
        yield start


@pytest.fixture(params=["embedded", "multiproc"])
async def start_server_each_mode(request: pytest.FixtureRequest) -> AsyncIterator[ServerFactory]:
    """Like ``start_server``, once per actor-system mode."""
    async for start in _servers(request.param):
        yield start
