"""``membrane-rtc serve`` as a real subprocess: frames, clean shutdown, one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import signal
import sys
import socket
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import dataclasses

import pytest

from membrane_rtc import Server, ServerConfig
from membrane_rtc.ops.cli import build_parser
from membrane_rtc.config import SETTINGS
from membrane_rtc.config_checks import ConfigError

from .support.net import free_port
from .support.client import Client, http_get, refused_status
from .support.process import CONSOLE_SCRIPT, ServeProcess, run_cli
from .support.tools import require
from .support.waiting import until

pytestmark = pytest.mark.slow  # membrane-rtc as a subprocess per case

Start = Callable[..., Awaitable[ServeProcess]]


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    started: list[ServeProcess] = []

    async def start(*args: str, **kwargs) -> ServeProcess:
        process = await ServeProcess.start("--port", "0", *args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        await process.stop()


async def test_ctrl_c_closes_sockets_with_1001_at_once_and_terminates_rooms(
        serve: Start, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    server = await serve("--room", "demo", "--room", "other",
                         "--room-class", "tests/support/marker_room.py:MarkerRoom",
                         "--room-options", f'{{"marker": "{marker}"}}')
    assert sorted(marker.read_text().splitlines()) == ["init demo", "init other"]
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    await alice.recv_event("joined")
    await bob.send("offer", {"sdp": "v=0"}, [alice.peer_id])
    assert (await alice.recv_event("offer"))["from"] == bob.peer_id
    assert await server.signal_and_wait(signal.SIGINT) == 0
    assert await alice.closed() == 1001 and await bob.closed() == 1001
    assert sorted(marker.read_text().splitlines()) == [
        "init demo", "init other", "terminate demo", "terminate other"]
    assert "membrane-rtc stopped" in "".join(server.stdout)


def mode_args(mode: str) -> list[str]:
    return ["--actor-system", mode] + (["--admin-port", str(free_port())]
                                       if mode == "multiproc" else [])


@pytest.mark.parametrize("mode", ["embedded", "multiproc"])
async def test_sigterm_drains_readiness_goes_first_then_clients_get_1012(
        serve: Start, mode: str) -> None:
    server = await serve("--drain-timeout", "2", *mode_args(mode))
    base = server.url.rsplit("/", 1)[0].replace("ws://", "http://")
    assert await http_get(f"{base}/healthz") == (200, "ok\n")
    assert await http_get(f"{base}/readyz") == (200, "ready\n")
    client = await Client.connect(f"{server.url}/demo")
    assert server.process.returncode is None
    server.process.send_signal(signal.SIGTERM)

    async def not_ready() -> bool:
        return (await http_get(f"{base}/readyz"))[0] == 503
    await until(not_ready)
    assert client.connection.close_code is None  # readiness went 503 before the close
    assert await refused_status(f"{server.url}/demo") == 503  # new clients go elsewhere
    assert await client.closed(timeout=10) == 1012
    assert client.connection.close_reason == "server restarting"
    assert await asyncio.wait_for(server.process.wait(), 20) == 0


async def test_admin_drain_drains_then_stops(serve: Start) -> None:
    server = await serve("--drain-timeout", "0.5")
    client = await Client.connect(f"{server.url}/demo")
    port = server.url.split(":")[2].split("/")[0]
    status, out, err = await run_cli("admin", "drain", "--port", port)
    assert (status, out.strip()) == (0, "ok"), err
    assert await client.closed(timeout=10) == 1012
    assert await asyncio.wait_for(server.process.wait(), 20) == 0


@pytest.mark.parametrize("mode,hang", [("embedded", "spin"), ("multiproc", "sleep")])
async def test_sigterm_is_bounded_even_when_an_on_terminate_hangs(
        serve: Start, mode: str, hang: str) -> None:
    """A hanging on_terminate is cut by the callback time limit: the server still closes
    every socket and exits 0, within the limit plus the shutdown itself."""
    args = ["--room", "stuck", "--room", "fine", "--room-class", "tests.support.hanging:HangingRoom",
            "--room-options", json.dumps({"terminate": hang}), "--callback-timeout", "1",
            *mode_args(mode)]
    server = await serve(*args, "--drain-timeout", "0")
    peers = [await Client.connect(f"{server.url}/{room}") for room in ("stuck", "fine")]
    assert await server.signal_and_wait(signal.SIGTERM, timeout=15) == 0
    assert [await peer.closed() for peer in peers] == [1012, 1012]  # drained at once
    assert "ran past its time limit" in "".join(server.stderr)


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_serve_on_either_event_loop(serve: Start, event_loop: str) -> None:
    """uvloop is an extra ('[speed]'; the test extra has it): used when installed, or not."""
    server = await serve("--event-loop", event_loop)
    assert f"event loop: {event_loop})" in "".join(server.stdout)
    a = await Client.connect(f"{server.url}/demo")
    b = await Client.connect(f"{server.url}/demo")
    await a.send("offer", {"sdp": "x"}, [b.peer_id])
    assert (await b.recv_event("offer"))["from"] == a.peer_id
    assert await server.signal_and_wait() == 0


async def test_default_serve_has_a_demo_room_and_the_ready_actors_work(serve: Start) -> None:
    server = await serve()
    client = await Client.connect(f"{server.url}/demo")
    await client.close()
    capped = await serve("--room", "duo", "--room-class", "actors.capped:CappedRoom",
                         "--room-options", '{"max_peers": 1}',
                         "--peer-class", "actors.token:TokenPeer",
                         "--peer-options", '{"token": "t0k"}')
    assert await refused_status(f"{capped.url}/duo?token=nope") == 401
    assert await refused_status(f"{capped.url}/demo?token=t0k") == 404
    first = await Client.connect(f"{capped.url}/duo?token=t0k")
    second = await Client.connect(f"{capped.url}/duo?token=t0k", authenticate=False)
    assert (await second.recv_event("error"))["data"]["details"] == "room_is_full"
    await first.close()


async def test_a_module_spec_from_the_working_directory(serve: Start, tmp_path: Path) -> None:
    (tmp_path / "my_rooms.py").write_text(
        "from membrane_rtc import Room\nclass Lobby(Room):\n    pass\n")
    server = await serve("--room-class", "my_rooms:Lobby", cwd=tmp_path)
    client = await Client.connect(f"{server.url}/demo")
    await client.close()


@pytest.mark.parametrize("args, words", [
    (["--room-class", "nowhere:Room"], "--room-class: cannot import module 'nowhere'"),
    (["--room-class", "actors/capped.py:Nope"], "has no attribute 'Nope'"),
    (["--peer-class", "actors.capped:CappedRoom"], "is not a subclass of membrane_rtc.peer.Peer"),
    (["--room-options", "{max_peers: 2}"], "--room-options: not valid JSON"),
    (["--peer-options", "[1,"], "--peer-options: not valid JSON"),
    (["--room-class", "docs/tutorial/lobby.py"], "--room-class: bad class spec"),
    (["--peer-class", "actors.token"], "--peer-class: bad class spec"),
    (["--max-peers-per-room", "-1"], "--max-peers-per-room: must be >= 0"),
    (["--idle-timeout", "0"], "--idle-timeout: must be positive"),
    (["--metrics-port", "70000"], "--metrics-port: 70000 is not a port number"),
    (["--restart-window", "-2"], "--restart-window: must be positive"),
    (["--room", ""], "--room: a room name cannot be empty"),
    (["--room", "a/b"], "--room: room name 'a/b' contains '/'"),
    (["--resume-grace", "-1"], "--resume-grace: must be >= 0"),
    (["--turn-url", "turn:x"], "--turn-secret: TURN needs both a secret and at least one URL"),
])
async def test_bad_input_is_one_clear_line(args: list[str], words: str) -> None:
    status, out, err = await run_cli("serve", "--port", "0", *args)
    assert status == 2
    assert words in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


async def test_a_busy_port_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, out, err = await run_cli("serve", "--port", str(port))
    assert status == 2
    assert f"cannot listen on 127.0.0.1:{port} (websockets, --port)" in err
    assert "Traceback" not in err


def serve_parser() -> argparse.ArgumentParser:
    [serve] = [action.choices["serve"] for action in build_parser()._actions
               if isinstance(action.choices, dict) and "serve" in action.choices]
    return serve


async def test_every_setting_has_exactly_one_flag_and_help_shows_it() -> None:
    """Each ServerConfig field is one declared setting with one flag (no hand-kept table of
    exceptions: the declaration is the table), and --help shows every flag."""
    actions = [action for action in serve_parser()._actions if action.option_strings]
    by_key = {setting.key: setting for setting in SETTINGS}
    for setting in dataclasses.fields(ServerConfig):
        [declared] = [s for s in SETTINGS if s.field == setting.name]
        flags = [action for action in actions if setting_of(action) == declared.key]
        assert len(flags) == 1, setting.name
        assert declared.flag in flags[0].option_strings
    assert {setting_of(action) for action in actions} - {None} == set(by_key)
    status, out, _ = await run_cli("serve", "--help")
    assert status == 0
    for action in actions:
        assert action.option_strings[0] in out, action.option_strings
    assert "(embedded actor system)" not in out


def setting_of(action: argparse.Action) -> str | None:
    """The setting a serve flag sets (None: --config, --print-config, --help)."""
    key = action.dest.replace("_", "-")
    return key if any(setting.key == key for setting in SETTINGS) else None


@pytest.mark.parametrize("settings, field", [
    ({"max_peers_per_room": -1}, "max_peers_per_room"),
    ({"actor_system": "threads"}, "actor_system"),
    ({"roles": frozenset({"rooms"})}, "roles"),
    ({"convention": "127.0.0.1:1900"}, "convention"),  # needs the multiproc actor system
    ({"port": -5}, "port"),
])
def test_server_refuses_a_bad_config_as_the_cli_does(settings: dict[str, Any], field: str) -> None:
    """One validation for both ways in: Server(...) fails before starting anything."""
    with pytest.raises(ConfigError) as error:
        Server(ServerConfig(**settings))
    assert error.value.field == field and str(error.value).startswith(f"{field}: ")


async def test_version_and_python_dash_m() -> None:
    import membrane_rtc

    status, out, _ = await run_cli("--version")
    assert (status, out.strip()) == (0, f"membrane-rtc {membrane_rtc.__version__}")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "membrane_rtc", "serve", "--help", stdout=asyncio.subprocess.PIPE)
    out_bytes, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0 and b"--event-loop" in out_bytes


def test_auto_keeps_asyncio_for_the_multiprocess_actor_system() -> None:
    from membrane_rtc.ops.cli import loop_factory

    assert loop_factory(ServerConfig(event_loop="auto", actor_system="multiproc")) is None
    assert loop_factory(ServerConfig(event_loop="asyncio")) is None
    require(importlib.util.find_spec("uvloop"), "needs uvloop: pip install '.[speed]'")
    import uvloop

    assert loop_factory(ServerConfig(event_loop="auto")) is uvloop.new_event_loop
    assert loop_factory(ServerConfig(event_loop="uvloop", actor_system="multiproc")) \
        is uvloop.new_event_loop


async def test_new_room_refuses_a_bad_name_and_never_overwrites(tmp_path: Path) -> None:
    """The scaffold's happy path runs in tests/test_docs.py (the tutorial, in a fresh venv)."""

    async def new(name: str) -> tuple[int | None, str]:
        process = await asyncio.create_subprocess_exec(
            str(CONSOLE_SCRIPT), "new", "room", name, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), 20)
        return process.returncode, err.decode()

    assert (await new("town_hall"))[0] == 0
    (tmp_path / "town_hall.py").write_text("# mine\n")
    status, err = await new("town_hall")
    assert status == 2 and "exists already; nothing was written" in err
    assert (tmp_path / "town_hall.py").read_text() == "# mine\n"
    status, err = await new("Not A Name")
    assert status == 2 and "not a lower-case Python module name" in err
