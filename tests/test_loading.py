"""Loading user classes from SPECs."""

import os
from pathlib import Path

import pytest

from membrane_rtc import Peer, Room
from membrane_rtc.loading import SpecError, absolute_spec, load_class, module_of


def test_module_spec() -> None:
    from actors.capped import CappedRoom
    assert load_class("actors.capped:CappedRoom", Room) is CappedRoom


def test_file_spec_loads_once(tmp_path: Path) -> None:
    source = tmp_path / "my_room.py"
    source.write_text("from membrane_rtc import Room\nclass Mine(Room):\n    pass\n")
    first = load_class(f"{source}:Mine", Room)
    assert first.__name__ == "Mine"
    assert load_class(f"{source}:Mine", Room) is first


def test_absolute_spec_keeps_module_specs() -> None:
    assert absolute_spec("actors.capped:CappedRoom") == "actors.capped:CappedRoom"
    assert absolute_spec("x.py:C").startswith("/")


@pytest.mark.parametrize("spec, words", [
    ("no_colon", "expected 'module:Class'"),
    ("no_such_module_xyz:Room", "cannot import module"),
    ("actors.capped:Nope", "has no attribute 'Nope'"),
    ("actors.capped:__doc__", "is not a class"),
    ("/nonexistent/file.py:Room", "no such file"),
    ("actors.token:TokenPeer", "is not a subclass of membrane_rtc.room.Room"),
])
def test_bad_specs_say_why(spec: str, words: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_class(spec, Room)
    assert words in str(caught.value)


def test_a_file_that_raises_on_import_is_a_spec_error(tmp_path: Path) -> None:
    source = tmp_path / "bad.py"
    source.write_text("raise RuntimeError('nope')\n")
    with pytest.raises(SpecError, match="RuntimeError: nope"):
        load_class(f"{source}:X", Peer)


def test_a_module_whose_reload_failed_is_loaded_again_once_fixed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve --reload`` and ``admin restart`` after a save that raised: the fixed file is
    what loads next, not what was left of the failed reload."""
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "reloaded_room_xyz.py"

    def save(text: str, mtime: int) -> None:
        source.write_text(text)
        os.utime(source, ns=(mtime, mtime))  # distinct, whatever the clock's granularity

    room = "from membrane_rtc import Room\nclass Mine(Room):\n    version = {}\n"
    save(room.format(1), 1_000_000_000)
    assert load_class("reloaded_room_xyz:Mine", Room).version == 1
    save("raise RuntimeError('half-written')\n", 2_000_000_000)
    with pytest.raises(SpecError, match="RuntimeError: half-written"):
        load_class("reloaded_room_xyz:Mine", Room)
    with pytest.raises(SpecError, match="half-written"):  # still stale: tried again
        load_class("reloaded_room_xyz:Mine", Room)
    save(room.format(3), 3_000_000_000)
    assert load_class("reloaded_room_xyz:Mine", Room).version == 3


def test_the_short_actors_spec_is_the_ready_actors() -> None:
    """In a checkout the repository's actors/ folder is importable as ``actors``; installed
    elsewhere the same SPEC is membrane_rtc.actors (tests/test_start_up.py runs that)."""
    assert module_of("actors.capped") == "actors.capped"
    assert module_of("actors_of_mine.lobby") == "actors_of_mine.lobby"
    assert module_of("actors.no_such_module_here") == "membrane_rtc.actors.no_such_module_here"
