"""A TCP proxy on loopback that can play a network change: the server's side of every
connection through it is cut, while the client's side goes silent (half-open), as when a
laptop moves from Wi-Fi to LTE. New connections go through as before."""

from __future__ import annotations

import asyncio
import contextlib


class _Pair:
    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.cut = False


class CuttingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.pairs: list[_Pair] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None
        #: Cleared, new connections wait before reaching the server (the network is still
        #: down); set again, they go through.
        self.admitting = asyncio.Event()
        self.admitting.set()

    async def start(self) -> int:
        """Listen on a free loopback port; return it."""
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def cut(self) -> int:
        """Cut every connection open now: the server sees its TCP connection reset, the
        client hears nothing more and what it sends goes nowhere. Returns how many."""
        live = [pair for pair in self.pairs if not pair.cut]
        for pair in live:
            pair.cut = True
            pair.server.transport.abort()
        return len(live)

    def vanish(self) -> int:
        """Cut every connection open now the other way: the client sees its connection
        drop, the server hears nothing (half-open) and what it writes goes nowhere, until it
        learns otherwise. Returns how many."""
        live = [pair for pair in self.pairs if not pair.cut]
        for pair in live:
            pair.cut = True
            pair.client.transport.abort()
        return len(live)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for pair in self.pairs:
            pair.client.transport.abort()
            pair.server.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.admitting.wait()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        pair = _Pair(writer, up_writer)
        self.pairs.append(pair)
        for source, sink, downstream in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.create_task(self._pump(pair, source, sink, downstream))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pump(self, pair: _Pair, source: asyncio.StreamReader,
                    sink: asyncio.StreamWriter, downstream: bool) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                if pair.cut:
                    continue  # into the void
                sink.write(data)
                await sink.drain()
            if not pair.cut and downstream:  # the server closed: pass it on
                sink.close()
            elif not pair.cut:
                pair.server.write_eof()
