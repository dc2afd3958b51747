"""A multi-process actor system does not outlive the server process that started it."""

from __future__ import annotations

import json
import os
import signal

import pytest

from .conftest import record_actor_group
from .support.net import free_port
from .support.client import Client
from .support.process import ServeProcess, run_cli
from .support.procfs import live_processes_in_group, wait_until_no_process_in

pytestmark = pytest.mark.slow  # kills servers and waits for their actor systems to go


async def _actor_system_of(server: ServeProcess) -> int:
    """The process group of the server's actor system (that of its rooms)."""
    port = server.url.split(":")[2].split("/")[0]
    status, out, err = await run_cli("admin", "--port", port, "--json", "list")
    assert status == 0, err
    pid = json.loads(out)[0]["pid"]
    record_actor_group(pid)
    group = os.getpgid(pid)
    assert group != os.getpgid(server.pid)  # Thespian's admin daemonized: its own group
    return group


async def test_kill_9_of_serve_ends_its_actor_system_and_the_port_is_free_again() -> None:
    admin_port = free_port()
    args = ("--port", "0", "--actor-system", "multiproc", "--admin-port", str(admin_port))
    server = await ServeProcess.start(*args)
    group = await _actor_system_of(server)
    peer = await Client.connect(f"{server.url}/demo")
    assert len(live_processes_in_group(group)) >= 4
    os.kill(server.pid, signal.SIGKILL)
    await server.process.wait()
    await wait_until_no_process_in(group, timeout=10)
    await peer.closed()
    # A new server takes the same admin port at once.
    again = await ServeProcess.start(*args)
    try:
        second = await Client.connect(f"{again.url}/demo")
        assert second.peer_id
        await second.close()
        new_group = await _actor_system_of(again)
    finally:
        assert await again.signal_and_wait() == 0
    await wait_until_no_process_in(new_group, timeout=10)


async def test_sigterm_keeps_the_clean_path() -> None:
    """SIGTERM: every on_terminate runs, exit status 0, and the actor system is gone."""
    server = await ServeProcess.start("--port", "0", "--actor-system", "multiproc",
                                      "--admin-port", str(free_port()))
    group = await _actor_system_of(server)
    assert await server.signal_and_wait(signal.SIGTERM) == 0
    assert "membrane-rtc stopped" in "".join(server.stdout)
    assert not any("lifeline" in line for line in server.stderr)  # a stop, not a death
    await wait_until_no_process_in(group, timeout=10)
