"""Run ``membrane-rtc serve`` as a real subprocess and find the URL it prints."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "membrane-rtc"
URL = re.compile(r"serving (ws://\S+)/<room>")


class ServeProcess:
    """A ``membrane-rtc serve`` child process; always ``await stop()`` it (the fixture does)."""

    def __init__(self, process: asyncio.subprocess.Process, args: tuple[str, ...] = ()) -> None:
        self.process = process
        self.args = args
        self.url = ""
        self.stdout: list[str] = []
        #: Its log lines, read as they come (an unread pipe would block a chatty server).
        self.stderr: list[str] = []
        self._stderr_reader = asyncio.create_task(self._read_stderr())

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.stderr.append(line.decode())

    async def log_line(self, text: str, timeout: float = 10) -> str:
        """The first stderr line containing ``text``, waiting for it (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (found := [line for line in self.stderr if text in line]):
            if loop.time() > deadline:
                raise AssertionError(f"no log line with {text!r}: {''.join(self.stderr)}")
            await asyncio.sleep(0.05)
        return found[0]

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        """The websocket port it serves on (from the URL it printed)."""
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    @classmethod
    async def start(cls, *args: str, cwd: Path = REPO, timeout: float = 20,
                    ready: str | None = None,
                    executable: Path = CONSOLE_SCRIPT) -> "ServeProcess":
        """Start ``membrane-rtc serve ARGS``; return once it serves (its URL line, or a line
        containing ``ready`` for a process without a gateway)."""
        process = await asyncio.create_subprocess_exec(
            str(executable), "serve", *args, cwd=cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True)  # its own process group: a test may kill -9 it whole
        served = cls(process, args)
        assert process.stdout is not None
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), timeout)).decode()
            if not line:
                await asyncio.wait_for(process.wait(), timeout)
                await served._stderr_reader
                raise AssertionError(f"server exited before serving: {''.join(served.stderr)}")
            served.stdout.append(line)
            if match := URL.search(line):
                served.url = match.group(1)
                return served
            if ready is not None and ready in line:
                return served

    async def signal_and_wait(self, signum: int = signal.SIGINT, timeout: float = 20) -> int:
        self.process.send_signal(signum)
        assert self.process.stdout is not None
        out = await asyncio.wait_for(self.process.stdout.read(), timeout)
        await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.wait_for(self._stderr_reader, timeout)
        self.stdout.extend(out.decode().splitlines(keepends=True))
        return self.process.returncode  # type: ignore[return-value]

    async def stop(self) -> None:
        """Stop it now (SIGINT: a SIGTERM would drain first)."""
        if self.process.returncode is None:
            try:
                await self.signal_and_wait(signal.SIGINT, timeout=10)
            except (asyncio.TimeoutError, ProcessLookupError):
                self.process.kill()
                await self.process.wait()


async def run_cli(*args: str, timeout: float = 20, env: dict[str, str] | None = None,
                  cwd: Path = REPO) -> tuple[int, str, str]:
    """Run ``membrane-rtc ARGS`` to completion: (exit status, stdout, stderr); ``env`` is
    added to this process's environment."""
    process = await asyncio.create_subprocess_exec(
        str(CONSOLE_SCRIPT), *args, cwd=cwd, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:  # e.g. a serve that was expected to refuse, and serves
        process.kill()
        await process.wait()
        raise
    return process.returncode, out.decode(), err.decode()  # type: ignore[return-value]
