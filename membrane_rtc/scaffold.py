"""``membrane-rtc new room NAME``: a room module and its test, ready to run and to change."""

from __future__ import annotations

from pathlib import Path

__all__ = ["new_room", "ScaffoldError"]

ROOM = '''"""The {name} room (written by ``membrane-rtc new room {name}``): change it as you need.

Serve it: membrane-rtc serve --room {name} --room-class {name}.py:{cls}
"""

from typing import Any

from membrane_rtc import AuthData, JoinRefused, Message, Room


class {cls}(Room):
    """Lets in at most ``max_peers`` peers (room option, default 4); forwards everything."""

    def on_init(self, options: Any) -> None:
        self.max_peers = int((options or {{}}).get("max_peers", 4))
        self.peers: set[str] = set()

    def on_join(self, auth: AuthData) -> None:
        if len(self.peers) >= self.max_peers:
            raise JoinRefused("room_is_full")
        self.peers.add(auth.peer_id)

    def on_leave(self, peer_id: str) -> None:
        self.peers.discard(peer_id)

    def on_forward(self, message: Message) -> Message | None:
        return message
'''

TEST = '''"""Tests of the {name} room, without a server (membrane_rtc.testing). Run: pytest {test}"""

import pytest

from membrane_rtc import JoinRefused
from membrane_rtc.testing import RoomHarness

from {name} import {cls}


def test_peers_join_talk_and_leave() -> None:
    room = RoomHarness({cls}, {{"max_peers": 2}}, name="{name}")
    alice, bob = room.join(), room.join()
    assert alice.events() == ["authenticated", "joined"]
    alice.send("offer", {{"sdp": "..."}}, to=[bob.peer_id])
    assert bob.received[-1].event == "offer" and bob.received[-1].from_ == alice.peer_id
    with pytest.raises(JoinRefused):
        room.join()
    bob.leave()
    assert alice.received[-1].event == "left"
    room.terminate()
'''


class ScaffoldError(Exception):
    """The scaffold cannot be written (a bad name, or the files exist already)."""


def new_room(name: str, directory: Path) -> tuple[Path, Path, str]:
    """Write ``NAME.py`` and ``test_NAME.py`` into ``directory``; return their paths and the
    class name. Refuses a name that is not a Python module name, and existing files."""
    if not name.isidentifier() or not name.islower():
        raise ScaffoldError(f"{name!r} is not a lower-case Python module name (e.g. lobby, "
                            "video_call)")
    cls = "".join(part.capitalize() for part in name.split("_") if part) + "Room"
    room, test = directory / f"{name}.py", directory / f"test_{name}.py"
    for path in (room, test):
        if path.exists():
            raise ScaffoldError(f"{path} exists already; nothing was written")
    room.write_text(ROOM.format(name=name, cls=cls))
    test.write_text(TEST.format(name=name, cls=cls, test=test.name))
    return room, test, cls
