"""Shared fixtures: servers on free loopback ports, always stopped."""

from __future__ import annotations

import os
import signal
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator

import pytest

from membrane_rtc import RoomConfig, Server, ServerConfig
from membrane_rtc.runtime.bridge import ActorSystemError

from .support.net import free_port
from .support.procfs import live_processes_in_group, wait_until_no_process_in
from .support.recording import RECORD

ServerFactory = Callable[..., Awaitable[Server]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test on the multi-process actor system is ``slow`` (each actor an OS process,
    ~40 ms to start, the server's own start a second or more): the ones asking for
    ``start_multiproc_server`` and every ``multiproc`` case of a parametrized test (the
    ``start_server_each_mode`` fixture's and a ``mode`` parameter's). The embedded case of
    the same test stays in the fast suite."""
    for item in items:
        params = getattr(item, "callspec", None)
        values = params.params.values() if params is not None else ()
        if "start_multiproc_server" in getattr(item, "fixturenames", ()) or any(
                value == "multiproc" for value in values if isinstance(value, str)):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _clear_record() -> None:
    RECORD.clear()


#: Process groups of the multi-process actor systems tests started (see _sweep_actor_systems).
ACTOR_GROUPS: set[int] = set()


def record_actor_group(pid: int) -> None:
    """Remember the actor system an actor process belongs to, for the end-of-session sweep."""
    ACTOR_GROUPS.add(os.getpgid(pid))


@pytest.fixture(autouse=True, scope="session")
def _sweep_actor_systems() -> Iterator[None]:
    """After all tests, kill what a failed test may have left of a multi-process actor system.

    Thespian's admin daemonizes and keeps this process's stdout: left alive, it would hold a CI
    pipe open after pytest exits. Passing tests leave nothing (their teardown checks it).
    """
    yield
    for group in ACTOR_GROUPS:
        if live_processes_in_group(group):
            os.killpg(group, signal.SIGKILL)


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers started by tests (and their subprocesses) write state files here, not in ~;
    the variable is put back as it was afterwards."""
    before = os.environ.get("MEMBRANE_RTC_STATE_DIR")
    os.environ["MEMBRANE_RTC_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    yield
    if before is None:
        del os.environ["MEMBRANE_RTC_STATE_DIR"]
    else:
        os.environ["MEMBRANE_RTC_STATE_DIR"] = before


async def _servers(mode: str) -> AsyncIterator[ServerFactory]:
    servers: list[Server] = []

    async def start(rooms: dict[str, Any] | None = None, **settings: Any) -> Server:
        rooms = {"demo": ("actors.default:DefaultRoom", None)} if rooms is None else rooms
        # Test clients send as fast as a loop can, far past any real client: the per-peer
        # message rate is off unless a test asks for it (tests/test_hostile.py does).
        settings.setdefault("peer_messages_per_second", 0)
        chosen_port = mode == "multiproc" and "admin_port" not in settings
        for attempt in (1, 2):
            if chosen_port:
                settings["admin_port"] = free_port()
            config = ServerConfig(host="127.0.0.1", port=0, actor_system=mode, **settings,
                                  rooms=[RoomConfig(name, cls, opts)
                                         for name, (cls, opts) in rooms.items()])
            server = Server(config)
            servers.append(server)
            try:
                await server.start()
                break
            except ActorSystemError as exc:
                # free_port() is free when probed, not when Thespian binds it a moment later:
                # another actor system's process may take it first. Once, take another.
                if not chosen_port or attempt == 2 or "not a valid or useable" not in str(exc):
                    raise
                servers.remove(server)  # its start cleaned up after itself
        for room in await server.list_rooms() if mode == "multiproc" else []:
            if room.pid:
                record_actor_group(room.pid)
        return server

    try:
        yield start
    finally:
        groups = set()
        for server in servers:
            if mode == "multiproc" and server.gateway is not None:
                groups |= {os.getpgid(r.pid) for r in await server.list_rooms() if r.pid}
            await server.stop()
        # No actor process outlives its server (orphans of a killed room included).
        for group in groups:
            await wait_until_no_process_in(group)


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
