"""Backpressure on what clients send: the gateway stops reading from a client while its room
(or all rooms) has too much of it waiting in the runtime, or while the client is over its own
message rate, and reads from it again once neither holds it back.
"""

from __future__ import annotations

import asyncio

from ..seam import Runtime
from .connection import PeerConnection
from .websocket import WebSocket

#: Backpressure: client messages one room may have waiting in the runtime before the gateway
#: stops reading from the clients that send to it (TCP then holds the rest back in the
#: kernel's buffers); it reads from them again below half of it. Counted per room, so that a
#: client flooding its room is held back while other rooms' clients are read on: their
#: messages wait behind no flood. MAX_TOTAL_BACKLOG bounds all rooms together (many rooms
#: flooded at once): past it, any client that sends is held back.
MAX_BACKLOG = 128
MAX_TOTAL_BACKLOG = 1024
#: How often a gateway that stopped reading looks whether the runtime caught up (seconds).
BACKLOG_CHECK = 0.002


class Backpressure:
    """Pauses and resumes reading from the clients of one gateway."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        #: Sockets not read from while the runtime catches up (see MAX_BACKLOG).
        self._held_back: set[WebSocket] = set()
        self._backlog_check: asyncio.TimerHandle | None = None

    def handed_on(self, conn: PeerConnection) -> None:
        """``conn``'s message was handed to the runtime: stop reading from it if its room, or
        all rooms, are past their bound."""
        ws = conn.ws
        if self._behind(conn, 1) and ws.transport is not None and ws not in self._held_back:
            ws.transport.pause_reading()
            self._held_back.add(ws)
            if self._backlog_check is None:
                self._backlog_check = asyncio.get_running_loop().call_later(
                    BACKLOG_CHECK, self._read_again)

    def throttle(self, conn: PeerConnection, seconds: float) -> None:
        """``conn`` is over its message rate: read nothing from it for ``seconds`` (until a
        token is back)."""
        ws = conn.ws
        if conn.throttle_timer is None and ws.transport is not None:
            ws.transport.pause_reading()
            conn.throttle_timer = asyncio.get_running_loop().call_later(
                seconds, self._throttle_over, conn)

    def forget(self, ws: WebSocket) -> None:
        """``ws`` is gone: nothing to read again."""
        self._held_back.discard(ws)

    def stop(self) -> None:
        """Look no more (the server stops)."""
        if self._backlog_check is not None:
            self._backlog_check.cancel()

    def _behind(self, conn: PeerConnection, share: float) -> bool:
        """``conn``'s room, or all rooms, have more than ``share`` of their bound waiting."""
        return (self.runtime.backlog(conn.conn_id) > MAX_BACKLOG * share
                or self.runtime.backlog() > MAX_TOTAL_BACKLOG * share)

    def _throttle_over(self, conn: PeerConnection) -> None:
        conn.throttle_timer = None
        self._read_if_free(conn.ws)

    def _read_if_free(self, ws: WebSocket) -> None:
        """Read from ``ws`` again unless another reason to hold it back remains: reading is
        paused for its room's backlog (``_held_back``) and for its own message rate (a
        throttle timer), and each one's end must not lift the other."""
        conn: PeerConnection | None = ws.context
        if ws in self._held_back or (conn is not None and conn.throttle_timer is not None):
            return
        if ws.transport is not None and not ws.transport.is_closing():
            ws.transport.resume_reading()

    def _read_again(self) -> None:
        """Read again from each held-back client whose room has caught up (half the bound)."""
        self._backlog_check = None
        for ws in list(self._held_back):
            if ws.transport is None or ws.transport.is_closing():
                self._held_back.discard(ws)
            elif not self._behind(ws.context, 0.5):
                self._held_back.discard(ws)
                self._read_if_free(ws)
        if self._held_back:
            self._backlog_check = asyncio.get_running_loop().call_later(
                BACKLOG_CHECK, self._read_again)
