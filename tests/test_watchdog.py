"""The watchdog: a callback past its time limit is interrupted; an idle process is not woken."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from membrane_rtc.runtime.watchdog import CHECK_INTERVAL, Watchdog


def switches(thread: threading.Thread) -> int:
    """How often ``thread`` has given up the CPU of its own accord (each wait, each sleep)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("voluntary_ctxt_switches")))


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_callback_past_its_limit_is_interrupted() -> None:
    watchdog = Watchdog()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="no answer within 0.2 s"):
        with watchdog.limit("busy", 0.2):
            while time.monotonic() - started < 5:
                pass  # busy in Python code: the interruption lands here
    assert time.monotonic() - started < 0.2 + 10 * CHECK_INTERVAL


def test_an_idle_watchdog_does_not_wake_and_looks_again_when_a_callback_runs() -> None:
    watchdog = Watchdog()
    with watchdog.limit("quick", 5):
        pass
    thread = watchdog._thread
    assert thread is not None
    wait_until(lambda: not watchdog._looking.is_set())  # it found nothing running: it waits
    time.sleep(0.05)  # let it reach the wait
    before = switches(thread)
    time.sleep(20 * CHECK_INTERVAL)  # it used to look every CHECK_INTERVAL: ~20 wakeups
    assert switches(thread) - before == 0
    # A callback that runs now is watched again: it is interrupted in time.
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with watchdog.limit("busy", 0.2):
            while time.monotonic() - started < 5:
                pass
    assert time.monotonic() - started < 0.2 + 10 * CHECK_INTERVAL
