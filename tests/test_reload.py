"""``serve --reload``: edit a room's file under a running server; the next join sees the new
code, and a file that does not compile keeps the old code running, said in one line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from .support.client import Client
from .support.net import free_port
from .support.process import ServeProcess, run_cli
from .support.waiting import expect_room_closed

pytestmark = pytest.mark.slow  # servers as subprocesses, waiting for file events

ROOM = '''from membrane_rtc import Message, Room


class Greeter(Room):
    def on_join(self, auth):
        self.send(Message("greeting", "{word}", to=[auth.peer_id]))
'''


async def greeting(url: str) -> str:
    client = await Client.connect(url)
    frame = await client.recv_event("greeting")
    await client.close()
    return str(frame["data"])


@pytest.mark.parametrize("mode", ["embedded", "multiproc"])
async def test_a_changed_room_file_restarts_its_rooms_with_the_new_code(
        tmp_path: Path, mode: str) -> None:
    room = tmp_path / "greeter.py"
    room.write_text(ROOM.format(word="v1"))
    args = ["--port", "0", "--reload", "--room", "hall", "--room-class", "greeter.py:Greeter",
            "--actor-system", mode]
    if mode == "multiproc":
        args += ["--admin-port", str(free_port())]
    server = await ServeProcess.start(*args, cwd=tmp_path)
    try:
        url = f"{server.url}/hall"
        assert await greeting(url) == "v1"
        watching = await server.log_line("reload: watching")
        assert str(room) in watching
        room.write_text(ROOM.format(word="v2"))
        assert "rooms restarted: hall" in await server.log_line("greeter.py changed")
        assert await greeting(url) == "v2"
        room.write_text("class Greeter(:\n")
        broken = await server.log_line("the old code keeps running")
        assert "greeter.py:1:" in broken and "Traceback" not in "".join(server.stderr)
        assert await greeting(url) == "v2"
    finally:
        assert await server.signal_and_wait() == 0


FAILS_AT_IMPORT = '''from membrane_rtc import Room

raise RuntimeError("half-written")
'''

FAILS_ON_INIT = '''from membrane_rtc import Room


class Greeter(Room):
    def on_init(self, options):
        raise RuntimeError("on_init is broken")
'''


async def log_lines(server: ServeProcess, text: str, count: int, timeout: float = 15) -> list[str]:
    """The stderr lines containing ``text``, once there are ``count`` of them (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(found := [line for line in server.stderr if text in line]) < count:
        if loop.time() > deadline:
            raise AssertionError(f"{count} log lines with {text!r} expected: "
                                 f"{''.join(server.stderr)}")
        await asyncio.sleep(0.05)
    return found


async def room_state(port: str, name: str) -> str:
    status, out, err = await run_cli("admin", "list", "--json", "--port", port)
    assert status == 0, err
    return str(next(room["state"] for room in json.loads(out) if room["name"] == name))


@pytest.mark.parametrize("mode", ["embedded", "multiproc"])
async def test_the_reloader_survives_a_module_that_raises_and_brings_a_failed_room_back(
        tmp_path: Path, mode: str) -> None:
    """The issue's sequence: a save that raises at import is one line with file and line, the
    old code keeps running; the fix restarts the room; code that fails on start fails the
    room, and the next good save brings it back; admin restart serves the current code; saves
    after all this are still seen. Clients are told a reload restarted their room."""
    room = tmp_path / "greeter.py"
    room.write_text(ROOM.format(word="v1"))
    args = ["--port", "0", "--reload", "--room", "hall", "--room-class", "greeter:Greeter",
            "--actor-system", mode, "--restart-window", "60"]
    if mode == "multiproc":
        args += ["--admin-port", str(free_port())]
    server = await ServeProcess.start(*args, cwd=tmp_path)
    port = server.url.split(":")[2].split("/")[0]
    url = f"{server.url}/hall"
    changed = "greeter.py changed; rooms restarted"
    try:
        await server.log_line("reload: watching")
        assert await greeting(url) == "v1"
        room.write_text(FAILS_AT_IMPORT)
        [broken] = await log_lines(server, "the old code keeps running", 1)
        assert f"{room}:3: RuntimeError: half-written" in broken, broken
        assert await greeting(url) == "v1"  # nothing restarted: the old code serves
        assert await room_state(port, "hall") == "running"

        staying = await Client.connect(url)
        await staying.recv_event("greeting")
        room.write_text(ROOM.format(word="v2"))  # the fix
        assert "rooms restarted: hall" in (await log_lines(server, changed, 1))[0]
        await expect_room_closed(staying, "restarted for a code change")
        assert await greeting(url) == "v2"
        assert "Traceback" not in "".join(server.stderr)  # a bad save: one line, that's all

        room.write_text(FAILS_ON_INIT)  # imports, but the room cannot start: it fails
        assert "did not start: hall" in (await log_lines(server, changed, 2))[1]
        assert await room_state(port, "hall") == "failed"
        room.write_text(ROOM.format(word="v3"))  # the next good save brings it back
        assert "rooms restarted: hall" in (await log_lines(server, changed, 3))[2]
        assert await greeting(url) == "v3"

        status, _, err = await run_cli("admin", "restart", "hall", "--port", port)
        assert status == 0, err
        assert await greeting(url) == "v3"  # the current code, not an older one
        room.write_text(ROOM.format(word="v4"))  # still watching
        await log_lines(server, changed, 4)
        assert await greeting(url) == "v4"
        assert "reload.py" not in "".join(server.stderr)  # (the room's crashes have theirs)
        assert len(await log_lines(server, "the old code keeps running", 1)) == 1
    finally:
        assert await server.signal_and_wait() == 0
