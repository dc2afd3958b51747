"""``membrane-rtc new room NAME``: a room module and its test, ready to run and to change."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import keyword
import sys
import sysconfig
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
    class name. Refuses existing files, and a name the test could not import the room by: not
    a lower-case Python module name, a keyword, or the name of a module that ``NAME.py``
    would shadow (the standard library's, an installed one's, one in ``directory``)."""
    check_name(name, directory)
    cls = "".join(part.capitalize() for part in name.split("_") if part) + "Room"
    room, test = directory / f"{name}.py", directory / f"test_{name}.py"
    for path in (room, test):
        if path.exists():
            raise ScaffoldError(f"{path} exists already; nothing was written")
    taken = _taken(name, directory)
    if taken:
        raise ScaffoldError(f"{name!r} is {taken}: {name}.py would shadow it{_instead(name, directory)}")
    room.write_text(ROOM.format(name=name, cls=cls))
    test.write_text(TEST.format(name=name, cls=cls, test=test.name))
    return room, test, cls


def check_name(name: str, directory: Path) -> None:
    """Raise ScaffoldError unless ``name`` can be a room module's name (files aside)."""
    if not name.isidentifier() or not name.islower() or name.startswith("_"):
        raise ScaffoldError(f"{name!r} is not a lower-case Python module name starting with a "
                            "letter (e.g. lobby, video_call)")
    if keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword: 'from {name} import ...' would not "
                            f"parse{_instead(name, directory)}")


def _taken(name: str, directory: Path) -> str | None:
    """What ``NAME.py`` in ``directory`` would shadow, said for the user, or None."""
    if name in sys.stdlib_module_names:
        return "a standard-library module"
    if name == "actors":  # the short SPECs (actors.capped:CappedRoom) name the ready actors
        return "the name of membrane-rtc's ready actors (actors.capped:CappedRoom...)"
    here = importlib.machinery.PathFinder.find_spec(name, [str(directory)])
    if here is not None and here.origin is not None:  # a package, an extension module
        return f"a module in {directory} already ({here.origin})"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # in sys.modules without a spec (__main__), or broken
        return "the name of a module this Python has already"
    if spec is None:
        return None
    if spec.origin in ("built-in", "frozen"):
        return "a standard-library module"
    if spec.origin is None:  # a namespace package: NAME.py would hide all of it
        return f"an installed package ({', '.join(spec.submodule_search_locations or [])})"
    stdlib = [Path(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")]
    origin = Path(spec.origin)
    if any(origin.is_relative_to(path) for path in stdlib) and "site-packages" not in origin.parts:
        return "a standard-library module"  # one sys.stdlib_module_names leaves out (test)
    return f"an installed module ({origin})"


def _instead(name: str, directory: Path) -> str:
    """``; pick another name (e.g. NAME_room)``, suggesting only a name that would do."""
    other = f"{name}_room"
    try:
        check_name(other, directory)
    except ScaffoldError:
        return "; pick another name"
    taken = _taken(other, directory) or any(
        (directory / f).exists() for f in (f"{other}.py", f"test_{other}.py"))
    return "; pick another name" if taken else f"; pick another name (e.g. {other})"
