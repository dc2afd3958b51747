"""Keepalive and idle checks: one ping timer for all sockets (a client that did not answer the
last ping is gone), and one timer per idle period for each client (quiet too long: closed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection

from ..ops.metrics import Metrics
from ..protocol import CloseCode
from .connection import PeerConnection, close_on_purpose
from .websocket import WebSocket

#: Seconds between keepalive pings; a client that has not answered the last one by the next
#: is gone (its network dropped without a FIN). As websockets' own default.
PING_INTERVAL = 20.0


class Keepalive:
    """Pings ``sockets`` (the gateway's own, live set) and closes the clients that went quiet."""

    def __init__(self, sockets: Collection[WebSocket], metrics: Metrics) -> None:
        self.sockets = sockets
        self.metrics = metrics
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Ping every socket every :data:`PING_INTERVAL` seconds from now on."""
        self._timer = asyncio.get_running_loop().call_later(PING_INTERVAL, self._ping_all)

    def stop(self) -> None:
        """Ping no more (the server stops)."""
        if self._timer is not None:
            self._timer.cancel()

    def _ping_all(self) -> None:
        """One timer for all sockets. A client that has not answered the previous ping is gone
        without a word (its network dropped): close it."""
        for ws in list(self.sockets):
            if not ws.open:
                continue
            if ws.awaiting_pong:
                ws.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            else:
                ws.ping()
        self._timer = asyncio.get_running_loop().call_later(PING_INTERVAL, self._ping_all)

    def watch_idle(self, conn: PeerConnection, seconds: float) -> None:
        """Close ``conn`` once it has sent nothing for ``seconds`` (from now on)."""
        loop = asyncio.get_running_loop()
        conn.idle_timeout = seconds
        conn.last_seen = loop.time()
        conn.idle_timer = loop.call_at(conn.last_seen + seconds, self._check_idle, conn)

    def _check_idle(self, conn: PeerConnection) -> None:
        """One timer per idle period, not one reset per frame: re-armed from the last frame
        while the client talks, fired when it went quiet for a whole period."""
        loop = asyncio.get_running_loop()
        if loop.time() - conn.last_seen < conn.idle_timeout:
            conn.idle_timer = loop.call_at(conn.last_seen + conn.idle_timeout,
                                           self._check_idle, conn)
            return
        # Told to the runtime when the socket is gone, after the closing handshake.
        close_on_purpose(conn, self.metrics, "idle_timeout", CloseCode.NORMAL, "idle timeout",
                         event="peer_idle_timeout", level=logging.INFO,
                         seconds=conn.idle_timeout)
