"""Time limits on user callbacks: a hung ``Room`` or ``Peer`` callback becomes a crash.

Python cannot kill a thread, so one watchdog thread per process watches the callback running
on each actor thread. Past its deadline it raises :class:`CallbackTimeout` inside that thread
(``PyThreadState_SetAsyncExc``), which ends any callback busy in Python code; the room then
crashes as for any other exception and is restarted.

A callback blocked inside C (``time.sleep``, a socket read) only sees that exception when it
returns. In an actor process of the multi-process mode the watchdog then ends the process
(``os._exit``) after a grace period: the supervisor sees the room die, as after ``kill -9``, and
restarts it. In the embedded mode it cannot do that without taking the whole server down, so
it logs the stall (the multi-process mode is the isolation for callbacks that block).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: The process that started the server: the watchdog never ends that one.
SERVER_PID = os.getpid()
#: How often the watchdog looks (seconds); deadlines are met to within this.
CHECK_INTERVAL = 0.05
#: How long an interrupted callback may take to notice before it counts as stuck in C code.
STUCK_AFTER = 1.0
#: Exit status of an actor process ended because a callback stayed stuck in C code.
STUCK_EXIT_STATUS = 70


class CallbackTimeout(BaseException):
    """Raised inside a callback that ran past its time limit.

    A ``BaseException``, so that a callback's own ``except Exception`` cannot swallow it.
    """


@dataclass(slots=True)
class _Running:
    callback: str
    deadline: float
    interrupted_at: float | None = None


class Watchdog:
    """Watches callbacks on any number of threads; see the module's docstring."""

    def __init__(self) -> None:
        self._reset()
        # A forked actor process has none of its parent's threads, and maybe a lock the
        # parent's watchdog held at the fork: start from nothing there.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, _Running] = {}
        self._thread: threading.Thread | None = None
        #: Set while callbacks may be running: the thread looks every CHECK_INTERVAL. It
        #: clears it when it finds none and waits, so an idle process is never woken (a
        #: multi-process server has a watchdog in each room's process).
        self._looking = threading.Event()

    def limit(self, callback: str, timeout: float) -> AbstractContextManager[None]:
        """Run the ``with`` body under a time limit of ``timeout`` seconds (0: none).

        A body interrupted past its limit leaves the ``with`` as a TimeoutError, an ordinary
        exception for the caller (inside the body it was a BaseException nothing could catch).
        """
        return _Limit(self, callback, timeout) if timeout > 0 else _NO_LIMIT

    def _watch(self) -> None:
        while True:
            self._looking.wait()
            time.sleep(CHECK_INTERVAL)
            now = time.monotonic()
            with self._lock:
                if not self._running:
                    self._looking.clear()  # the next callback sets it (after it is listed)
                    continue
                for thread_id, running in self._running.items():
                    if running.interrupted_at is None and now >= running.deadline:
                        running.interrupted_at = now
                        log.error("%s ran past its time limit: interrupting it",
                                  running.callback)
                        _raise_in(thread_id, CallbackTimeout)
                    elif running.interrupted_at is not None and \
                            now - running.interrupted_at >= STUCK_AFTER:
                        self._stuck(running)
                        running.interrupted_at = float("inf")  # said once

    def _stuck(self, running: _Running) -> None:
        if os.getpid() != SERVER_PID:
            log.critical("%s is stuck outside Python code: ending actor process %d",
                         running.callback, os.getpid())
            logging.shutdown()
            os._exit(STUCK_EXIT_STATUS)
        log.critical("%s is stuck outside Python code; the embedded actor system waits for it "
                     "(run with --actor-system multiproc to isolate such callbacks)",
                     running.callback)


class _Limit:
    """One callback under the watchdog: a class, not a generator, because it wraps every
    callback of every message (the generator form cost a few microseconds each)."""

    __slots__ = ("_watchdog", "_callback", "_timeout", "_thread_id")

    def __init__(self, watchdog: Watchdog, callback: str, timeout: float) -> None:
        self._watchdog = watchdog
        self._callback = callback
        self._timeout = timeout
        self._thread_id = 0

    def __enter__(self) -> None:
        watchdog = self._watchdog
        self._thread_id = thread_id = threading.get_ident()
        with watchdog._lock:
            watchdog._running[thread_id] = _Running(self._callback,
                                                    time.monotonic() + self._timeout)
            if watchdog._thread is None:
                watchdog._thread = threading.Thread(target=watchdog._watch, daemon=True,
                                                    name="membrane-rtc-watchdog")
                watchdog._thread.start()
        if not watchdog._looking.is_set():  # once per wait of the thread, not per callback
            watchdog._looking.set()

    def __exit__(self, kind: type[BaseException] | None, *rest: Any) -> None:
        watchdog = self._watchdog
        with watchdog._lock:
            watchdog._running.pop(self._thread_id, None)
        if kind is CallbackTimeout:
            raise TimeoutError(f"no answer within {self._timeout:g} s") from None


_NO_LIMIT = nullcontext()


def _raise_in(thread_id: int, exception: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exception))


#: The process's watchdog.
watchdog = Watchdog()
