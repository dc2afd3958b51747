"""Frames between the clients and the runtime: a client's text frames counted against its
message rate, decoded (protocol errors answered in place) and handed to the runtime; binary
frames ignored; the runtime's frames written to their clients; slow readers cut off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from .. import protocol
from ..config import ServerConfig
from ..seam import Runtime
from ..ops.logs import log_event
from ..ops.metrics import Metrics
from ..protocol import CloseCode
from .backpressure import Backpressure
from .connection import PeerConnection, client_ip, close_on_purpose, log
from .websocket import WebSocket

_PONG = protocol.PONG.encode()


class Frames:
    """Carries frames both ways for the clients in ``connections`` (the gateway's own table)."""

    def __init__(self, runtime: Runtime, config: ServerConfig, metrics: Metrics,
                 connections: Mapping[int, PeerConnection], backpressure: Backpressure) -> None:
        self.runtime = runtime
        self.config = config
        self.metrics = metrics
        self.connections = connections
        self.backpressure = backpressure

    def text_received(self, ws: WebSocket, text: str) -> None:
        """A client's text frame: ``ping`` answered, others decoded and handed on."""
        conn: PeerConnection = ws.context
        if not self._within_rate(conn):
            return
        if text == protocol.PING:
            ws.send_text(_PONG)
            return
        try:
            message = protocol.decode_client_frame(text, conn.peer_id)
        except protocol.ProtocolError as exc:
            self.metrics.refused("invalid_json" if isinstance(exc, protocol.InvalidJSON)
                                 else "invalid_message")
            ws.send_text(protocol.encode(exc.to_message(conn.peer_id)))
            return
        self.metrics.messages_received += 1
        self.runtime.receive(conn.conn_id, message)
        self.backpressure.handed_on(conn)

    def binary_received(self, ws: WebSocket) -> None:
        """A client's binary frame: counted against its rate, otherwise ignored."""
        conn: PeerConnection = ws.context
        if not self._within_rate(conn):
            return
        if not conn.sent_binary:  # ignored; said once, not once per frame
            conn.sent_binary = True
            log_event(log, logging.INFO, "peer_binary_frames_ignored", peer_id=conn.peer_id,
                      room=conn.room_name)

    def _within_rate(self, conn: PeerConnection) -> bool:
        """Count a frame against its peer's budget (``--peer-messages-per-second``): past it
        the gateway stops reading from the peer until a token is back; one that still goes a
        whole burst over is closed with 1008 and its frame dropped (False)."""
        now = conn.last_seen = asyncio.get_running_loop().time()
        if conn.rate is None:
            return True
        verdict = conn.rate.count(now)
        if verdict == "ok":
            return True
        if verdict == "throttle":
            self.backpressure.throttle(conn, conn.rate.wait())
            return True
        # A closing handshake, not a cut: the client reads the close frame behind what it sends
        # meanwhile (dropped unread), where a reset would lose it.
        close_on_purpose(conn, self.metrics, "message_rate", CloseCode.POLICY_VIOLATION,
                         "message rate exceeded", event="peer_message_rate_exceeded",
                         runtime=self.runtime, remote=client_ip(conn.ws),
                         limit=self.config.peer_messages_per_second)
        return False

    def write_buffer_full(self, ws: WebSocket) -> None:
        """A slow reader: close it with 1008 (after what it has not read yet) and let its room
        see it leave now; nothing more is queued for it."""
        conn: PeerConnection = ws.context
        close_on_purpose(conn, self.metrics, "slow_reader", CloseCode.POLICY_VIOLATION,
                         "slow reader", event="slow_reader_closed", cut=True,
                         runtime=self.runtime, queued_bytes=ws.buffered_bytes,
                         limit=ws.max_buffered)

    def deliver(self, frames: list[tuple[int, bytes]]) -> None:
        """Write each of the runtime's frames to its client, in order."""
        self.metrics.messages_forwarded += len(frames)
        connections = self.connections
        for conn_id, frame in frames:
            conn = connections.get(conn_id)
            if conn is not None:
                conn.ws.send_text(frame)
