"""``serve --reload``: edit a room's file under a running server; the next join sees the new
code, and a file that does not compile keeps the old code running, said in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support.client import Client
from .support.process import ServeProcess

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
    from .support.net import free_port

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
