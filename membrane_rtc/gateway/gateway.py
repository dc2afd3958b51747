"""The websocket gateway: the one object the server starts, tying the gateway's parts together.

Per connection: :mod:`.admission` checks the request before the upgrade (HTTP 403 / 503 / 429 /
400, plain HTTP answered by :mod:`.plain_http`), the runtime answers 404 / 401 or accepts, then
:mod:`.frames` carries frames both ways (:mod:`.backpressure` pausing reading when the runtime
falls behind), :mod:`.keepalive` pings and closes idle clients, :mod:`.drain` drains. The
gateway reaches the actors only through :mod:`membrane_rtc.seam`, and the network only
through :class:`~membrane_rtc.gateway.websocket.WebSocket` (websockets' sans-I/O protocol on a
lean asyncio adapter): no task and no future per connection. No room logic here.
"""

from __future__ import annotations

import asyncio
import logging

from websockets.http11 import Request

from ..config import ServerConfig
from ..seam import Runtime
from ..ops.logs import log_event
from ..ops.metrics import Metrics
from ..protocol import CloseCode
from .admission import Admission, Joining
from .backpressure import Backpressure
from .connection import PeerConnection, client_ip, forget, log
from .drain import Drainer
from .frames import Frames
from .keepalive import Keepalive
from .plain_http import PlainHttp
from .websocket import WebSocket


class Gateway:
    """Serves ``ws://host:port/<prefix>/<room>`` for the rooms behind ``runtime``; implements
    :class:`~membrane_rtc.seam.ConnectionEvents` for it and
    :class:`~membrane_rtc.gateway.websocket.Handler` for its sockets."""

    def __init__(self, runtime: Runtime, config: ServerConfig,
                 metrics: Metrics | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.metrics = metrics or Metrics()
        self.metrics.watch_queues(
            lambda: [c.ws.buffered_bytes for c in self.connections.values()])
        #: Clients that asked to join, by connection id, until their socket is gone.
        self.connections: dict[int, PeerConnection] = {}
        #: Every socket open now, upgraded or not.
        self.sockets: set[WebSocket] = set()
        self._all_closed = asyncio.Event()
        self.server: asyncio.Server | None = None
        self._drain = Drainer(self.connections)
        self._plain_http = PlainHttp(runtime, config.demo, lambda: self._drain.draining)
        self._admission = Admission(config, self.metrics, self._plain_http,
                                    lambda: self._drain.draining)
        self._backpressure = Backpressure(runtime)
        self._frames = Frames(runtime, config, self.metrics, self.connections,
                              self._backpressure)
        self._keepalive = Keepalive(self.sockets, self.metrics)

    def reload_peer_class(self) -> None:
        """Load the Peer class anew (``--reload``): ``parse_request`` runs here."""
        self._admission.reload_peer_class()

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with port 0)."""
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def draining(self) -> bool:
        """Draining: readiness says 503, new clients get HTTP 503, the others are closed with
        1012 when the drain timeout ends (see :meth:`drain_and_close`)."""
        return self._drain.draining

    @property
    def drained(self) -> asyncio.Event:
        """Set once a drain is over: the server may stop."""
        return self._drain.drained

    async def start(self) -> None:
        """Start listening (the runtime behind it is ready)."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: WebSocket(self, self.config.max_message_bytes,
                              self.config.max_outbound_bytes, self.config.handshake_timeout),
            self.config.host, self.config.port)
        self._keepalive.start()

    async def stop(self) -> None:
        """Stop accepting, close every socket with 1001 and wait (bounded) for them to go."""
        if self.server is None:
            return
        self.server.close()
        self._keepalive.stop()
        self._backpressure.stop()
        self._plain_http.stop()
        for ws in list(self.sockets):
            if ws.open:
                ws.close(CloseCode.GOING_AWAY, "server shutting down")
            elif ws.transport is not None:
                ws.transport.close()
        if self.sockets:
            self._all_closed.clear()
            try:
                await asyncio.wait_for(self._all_closed.wait(), 10)
            except asyncio.TimeoutError:
                log.warning("%d connections did not close in time", len(self.sockets))
        await self.server.wait_closed()
        await self.runtime.detach()
        self.server = None

    # -- before the upgrade (websocket.Handler) ----------------------------------------------

    def connection_opened(self, ws: WebSocket) -> None:
        """A socket: counted toward the limits from its first byte on (see
        :meth:`Admission.opened`)."""
        self.sockets.add(ws)
        self._admission.opened(ws, len(self.sockets))

    def handshake(self, ws: WebSocket, request: Request) -> None:
        """An HTTP request: a probe, a static file, or a client asking to join a room."""
        try:
            joining = self._admission.admit(ws, request)
            if joining is not None:
                self._ask_runtime(joining)
        except Exception as exc:  # a malformed request our checks missed: 400, one line
            if ws.request is not None:
                self._admission.refuse(ws, "", 400, f"malformed request ({type(exc).__name__})")

    def _ask_runtime(self, joining: Joining) -> None:
        """Ask the runtime whether the client joins; its answer is waited for at most
        ``connect_timeout`` (then HTTP 503)."""
        conn = joining.conn
        conn.ws.context = conn
        self.connections[conn.conn_id] = conn
        conn.answer_timer = asyncio.get_running_loop().call_later(
            self.config.connect_timeout, self.refuse, conn.conn_id, 503,
            "the actor system did not answer in time")
        self.runtime.connect(conn.conn_id, conn.room_name, joining.auth, joining.resume_token,
                             joining.received)

    def request_timed_out(self, ws: WebSocket) -> None:
        """A socket that did not send a whole HTTP request in time: dropped."""
        self._admission.request_timed_out(ws)

    def bad_request(self, ws: WebSocket, status: int, reason: str) -> None:
        """websockets answered a request it could not parse: counted and logged."""
        self._admission.bad_request(ws, status, reason)

    # -- draining ----------------------------------------------------------------------------

    def drain(self) -> None:
        """An operator's drain (through the runtime): as :meth:`drain_and_close`."""
        self._drain.start(self.config.drain_timeout)

    async def drain_and_close(self, timeout: float | None = None) -> None:
        """Drain: readiness 503 and new clients HTTP 503 at once; the clients still here after
        ``timeout`` (the config's ``drain_timeout``) are closed with 1012 so that they
        reconnect, resuming, elsewhere; then :attr:`drained` is set. Once per gateway."""
        await self._drain.run(self.config.drain_timeout if timeout is None else timeout)

    # -- what the runtime tells the gateway (connections.ConnectionEvents) -------------------

    def accept(self, conn_id: int, peer_id: str, idle_timeout: float | None,
               resumed: bool = False) -> None:
        conn = self._answering(conn_id)
        if conn is None:
            return
        conn.peer_id = peer_id  # a resumed peer keeps the id it had
        conn.ws.upgrade()  # its handshake was checked before the runtime was asked
        self.metrics.connections.inc()
        self.metrics.peers.inc()
        if resumed:
            self.metrics.resumed.inc()
        log_event(log, logging.INFO, "peer_resumed" if resumed else "peer_connected",
                  peer_id=conn.peer_id, room=conn.room_name, remote=client_ip(conn.ws))
        self._keepalive.watch_idle(conn, idle_timeout or self.config.idle_timeout)

    def refuse(self, conn_id: int, status: int, reason: str) -> None:
        conn = self._answering(conn_id)
        if conn is not None:
            forget(conn, self.runtime)
            if status == 401:
                self.metrics.refused_unauthorized(reason)
            self._admission.refuse(conn.ws, conn.path, status, reason, peer_id=conn.peer_id,
                                   room=conn.room_name)

    def _answering(self, conn_id: int) -> PeerConnection | None:
        """The connection the runtime answers, if it still waits for that answer."""
        conn = self.connections.get(conn_id)
        if conn is None or conn.answer_timer is None:
            return None
        conn.answer_timer.cancel()
        conn.answer_timer = None
        return conn

    def deliver(self, frames: list[tuple[int, bytes]]) -> None:
        self._frames.deliver(frames)

    def close(self, conn_id: int, code: int, reason: str, counted_as: str | None = None) -> None:
        conn = self.connections.get(conn_id)
        if conn is None:
            return
        if counted_as is not None:
            self.metrics.refused(counted_as)
            log_event(log, logging.INFO, f"peer_{counted_as}", peer_id=conn.peer_id,
                      room=conn.room_name)
        conn.ws.close(code, reason)

    # -- after the upgrade (websocket.Handler) -----------------------------------------------

    def text_received(self, ws: WebSocket, text: str) -> None:
        self._frames.text_received(ws, text)

    def binary_received(self, ws: WebSocket) -> None:
        self._frames.binary_received(ws)

    def write_buffer_full(self, ws: WebSocket) -> None:
        self._frames.write_buffer_full(ws)

    def connection_closed(self, ws: WebSocket) -> None:
        """A socket is gone: every part lets go of it; a client's runtime is told."""
        self.sockets.discard(ws)
        self._backpressure.forget(ws)
        self._admission.closed(ws)
        if not self.sockets:
            self._all_closed.set()
        conn: PeerConnection | None = ws.context
        if conn is None:  # plain HTTP, or refused before asking the runtime
            return
        if conn.answer_timer is not None:  # gone while the runtime decided
            conn.answer_timer.cancel()
            conn.answer_timer = None
        self.connections.pop(conn.conn_id, None)
        self._drain.client_gone()
        forget(conn, self.runtime)
        if conn.throttle_timer is not None:
            conn.throttle_timer.cancel()
        if conn.idle_timer is None:
            return  # never upgraded
        conn.idle_timer.cancel()
        self.metrics.peers.dec()
        if ws.close_sent_code == CloseCode.MESSAGE_TOO_BIG:
            self.metrics.refused("frame_too_big")  # websockets closed it: a frame over max_size
        code = ws.close_code
        log_event(log, logging.INFO, "peer_disconnected", peer_id=conn.peer_id,
                  room=conn.room_name, code=None if code is None else int(code),
                  reason=ws.close_reason)
