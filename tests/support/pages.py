"""A page of the docs at a signaling server's origin: a loopback HTTP server that serves the
page (and ``/client.js``, as the gateway does) and passes websocket upgrades to the server.

Chromium lets a page reach loopback only from a page that came from loopback (its Local
Network Access checks), so a page a test makes up must come from a real loopback server.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources


class PageServer:
    def __init__(self, target_port: int, pages: dict[str, str]) -> None:
        self.target_port = target_port
        client_js = resources.files("membrane_rtc").joinpath("static/client.js").read_text()
        self.pages = {path: (body, "text/html; charset=utf-8") for path, body in pages.items()}
        self.pages["/client.js"] = (client_js, "text/javascript; charset=utf-8")
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        """Listen on a free loopback port; return it."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
            while True:  # keep-alive: GETs one after the other, until an upgrade
                head = await reader.readuntil(b"\r\n\r\n")
                method, path = head.split(b" ", 2)[:2]
                if b"\r\nupgrade: websocket" in head.lower():
                    await self._pass_on(head, reader, writer)
                    return
                found = self.pages.get(path.decode().split("?")[0])
                body, kind = found if found and method == b"GET" else ("not found\n", "text/plain")
                data = body.encode()
                writer.write(f"HTTP/1.1 {200 if found else 404} {'OK' if found else 'Not Found'}"
                             f"\r\nContent-Type: {kind}\r\nContent-Length: {len(data)}\r\n"
                             "Cache-Control: no-store\r\n\r\n".encode() + data)
                await writer.drain()

    async def _pass_on(self, head: bytes, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers.append(up_writer)
        up_writer.write(head)
        pumps = [asyncio.create_task(self._pump(reader, up_writer)),
                 asyncio.create_task(self._pump(up_reader, writer))]
        self.tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            writer.transport.abort()
            up_writer.transport.abort()

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
