"""One client's connection as the gateway holds it: its state, how the runtime is told it is
gone (once, and whether its peer may resume), and the addresses and path its log lines name.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

from ..seam import Runtime
from ..limits import MessageRate
from ..ops.logs import log_event
from ..ops.metrics import Metrics
from ..protocol import CloseCode
from .websocket import WebSocket

#: The gateway's logger: its parts log as one.
log = logging.getLogger("membrane_rtc.gateway")


class PeerConnection:
    """Gateway-side state of one client that asked to join a room."""

    __slots__ = ("conn_id", "peer_id", "room_name", "path", "ws", "answer_timer",
                 "idle_timeout", "idle_timer", "last_seen", "sent_binary", "forgotten",
                 "closed_on_purpose", "rate", "throttle_timer")

    def __init__(self, conn_id: int, peer_id: str, room_name: str, path: str,
                 ws: WebSocket, rate: MessageRate | None) -> None:
        self.conn_id = conn_id
        self.peer_id = peer_id
        self.room_name = room_name
        #: The request's path, for the log line of a refusal (which drops its query).
        self.path = path
        self.ws = ws
        #: Bounds the wait for the runtime's answer, before the upgrade.
        self.answer_timer: asyncio.TimerHandle | None = None
        self.idle_timeout = 0.0
        self.idle_timer: asyncio.TimerHandle | None = None
        #: When the client last sent a frame (event loop time), for the idle timeout.
        self.last_seen = 0.0
        self.sent_binary = False
        #: The runtime has been told this connection is gone.
        self.forgotten = False
        #: The gateway itself ended it (idle, slow reader): its peer leaves, no resuming.
        self.closed_on_purpose = False
        #: Its message budget (None: no limit), and the timer that ends a throttle.
        self.rate = rate
        self.throttle_timer: asyncio.TimerHandle | None = None


#: Close codes the server sends a client that broke the protocol: it may not resume.
_BROKE_THE_PROTOCOL = frozenset({CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_DATA,
                                 CloseCode.MESSAGE_TOO_BIG})


def forget(conn: PeerConnection, runtime: Runtime) -> None:
    """The gateway no longer holds this connection (gone, cut off or refused): tell the
    runtime, once. Its peer leaves its room, or may resume if the connection dropped:
    neither the client nor the gateway closed it on purpose."""
    if not conn.forgotten:
        conn.forgotten = True
        ws = conn.ws
        resumable = not (conn.closed_on_purpose or ws.client_closed
                         or ws.close_sent_code in _BROKE_THE_PROTOCOL)
        runtime.disconnected(conn.conn_id, resumable)


def close_on_purpose(conn: PeerConnection, metrics: Metrics, counted_as: str, code: int,
                     reason: str, *, event: str, level: int = logging.WARNING, cut: bool = False,
                     runtime: Runtime | None = None, **fields: object) -> None:
    """The gateway itself ends ``conn`` (message rate, slow reader, idle), once: logged as
    ``event`` with ``fields``, counted as the refusal ``counted_as``, closed with ``code`` (a
    closing handshake, or at once when ``cut``) so that its peer leaves without resuming; with
    ``runtime``, the runtime is told now rather than when the socket is gone."""
    if conn.closed_on_purpose:
        return
    log_event(log, level, event, peer_id=conn.peer_id, room=conn.room_name, **fields)
    metrics.refused(counted_as)
    conn.closed_on_purpose = True
    if cut:
        conn.ws.fail(code, reason)
    else:
        conn.ws.close(code, reason)
    if runtime is not None:
        forget(conn, runtime)


def client_ip(ws: WebSocket) -> str:
    """The client's IP address: the TCP peer's, or behind a trusted proxy the one it names."""
    return ws.client_address[0] if ws.client_address else "unknown"


def tcp_peer_ip(ws: WebSocket) -> str:
    """The TCP peer's IP address (a trusted proxy's, when there is one)."""
    return ws.remote_address[0] if ws.remote_address else "unknown"


def without_secrets(path: str) -> str:
    """The request's path for log lines: without its query, where tokens travel."""
    return urlsplit(path).path
