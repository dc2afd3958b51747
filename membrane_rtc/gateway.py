"""The asyncio websocket gateway: HTTP upgrade, frames <-> actor messages. No room logic here.

Per connection: ``Peer.parse_request`` runs before the upgrade (HTTP 400 when it raises), the
actors answer 404 / 401 or accept, then the gateway decodes client frames (answering protocol
errors itself), hands messages to the runtime, and writes the frames the rooms send back. It
reaches the actors only through :mod:`membrane_rtc.connections`.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import uuid
from http import HTTPStatus
from importlib import resources
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from typing import Any, Callable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import protocol
from .config import ServerConfig
from .connections import Runtime
from .limits import JoinRateLimiter
from .loading import load_class
from .logs import log_event
from .metrics import STATUS_REASONS, Metrics
from .peer import Peer, PeerRequest
from .protocol import CloseCode
from .room import AuthData

log = logging.getLogger("membrane_rtc.gateway")

_PONG = protocol.PONG.encode()


def bound_port(server: Server) -> int:
    """The TCP port a websockets server actually bound (useful with port 0)."""
    return int(server.sockets[0].getsockname()[1])


@dataclass
class Close:
    """An entry of a connection's outbox: close the socket after the frames before it."""

    code: int
    reason: str


@dataclass
class Refusal:
    """The runtime's answer to a connection it refuses: an HTTP status and why."""

    status: int
    reason: str


@dataclass
class Connection:
    """Gateway-side state of one client: its socket and its outbox."""

    conn_id: int
    peer_id: str
    room_name: str
    #: The runtime's answer: None (accepted, upgrade) or a Refusal.
    answer: asyncio.Future[Refusal | None]
    #: Frames (and a last Close) waiting to be written, in order.
    outbox: collections.deque[bytes | Close] = field(default_factory=collections.deque)
    idle_timeout: float | None = None
    closing: bool = False
    #: Bytes in the outbox; past ``max_queued_bytes`` the client is a slow reader.
    queued_bytes: int = 0
    max_queued_bytes: int = 0
    #: Called once when the client falls that far behind (the gateway cuts it off).
    on_slow_reader: Callable[[Connection], None] | None = None
    #: Starts the task that writes the outbox (the gateway's), once the socket is open.
    start_writer: Callable[[Connection], None] | None = None
    socket: ServerConnection | None = None
    #: The handshake is done: frames may be written.
    open: bool = False
    sent_binary: bool = False
    #: Writes the outbox while there is something in it, then ends: an idle peer costs no task.
    writer: asyncio.Task[None] | None = None
    #: When the client last sent a frame (event loop time), for the idle timeout.
    last_seen: float = 0.0

    def send(self, frame: bytes) -> None:
        """Queue a frame; a client that has too much waiting is marked a slow reader."""
        if self.closing:
            return
        self.queued_bytes += len(frame)
        if self.max_queued_bytes and self.queued_bytes > self.max_queued_bytes:
            self.closing = True
            if self.on_slow_reader is not None:
                self.on_slow_reader(self)
            return
        self._queue(frame)

    def close(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self._queue(Close(code, reason))

    def _queue(self, item: bytes | Close) -> None:
        self.outbox.append(item)
        if self.open and self.writer is None and self.start_writer is not None:
            self.start_writer(self)


class Gateway:
    """Serves ``ws://host:port/<prefix>/<room>`` for the rooms behind ``runtime``; implements
    :class:`~membrane_rtc.connections.ConnectionEvents` for it."""

    def __init__(self, runtime: Runtime, config: ServerConfig,
                 metrics: Metrics | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.metrics = metrics or Metrics()
        self.metrics.watch_queues(lambda: [c.queued_bytes for c in self.connections.values()])
        self.join_rate = JoinRateLimiter(config.joins_per_second, config.join_burst)
        self.peer_class: type[Peer] = load_class(config.peer_class, Peer)
        self.connections: dict[int, Connection] = {}
        self._by_socket: dict[ServerConnection, Connection] = {}
        self._conn_ids = itertools.count(1)
        self._closers: set[asyncio.Task[None]] = set()  # slow readers' closing handshakes
        self._all_reaped = asyncio.Event()
        self.server: Server | None = None

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with port 0)."""
        assert self.server is not None
        return bound_port(self.server)

    async def start(self) -> None:
        """Start listening (the runtime behind it is ready)."""
        self.server = await serve(
            self._handle, self.config.host, self.config.port,
            process_request=self._process_request,
            process_response=self._process_response,
            max_size=self.config.max_message_bytes,
            # Membrane clients and browsers do not negotiate permessage-deflate for
            # signaling; compression would cost CPU on every small frame.
            compression=None,
        )

    async def stop(self) -> None:
        """Stop accepting, close every socket with 1001 and wait for the peers to be gone."""
        if self.server is None:
            return
        self.server.close(close_connections=True)
        await self.server.wait_closed()
        if self._closers:
            await asyncio.wait(self._closers, timeout=5)
        if self._by_socket:  # connection-lost callbacks still to run
            self._all_reaped.clear()
            try:
                await asyncio.wait_for(self._all_reaped.wait(), 5)
            except asyncio.TimeoutError:
                log.warning("%d connections were not reaped in time", len(self._by_socket))
        await self.runtime.detach()
        self.server = None

    # -- before the upgrade ------------------------------------------------------------------

    def _refuse(self, socket: ServerConnection, request: Request, status: int, reason: str,
                 refusal: str | None = None, headers: dict[str, str] | None = None,
                 **fields: Any) -> Response:
        """Answer a websocket request with an HTTP error, and count and log why."""
        self.metrics.refused(refusal or STATUS_REASONS.get(status, "unavailable"))
        log_event(log, logging.INFO, "peer_refused", status=status, reason=reason,
                  path=request.path, remote=_host(socket), **fields)
        response = socket.respond(status, HTTPStatus(status).phrase + "\n")
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def _admission(self, socket: ServerConnection, request: Request) -> Response | None:
        """The limits checked before anything else: origin, connections, join rate."""
        config = self.config
        origin = request.headers.get("Origin")
        if config.allowed_origins is not None and origin is not None \
                and origin not in config.allowed_origins:
            return self._refuse(socket, request, 403, "origin not allowed", origin=origin)
        if config.max_connections and len(self.connections) >= config.max_connections:
            return self._refuse(socket, request, 503, "too many connections",
                                "too_many_connections", limit=config.max_connections)
        address = _host(socket)
        if not self.join_rate.allow(address):
            wait = max(1, round(self.join_rate.retry_after(address)))
            return self._refuse(socket, request, 429, "too many joins from this address",
                                headers={"Retry-After": str(wait)})
        return None

    async def _process_request(self, socket: ServerConnection,
                               request: Request) -> Response | None:
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return self._serve_file(socket, request)
        refusal = self._admission(socket, request)
        if refusal is not None:
            return refusal
        peer_request = PeerRequest(
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.raw_items()},
            remote_address=socket.remote_address,
            path_prefix=self.config.path_prefix,
        )
        try:
            credentials, metadata, room_name = self.peer_class.parse_request(peer_request)
        except Exception as exc:
            return self._refuse(socket, request, 400, f"{type(exc).__name__}: {exc}")
        conn_id = next(self._conn_ids)
        auth = AuthData(str(uuid.uuid4()), dict(credentials), metadata)
        conn = Connection(conn_id, auth.peer_id, room_name,
                          asyncio.get_running_loop().create_future(),
                          max_queued_bytes=self.config.max_outbound_bytes,
                          on_slow_reader=self._cut_off, start_writer=self._start_writer,
                          socket=socket)
        self.connections[conn_id] = conn
        self.runtime.connect(conn_id, room_name, auth)
        try:
            answer = await asyncio.wait_for(conn.answer, self.config.connect_timeout)
        except asyncio.TimeoutError:
            answer = Refusal(503, "the actor system did not answer in time")
        if answer is not None:
            self._forget(conn)
            return self._refuse(socket, request, answer.status, answer.reason,
                                peer_id=conn.peer_id, room=room_name)
        self._by_socket[socket] = conn
        self.metrics.connections.inc()
        self.metrics.peers.inc()
        log_event(log, logging.INFO, "peer_connected", peer_id=conn.peer_id, room=room_name,
                  remote=_host(socket))
        return None

    def _process_response(self, socket: ServerConnection, request: Request,
                          response: Response) -> None:
        """An accepted peer whose handshake still failed never reaches ``_handle``: reap it."""
        if response.status_code != 101 and socket in self._by_socket:
            self._reap(socket, self._by_socket[socket])

    def _serve_file(self, socket: ServerConnection, request: Request) -> Response:
        """Plain HTTP: the JS client at ``/client.js`` and, with ``demo``, the demo page at
        ``/``; a real local page is what lets browsers open a camera and a loopback socket."""
        path = urlsplit(request.path).path
        name = {"/client.js": "client.js", "/": "demo.html" if self.config.demo else None}.get(path)
        if name is None:
            return socket.respond(HTTPStatus.NOT_FOUND, HTTPStatus.NOT_FOUND.phrase + "\n")
        body, content_type = _STATIC[name]
        headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-cache")])
        return Response(200, "OK", headers, body)

    def _reap(self, socket: ServerConnection, conn: Connection) -> None:
        """The connection is over: its peer leaves its room. Once per connection."""
        if self._by_socket.pop(socket, None) is None:
            return
        if not self._by_socket:
            self._all_reaped.set()
        self._forget(conn)
        self.metrics.peers.dec()
        sent = socket.protocol.close_sent
        if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG:
            self.metrics.refused("frame_too_big")  # websockets closed it: a frame over max_size
        log_event(log, logging.INFO, "peer_disconnected", peer_id=conn.peer_id,
                  room=conn.room_name, code=socket.close_code, reason=socket.close_reason)

    def _forget(self, conn: Connection) -> None:
        """The gateway no longer holds this connection (gone, cut off or refused): tell the
        runtime, once; its peer leaves its room."""
        if self.connections.pop(conn.conn_id, None) is not None:
            self.runtime.disconnected(conn.conn_id)

    def _cut_off(self, conn: Connection) -> None:
        """A slow reader: drop what waits for it, close with 1008, and let its room see it
        leave now (its TCP connection may take the close timeout to go)."""
        log_event(log, logging.WARNING, "slow_reader_closed", peer_id=conn.peer_id,
                  room=conn.room_name, queued_bytes=conn.queued_bytes,
                  limit=conn.max_queued_bytes)
        self.metrics.refused("slow_reader")
        conn.outbox.clear()
        conn.queued_bytes = 0
        if conn.writer is not None:
            conn.writer.cancel()  # it may wait for the client to read; it never will
        if conn.socket is not None:
            closer = asyncio.create_task(conn.socket.close(CloseCode.POLICY_VIOLATION,
                                                           "slow reader"))
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)
        self._forget(conn)

    # -- after the upgrade -------------------------------------------------------------------

    async def _handle(self, socket: ServerConnection) -> None:
        conn = self._by_socket.get(socket)
        if conn is None:  # not a connection this gateway accepted: cannot happen
            await socket.close(1011, "unknown connection")
            return
        conn.open = True
        if conn.outbox:
            self._start_writer(conn)
        idle_timeout = conn.idle_timeout or self.config.idle_timeout
        loop = asyncio.get_running_loop()
        conn.last_seen = loop.time()

        def check_idle() -> None:
            """One timer per idle period, not one reset per frame: re-armed from the last
            frame while the client talks, fired when it went quiet for a whole period."""
            nonlocal idle_timer
            if loop.time() - conn.last_seen < idle_timeout:
                idle_timer = loop.call_at(conn.last_seen + idle_timeout, check_idle)
                return
            log_event(log, logging.INFO, "peer_idle_timeout", peer_id=conn.peer_id,
                      room=conn.room_name, seconds=idle_timeout)
            self.metrics.refused("idle_timeout")
            conn.close(CloseCode.NORMAL, "idle timeout")

        idle_timer = loop.call_at(conn.last_seen + idle_timeout, check_idle)
        try:
            async for data in socket:
                conn.last_seen = loop.time()
                if conn.closing:
                    continue  # cut off, kicked or leaving: what it still says is dropped
                if isinstance(data, bytes):  # ignored; said once, not once per frame
                    if not conn.sent_binary:
                        conn.sent_binary = True
                        log_event(log, logging.INFO, "peer_binary_frames_ignored",
                                  peer_id=conn.peer_id, room=conn.room_name)
                    continue
                self._receive_text(conn, data)
        except ConnectionClosed:
            pass
        finally:
            idle_timer.cancel()
            if conn.writer is not None:
                conn.writer.cancel()
            self._reap(socket, conn)

    def _receive_text(self, conn: Connection, text: str) -> None:
        if text == protocol.PING:
            conn.send(_PONG)
            return
        try:
            message = protocol.decode_client_frame(text, conn.peer_id)
        except protocol.ProtocolError as exc:
            self.metrics.refused("invalid_json" if isinstance(exc, protocol.InvalidJSON)
                                 else "invalid_message")
            conn.send(protocol.encode(exc.to_message(conn.peer_id)))
            return
        self.metrics.messages_received.inc()
        self.runtime.receive(conn.conn_id, message)

    def _start_writer(self, conn: Connection) -> None:
        assert conn.socket is not None
        conn.writer = asyncio.create_task(self._write(conn.socket, conn))

    async def _write(self, socket: ServerConnection, conn: Connection) -> None:
        """Write the outbox in order until it is empty; a Close entry ends the connection."""
        try:
            while conn.outbox:
                item = conn.outbox.popleft()
                if isinstance(item, Close):
                    await socket.close(item.code, item.reason)
                    return
                conn.queued_bytes -= len(item)
                await socket.send(item, text=True)
        except ConnectionClosed:
            pass
        finally:
            conn.writer = None

    # -- what the runtime tells the gateway (connections.ConnectionEvents) -------------------

    def accept(self, conn_id: int, idle_timeout: float | None) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and not conn.answer.done():
            conn.idle_timeout = idle_timeout
            conn.answer.set_result(None)

    def refuse(self, conn_id: int, status: int, reason: str) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and not conn.answer.done():
            conn.answer.set_result(Refusal(status, reason))

    def deliver(self, frames: list[tuple[int, bytes]]) -> None:
        self.metrics.messages_forwarded.inc(len(frames))
        for conn_id, frame in frames:
            conn = self.connections.get(conn_id)
            if conn is not None:
                conn.send(frame)

    def close(self, conn_id: int, code: int, reason: str, refusal: str | None = None) -> None:
        conn = self.connections.get(conn_id)
        if conn is None:
            return
        if refusal is not None:
            self.metrics.refused(refusal)
            log_event(log, logging.INFO, f"peer_{refusal}", peer_id=conn.peer_id,
                      room=conn.room_name)
        conn.close(code, reason)


def _host(socket: ServerConnection) -> str:
    """The client's IP address (what limits count per client)."""
    remote = socket.remote_address
    return str(remote[0]) if remote else "unknown"


def _static(name: str, content_type: str) -> tuple[bytes, str]:
    return (resources.files("membrane_rtc").joinpath("static", name).read_bytes(), content_type)


_STATIC = {
    "client.js": _static("client.js", "text/javascript; charset=utf-8"),
    "demo.html": _static("demo.html", "text/html; charset=utf-8"),
}
