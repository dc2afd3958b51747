"""The drain: readiness 503 and new clients HTTP 503 at once, the clients still here after the
drain timeout closed with 1012 (so that they reconnect, resuming, elsewhere), then done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from ..ops.logs import log_event
from ..protocol import CloseCode
from .connection import PeerConnection, log

#: How long a drain waits for the clients it closed with 1012 to go (seconds).
DRAIN_CLOSE_WAIT = 5.0


class Drainer:
    """One gateway's drain, run once; ``connections`` is the gateway's own (live) table."""

    def __init__(self, connections: Mapping[int, PeerConnection]) -> None:
        self.connections = connections
        #: Draining: readiness says 503, new clients get HTTP 503.
        self.draining = False
        #: Set once the drain is over: the server may stop.
        self.drained = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._no_clients = asyncio.Event()

    def client_gone(self) -> None:
        """A client's socket is gone: wake the drain when it was the last one."""
        if not self.connections:
            self._no_clients.set()

    def start(self, seconds: float) -> asyncio.Task[None]:
        """Drain for ``seconds``, unless a drain has started already: that one goes on."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._drain_for(seconds))
        return self._task

    async def run(self, seconds: float) -> None:
        """:meth:`start`, then wait until the drain is over."""
        await asyncio.shield(self.start(seconds))

    async def _drain_for(self, seconds: float) -> None:
        self.draining = True
        log_event(log, logging.INFO, "draining", seconds=seconds, clients=len(self.connections))
        await self._until_no_clients(seconds)
        closing = [c.ws for c in self.connections.values() if c.ws.open]
        for ws in closing:
            ws.close(CloseCode.SERVICE_RESTART, "server restarting")
        if closing:
            log_event(log, logging.INFO, "drain_closed_clients", clients=len(closing),
                      code=int(CloseCode.SERVICE_RESTART))
            await self._until_no_clients(DRAIN_CLOSE_WAIT)
        self.drained.set()

    async def _until_no_clients(self, seconds: float) -> None:
        """Wait until every client has gone, for at most ``seconds``."""
        if not self.connections:
            return
        self._no_clients.clear()
        try:
            await asyncio.wait_for(self._no_clients.wait(), seconds)
        except asyncio.TimeoutError:
            pass
