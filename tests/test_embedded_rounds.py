"""The embedded actor system's rounds on the event loop (membrane_rtc/runtime/embedded.py):
the one loop timer for Thespian's next wakeup, on uvloop (what ``membrane-rtc serve`` runs
when it is installed) and on asyncio's own loop. No actor system: its timers are stood in for."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest
import uvloop

from membrane_rtc.runtime.embedded import EmbeddedRounds
from membrane_rtc.runtime.ordering import OrderedSender

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop, "asyncio": asyncio.new_event_loop}


class Wakeups:
    """Stands in for simpleSystemBase's timers: one, due at loop time ``at`` (None: none);
    counts how often a round fired it."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.fired = 0

    def due_in(self) -> float | None:
        if self.at is None:
            return None
        return max(0.0, self.at - asyncio.get_running_loop().time())

    def fire_due(self, system: Any) -> None:
        self.fired += 1
        self.at = None


class System:
    """An actor system with nothing to say (``listen`` finds nothing)."""

    def listen(self, timeout: float) -> None:
        return None


class Replies:
    """Where a round hands what the actors sent: here, nothing."""

    def dispatch(self, messages: list[Any]) -> None:
        assert messages == []


@pytest.mark.parametrize("loop", LOOPS)
def test_a_timer_armed_for_a_time_already_past_is_moved_and_fires(loop: str) -> None:
    """uvloop hands a timer armed for a time already past a plain Handle, without ``when()``;
    the next round must still be able to move it, and the wakeup fire once, by itself."""
    async def main() -> int:
        rounds = EmbeddedRounds(System(), asyncio.get_running_loop(),  # type: ignore[arg-type]
                                0.02, OrderedSender("gw", numbered=False), lambda token: None,
                                Replies())  # type: ignore[arg-type]
        wakeups = rounds._wakeups = Wakeups()  # type: ignore[assignment]
        now = asyncio.get_running_loop().time()
        wakeups.at = now - 0.001  # became due during the round, after its own check
        rounds._arm_timer()
        wakeups.at = now + 0.05  # another round before that timer ran: the next one moved
        rounds._arm_timer()
        deadline = now + 5
        while wakeups.fired == 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return wakeups.fired

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        assert runner.run(main()) == 1
