"""membrane-rtc's pytest plugin (loaded through the ``pytest11`` entry point): the
``room_harness`` fixture, a factory of :class:`~membrane_rtc.testing.RoomHarness` whose rooms
are terminated after the test."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from .room import Room
from .testing import RoomHarness

HarnessFactory = Callable[..., RoomHarness]


@pytest.fixture
def room_harness() -> Iterator[HarnessFactory]:
    """``room_harness(RoomClass, options, **settings)`` -> a running :class:`RoomHarness`."""
    made: list[RoomHarness] = []

    def make(room_class: type[Room], options: Any = None, **settings: Any) -> RoomHarness:
        harness = RoomHarness(room_class, options, **settings)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.terminate()
