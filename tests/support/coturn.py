"""A real coturn (Debian's ``coturn`` package) on loopback, started and stopped by a test."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from .net import free_port
from .tools import require

#: Relay ports coturn may allocate from (a small range: tests need a handful).
RELAY_PORTS = (49400, 49500)


def turnserver() -> str:
    path = shutil.which("turnserver")
    require(path, "needs coturn: apt-get install coturn")
    assert path is not None
    return path


class Coturn:
    """``turnserver`` with the TURN REST API's shared secret (``use-auth-secret``)."""

    def __init__(self, directory: Path, secret: str) -> None:
        self.directory = directory
        self.secret = secret
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    async def start(self, timeout: float = 10) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "turnserver.log", "wb")
        self.process = await asyncio.create_subprocess_exec(
            turnserver(), "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
            f"--listening-port={self.port}", "--use-auth-secret",
            f"--static-auth-secret={self.secret}", "--realm=membrane-rtc.test",
            "--no-tls", "--no-dtls", "--no-cli", f"--min-port={RELAY_PORTS[0]}",
            f"--max-port={RELAY_PORTS[1]}",
            # Both browsers and the relay are on loopback here; a real deployment keeps
            # coturn's default (loopback peers denied).
            "--allow-loopback-peers",
            f"--userdb={self.directory / 'turndb'}", f"--pidfile={self.directory / 'pid'}",
            "--log-file=stdout", "--simple-log",
            stdout=log, stderr=asyncio.subprocess.STDOUT)
        log.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await _listening(self.port):  # it also listens on TCP, same port
            if self.process.returncode is not None or loop.time() > deadline:
                raise AssertionError(f"coturn did not start: {self.log()[-2000:]}")
            await asyncio.sleep(0.05)

    def log(self) -> str:
        path = self.directory / "turnserver.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True
