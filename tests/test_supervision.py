"""Supervision with real processes: crashes, kill -9, the restart budget, operator restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from membrane_rtc import Server, ServerError
from membrane_rtc import RoomInfo

from .conftest import ServerFactory, record_actor_group
from .support.net import free_port
from .support.client import Client, refused_status
from .support.waiting import expect_room_closed, room_info, until
from .support.process import ServeProcess, run_cli

pytestmark = pytest.mark.slow  # crashes and restarts rooms, servers as subprocesses

FAULTY = "tests.support.faulty_room:FaultyRoom"
DEFAULT = "actors.default:DefaultRoom"


@pytest.mark.parametrize("callback", ["on_join", "on_leave", "on_forward"])
async def test_a_raising_room_callback_crashes_only_that_room_and_it_comes_back(
        start_server_each_mode: ServerFactory, callback: str) -> None:
    server = await start_server_each_mode({"faulty": (FAULTY, {"raise_in": callback}),
                                           "calm": (DEFAULT, None)})
    url = server.url
    alice = await Client.connect(f"{url}/faulty")
    calm1 = await Client.connect(f"{url}/calm")
    calm2 = await Client.connect(f"{url}/calm")
    await calm1.recv_event("joined")
    if callback == "on_join":
        trigger = await Client.connect(f"{url}/faulty?trigger=1", authenticate=False)
        await expect_room_closed(trigger, "room_crashed")
    elif callback == "on_leave":
        bob = await Client.connect(f"{url}/faulty")
        await alice.recv_event("joined")
        await bob.close()
    else:
        await alice.send("boom", None, "all")
    await expect_room_closed(alice, "room_crashed")
    info = await until(lambda: _running_with_restarts(server, "faulty", 1))
    assert info.reason and callback in info.reason
    again = await Client.connect(f"{url}/faulty")
    await again.close()
    await calm2.send("still", "fine", [calm1.peer_id])
    assert (await calm1.recv_event("still"))["data"] == "fine"


async def _running_with_restarts(server: Server, name: str, restarts: int) -> RoomInfo | None:
    info = await room_info(server, name)
    return info if info and info.state == "running" and info.restarts == restarts else None


async def test_past_the_restart_budget_a_room_is_failed_until_an_operator_restarts_it(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode({"faulty": (FAULTY, {"raise_in": "on_forward"})},
                                          max_restarts=2, restart_window=60)
    for crash in range(3):
        client = await Client.connect(f"{server.url}/faulty")
        await client.send("boom", None, "all")
        await expect_room_closed(client, "room_crashed")
        if crash < 2:
            await until(lambda n=crash: _running_with_restarts(server, "faulty", n + 1))
    info = await until(lambda: _in_state(server, "faulty", "failed"))
    assert info.restarts == 2
    assert await refused_status(f"{server.url}/faulty") == 404
    await server.restart_room("faulty")
    assert (await room_info(server, "faulty")).state == "running"
    client = await Client.connect(f"{server.url}/faulty")
    await client.close()


async def _in_state(server: Server, name: str, state: str) -> RoomInfo | None:
    info = await room_info(server, name)
    return info if info and info.state == state else None


async def test_a_room_whose_on_init_always_raises_cannot_be_created(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    with pytest.raises(ServerError, match="on_init raised RuntimeError: on_init failure"):
        await server.create_room("broken", FAULTY, {"raise_in": "on_init"})
    assert (await room_info(server, "broken")).state == "failed"
    await server.stop_room("broken")
    assert await room_info(server, "broken") is None


async def test_operator_stop_is_not_restarted_and_kick_is_a_leave(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    await alice.recv_event("joined")
    peers = await server.list_peers("demo")
    assert sorted(p.peer_id for p in peers) == sorted([alice.peer_id, bob.peer_id])
    await server.kick_peer("demo", bob.peer_id)
    assert await bob.closed() == 1000
    assert (await alice.recv_event("left"))["data"]["peer_id"] == bob.peer_id
    with pytest.raises(ServerError, match="no peer"):
        await server.kick_peer("demo", "nobody")
    await server.stop_room("demo")
    await expect_room_closed(alice, "normal")
    assert await room_info(server, "demo") is None
    assert await refused_status(f"{server.url}/demo") == 404


async def test_kill_9_of_a_room_process_is_survived(
        start_multiproc_server: ServerFactory) -> None:
    server = await start_multiproc_server({"victim": (DEFAULT, None), "calm": (DEFAULT, None)})
    victims = [await Client.connect(f"{server.url}/victim") for _ in range(2)]
    await victims[0].recv_event("joined")
    sender = await Client.connect(f"{server.url}/calm")
    receiver = await Client.connect(f"{server.url}/calm")
    await sender.recv_event("joined")
    before = await room_info(server, "victim")
    calm_pid = (await room_info(server, "calm")).pid
    assert before.pid and before.pid != calm_pid and before.pid != os.getpid()

    async def stream(count: int) -> None:
        for n in range(count):
            await sender.send("candidate", n, [receiver.peer_id])
            await asyncio.sleep(0.005)

    streaming = asyncio.create_task(stream(300))
    received = [(await receiver.recv(timeout=10))["data"] for _ in range(50)]
    assert not streaming.done()  # the kill comes in the middle of the stream
    os.kill(before.pid, signal.SIGKILL)
    for victim in victims:
        await expect_room_closed(victim, "room actor exited")
    await asyncio.wait_for(streaming, 20)
    received += [(await receiver.recv(timeout=10))["data"] for _ in range(250)]
    assert received == list(range(300))
    after = await until(lambda: _running_with_restarts(server, "victim", 1))
    assert after.pid not in (None, before.pid)
    assert (await room_info(server, "calm")).pid == calm_pid
    back = await Client.connect(f"{server.url}/victim")
    await back.close()


@pytest.mark.parametrize("mode", ["embedded", "multiproc"])
async def test_operator_restart_from_the_cli_while_peers_are_connected(
        mode: str, tmp_path: Path) -> None:
    args = ["--port", "0", "--actor-system", mode]
    if mode == "multiproc":
        args += ["--admin-port", str(free_port())]
    server = await ServeProcess.start(*args)
    try:
        port = server.url.split(":")[2].split("/")[0]
        alice = await Client.connect(f"{server.url}/demo")
        bob = await Client.connect(f"{server.url}/demo")
        await alice.recv_event("joined")
        status, out, err = await run_cli("admin", "--port", port, "--json", "list")
        assert status == 0, err
        [demo] = json.loads(out)
        if mode == "multiproc":
            record_actor_group(demo["pid"])
        assert (demo["state"], demo["peers"], demo["restarts"]) == ("running", 2, 0)
        status, out, err = await run_cli("admin", "--port", port, "list")
        assert status == 0, err
        assert out.splitlines()[1].split()[:4] == ["demo", "running", "2", "0"]
        status, out, err = await run_cli("admin", "--port", port, "restart", "demo")
        assert (status, out.strip()) == (0, "ok"), err
        for client in (alice, bob):
            await expect_room_closed(client, "restarted by operator")
        status, out, err = await run_cli("admin", "list", "--port", port, "--json")  # after, too
        [demo] = json.loads(out)
        assert (demo["name"], demo["state"], demo["restarts"]) == ("demo", "running", 1)
        carol = await Client.connect(f"{server.url}/demo")
        status, out, _ = await run_cli("admin", "--port", port, "peers", "demo")
        assert carol.peer_id in out
        status, out, err = await run_cli("admin", "--port", port, "kick", "demo", carol.peer_id)
        assert status == 0 and await carol.closed() == 1000
        status, _, err = await run_cli("admin", "--port", port, "stop", "nowhere")
        assert status == 2 and "no such room 'nowhere'" in err
        status, _, err = await run_cli("admin", "--port", port, "create", "a/b")
        assert status == 2 and "room name 'a/b' contains '/'" in err  # the gateway's rule
    finally:
        assert await server.signal_and_wait() == 0


async def test_a_killed_servers_stale_state_file_says_it_is_gone() -> None:
    server = await ServeProcess.start("--port", "0")
    port = server.url.split(":")[2].split("/")[0]
    server.process.kill()  # no clean stop: its state file stays behind
    await server.process.wait()
    status, _, err = await run_cli("admin", "list", "--port", port)
    assert status == 2 and f"the membrane-rtc server on port {port} is gone" in err
    status, _, err = await run_cli("admin", "list", "--port", port)
    assert status == 2 and "no state file" in err  # the stale file was removed


async def test_admin_without_a_server_or_token_is_refused(tmp_path: Path) -> None:
    status, _, err = await run_cli("admin", "--port", "1", "list")
    assert status == 2 and "no membrane-rtc server on port 1" in err
    status, _, err = await run_cli("admin", "--admin-port", "1", "list")
    assert status == 2 and "no multi-process server on admin port 1" in err


async def test_a_crash_is_logged_once_with_its_traceback_and_clients_learn_no_internals() -> None:
    """The operator's log gets the user's file and line; clients only "room_crashed" - the
    exception's text is the server's business (unless --expose-errors, for development)."""
    for expose in (False, True):
        args = ["--port", "0", "--room", "f", "--room-class", FAULTY,
                "--room-options", '{"raise_in": "on_forward"}']
        server = await ServeProcess.start(*args, *(["--expose-errors"] if expose else []))
        try:
            client = await Client.connect(f"{server.url}/f")
            await client.send("boom", None, "all")
            await expect_room_closed(
                client, "on_forward raised RuntimeError: on_forward failure" if expose
                else "room_crashed")
            await server.log_line("room f crashed")
        finally:
            assert await server.signal_and_wait() == 0
        log = "".join(server.stderr)
        assert log.count("Traceback (most recent call last)") == 1
        assert 'faulty_room.py", line' in log and "RuntimeError: on_forward failure" in log
