"""What an operator sees when starting ``membrane-rtc serve`` (the installed command, in a
subprocess): classes that refuse their options stop the start, in one line, before anything
listens; errors name the right port and the missing extra; a clean start-up output; the ready
actors installed inside the package, found by their short SPEC from any directory."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from membrane_rtc import Server, ServerConfig
from membrane_rtc.config_checks import ConfigError
from membrane_rtc.ops.admin import AdminClient
from membrane_rtc.runtime.bridge import DEFAULT_ADMIN_PORT
from membrane_rtc.testing import RoomHarness

from actors.capped import CappedRoom

from .conftest import ServerFactory
from .support.client import Client, refusal
from .support.net import free_port
from .support.process import ServeProcess, run_cli

pytestmark = pytest.mark.slow  # membrane-rtc serve as a subprocess per case


async def refused_start(*args: str, env: dict[str, str] | None = None) -> str:
    """``serve ARGS`` must stop before anything starts: exit status 2 and its one line,
    which is all it wrote (no room started, no actor system, no banner)."""
    status, out, err = await run_cli("serve", "--port", "0", *args, env=env)
    assert status == 2, (out, err)
    assert out == ""
    [line] = err.strip().splitlines()
    assert line.startswith("membrane-rtc: error: ")
    return line


@pytest.mark.parametrize("args, words", [
    (["--peer-class", "actors.token:TokenPeer"],
     '--peer-options: TokenPeer needs {"token": "..."}'),
    (["--peer-class", "actors.jwt_auth:JWTPeer"],
     "--peer-options: JWTPeer: no secret: give 'secret', 'secret_env' or "
     "$MEMBRANE_RTC_JWT_SECRET"),
    (["--peer-class", "actors.jwt_auth:JWTPeer", "--peer-options",
      '{"public_key_file": "/nonexistent/issuer.pem"}'],
     "--peer-options: JWTPeer: cannot read public_key_file /nonexistent/issuer.pem"),
    (["--peer-class", "actors.jwt_auth:JWTPeer", "--peer-options", '{"secret": "short"}'],
     "--peer-options: JWTPeer: the HS256 secret is 5 bytes long, shorter than 32"),
    (["--room-class", "actors.capped:CappedRoom", "--room-options", '{"max_peers": "two"}'],
     "--room-options: CappedRoom: max_peers must be a whole number of at least 1, not 'two'"),
    (["--room-options", '{"max_peers": 2}'], "--room-options: DefaultRoom takes no options"),
    (["--room-class", "actors.presence:PresenceRoom", "--room-options", "[1]"],
     "--room-options: PresenceRoom takes no options"),
    (["--auto-create", "--auto-room-class", "actors.capped:CappedRoom",
      "--auto-room-options", '{"max_peers": 0}'], "--auto-room-options: CappedRoom: max_peers"),
])
async def test_a_class_refusing_its_options_stops_the_start_in_one_line(
        args: list[str], words: str) -> None:
    line = await refused_start(*args, env={"MEMBRANE_RTC_JWT_SECRET": ""})
    assert words in line, line


async def test_the_check_names_the_setting_as_it_was_given() -> None:
    line = await refused_start(env={"MEMBRANE_RTC_PEER_CLASS": "actors.token:TokenPeer"})
    assert "--peer-options: TokenPeer needs" in line  # the options are what is missing
    line = await refused_start("--peer-class", "actors.token:TokenPeer",
                               env={"MEMBRANE_RTC_PEER_OPTIONS": '{"tokn": "s3cret"}'})
    assert line.startswith("membrane-rtc: error: MEMBRANE_RTC_PEER_OPTIONS: TokenPeer needs")
    assert "s3cret" not in line  # peer options may hold secrets: not echoed


async def test_server_start_checks_before_the_actor_system_starts() -> None:
    """Embedding programs get the same check from Server.start()."""
    server = Server(ServerConfig(port=0, peer_class="actors.token:TokenPeer"))
    with pytest.raises(ConfigError, match="TokenPeer needs") as caught:
        await server.start()
    assert caught.value.field == "peer_options"
    assert server.bridge.loop is None and server.gateway is None
    with pytest.raises(ValueError, match="max_peers must be a whole number"):
        RoomHarness(CappedRoom, {"max_peers": 0})  # and a room author's tests


async def test_admin_create_asks_the_class_too() -> None:
    server = await ServeProcess.start("--port", "0")
    try:
        port = server.url.split(":")[2].split("/")[0]
        status, _, err = await run_cli("admin", "create", "duo", "--port", port,
                                       "--room-class", "actors.capped:CappedRoom",
                                       "--room-options", '{"max_peers": -1}')
        assert status == 2 and "CappedRoom: max_peers must be a whole number" in err, err
        status, _, err = await run_cli("admin", "create", "duo", "--port", port,
                                       "--room-class", "actors.capped:CappedRoom",
                                       "--room-options", '{"max_peers": 2}')
        assert status == 0, err
    finally:
        await server.stop()


async def test_stop_after_a_failed_start_has_nothing_left_to_do(
        caplog: pytest.LogCaptureFixture) -> None:
    """A start that failed (its port taken) already stopped what it had started: a stop()
    after it (a caller's cleanup) asks no actor system that is gone, and logs nothing."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = Server(ServerConfig(port=taken.getsockname()[1]))
        with pytest.raises(OSError):
            await server.start()
    with caplog.at_level("WARNING"):
        await asyncio.wait_for(server.stop(), 30)
    assert not caplog.records, [record.getMessage() for record in caplog.records]


@pytest.mark.parametrize("flag, what", [("--metrics-port", "metrics"),
                                        ("--admin-port", "the admin channel")])
async def test_a_taken_port_is_named_for_what_it_is(flag: str, what: str) -> None:
    """Not the websocket port, which was free: the one that was taken, and its flag."""
    websocket_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, out, err = await run_cli("serve", "--port", str(websocket_port), flag,
                                         str(port))
    assert status == 2, out
    assert f"cannot listen on 127.0.0.1:{port} ({what}, {flag}): " in err, err
    assert f":{websocket_port}" not in err and "Traceback" not in err


async def test_a_missing_reload_extra_is_said_before_the_actor_system_starts(
        tmp_path: Path) -> None:
    hidden = tmp_path / "hidden" / "watchfiles"
    hidden.mkdir(parents=True)  # an installation without the [reload] extra
    (hidden / "__init__.py").write_text("raise ImportError(\"No module named 'watchfiles'\")\n")
    line = await refused_start("--reload", env={"PYTHONPATH": str(hidden.parent)})
    assert "--reload: needs watchfiles: pip install 'membrane-rtc[reload]'" in line


async def test_an_unknown_room_is_a_404_that_says_so() -> None:
    """The 404's reason is the server's own: said. A 401's (the client's credentials) is
    not: it stays in the log."""
    server = await ServeProcess.start("--port", "0", "--peer-class", "actors.token:TokenPeer",
                                      "--peer-options", '{"token": "t0k"}')
    try:
        unknown = await refusal(f"{server.url}/nowhere?token=t0k")
        assert unknown.response.status_code == 404
        assert unknown.response.body == b"Not Found: no such room\n"
        unauthorized = await refusal(f"{server.url}/demo?token=nope")
        assert unauthorized.response.status_code == 401
        assert unauthorized.response.body == b"Unauthorized\n"
    finally:
        await server.stop()


async def test_the_start_up_output_labels_the_admin_channel_and_drops_thespians_noise() -> None:
    server = await ServeProcess.start("--port", "0")
    try:
        listening = await server.log_line("server listening on")
        assert "admin channel" in listening and "membrane-rtc admin" in listening
    finally:
        await server.stop()
    assert "Registered ActorAddr" not in "".join(server.stderr)
    status, out, _ = await run_cli("admin", "create", "--help")
    assert status == 0
    assert "the room's name" in out and "its Room class" in out and "as JSON" in out


@pytest.mark.parametrize("mode", ["embedded", "multiproc"])
async def test_the_short_actors_spec_works_installed_from_any_directory(
        tmp_path: Path, mode: str) -> None:
    """The ready actors are installed as membrane_rtc.actors: no top-level ``actors`` next
    to other projects' packages, and ``actors.capped:CappedRoom`` still names them from a
    directory without the repository's actors/ folder, in both actor-system modes (the
    multi-process mode loads the class in each room's process by its SPEC)."""
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import importlib.util as u; import membrane_rtc.actors.capped "
        "as c; print(u.find_spec('actors'), c.CappedRoom.__module__)", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(probe.communicate(), 20)
    assert out.decode().split() == ["None", "membrane_rtc.actors.capped"]
    args = ["--port", "0", "--room", "duo", "--room-class", "actors.capped:CappedRoom",
            "--room-options", '{"max_peers": 1}', "--actor-system", mode]
    if mode == "multiproc":
        args += ["--admin-port", str(free_port())]
    server = await ServeProcess.start(*args, cwd=tmp_path)
    try:
        first = await Client.connect(f"{server.url}/duo")
        second = await Client.connect(f"{server.url}/duo", authenticate=False)
        assert (await second.recv_event("error"))["data"]["details"] == "room_is_full"
        await first.close()
    finally:
        assert await server.signal_and_wait() == 0


async def test_admin_port_0_is_any_free_port_in_both_modes(
        start_server_each_mode: ServerFactory) -> None:
    """0 means "any free one", as for the websocket port: not the multi-process default 1900
    (which another server may hold); ``membrane-rtc admin`` finds the port chosen."""
    server = await start_server_each_mode(admin_port=0)
    if server.config.actor_system == "multiproc":
        assert server.bridge.admin_port not in (0, DEFAULT_ADMIN_PORT)
    else:
        assert server.admin_channel is not None and server.admin_channel.port != 0
    admin = await asyncio.to_thread(AdminClient.for_server, server.port)
    try:
        rooms = await asyncio.to_thread(admin.list_rooms)
    finally:
        await asyncio.to_thread(admin.close)
    assert [room.name for room in rooms] == ["demo"]
