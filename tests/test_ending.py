"""The actor system's end as one event on the loop: told from the loop, from a thread, or by
an exiting process's pidfd; never during a stop."""

from __future__ import annotations

import asyncio
import subprocess
import threading

import pytest

from membrane_rtc.runtime.ending import Ending


async def test_an_end_told_on_the_loop_or_from_a_thread_wakes_the_waiter() -> None:
    for tell in ("loop", "thread"):
        ending = Ending(expected=lambda: False)
        ending.start(asyncio.get_running_loop())
        waiter = asyncio.create_task(ending.wait())
        await asyncio.sleep(0)
        assert not waiter.done()
        if tell == "loop":
            ending.now()
        else:
            thread = threading.Thread(target=ending.now_from_thread)
            thread.start()
            thread.join()
        await asyncio.wait_for(waiter, 5)


async def test_an_end_during_a_stop_is_not_told() -> None:
    stopping = [True]
    ending = Ending(expected=lambda: stopping[0])
    ending.start(asyncio.get_running_loop())
    ending.now()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ending.wait(), 0.2)


async def test_the_watched_process_exiting_is_the_end() -> None:
    child = subprocess.Popen(["sleep", "30"])
    ending = Ending(expected=lambda: False)
    ending.start(asyncio.get_running_loop())
    try:
        ending.watch_admin(child.pid)
        await asyncio.sleep(0)  # the reader is added on the loop
        assert not ending.admin_exited()
        child.kill()
        await asyncio.wait_for(ending.wait(), 5)
        assert ending.admin_exited() and ending.admin_pid == child.pid
    finally:
        child.kill()
        child.wait()
        ending.close()
    assert not ending.admin_exited()  # closed: nothing watched any more
