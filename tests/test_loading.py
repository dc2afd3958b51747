"""Loading user classes from SPECs."""

from pathlib import Path

import pytest

from membrane_rtc import Peer, Room
from membrane_rtc.loading import SpecError, absolute_spec, load_class


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
