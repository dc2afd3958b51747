"""The websocket gateway: HTTP upgrade, frames <-> the runtime. No room logic here.

Per connection: the limits are checked and ``Peer.parse_request`` runs before the upgrade (HTTP
403 / 503 / 429 / 400), the runtime answers 404 / 401 or accepts, then the gateway decodes
client frames (answering protocol errors itself), hands messages to the runtime, and writes the
frames the rooms send back. It reaches the actors only through :mod:`membrane_rtc.connections`,
and the network only through :class:`~membrane_rtc.gateway.websocket.WebSocket` (websockets' sans-I/O
protocol on a lean asyncio adapter): no task and no future per connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .. import protocol
from ..config import ServerConfig
from ..connections import READY_TIMEOUT, Runtime
from ..limits import ClientAddresses, JoinRateLimiter, MessageRate, OpenConnections, address_key
from ..loading import load_class
from ..ops.logs import log_event
from ..ops.metrics import STATUS_REASONS, Metrics
from ..peer import Peer, PeerRequest
from ..protocol import CloseCode
from ..room import AuthData
from .websocket import WebSocket

log = logging.getLogger("membrane_rtc.gateway")

_PONG = protocol.PONG.encode()
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
#: Seconds between keepalive pings; a client that has not answered the last one by the next
#: is gone (its network dropped without a FIN). As websockets' own default.
PING_INTERVAL = 20.0
#: How long a drain waits for the clients it closed with 1012 to go (seconds).
DRAIN_CLOSE_WAIT = 5.0
#: What is checked before the upgrade, in the order it is checked: here (at the socket's
#: opening, in :class:`~membrane_rtc.gateway.websocket.WebSocket`, :meth:`Gateway._admit`), then by
#: the runtime. docs/reference/protocol.md's table has one row per check, in this order.
ADMISSION_CHECKS = (
    "max-connections", "max-connections-per-ip", "handshake-timeout", "http-request",
    "request-target", "plain-http", "draining", "allowed-origin", "client-address",
    "joins-per-second", "websocket-handshake", "parse-request", "received", "room",
    "auto-create", "on-init", "received-count", "connect-timeout",
)


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


class Gateway:
    """Serves ``ws://host:port/<prefix>/<room>`` for the rooms behind ``runtime``; implements
    :class:`~membrane_rtc.connections.ConnectionEvents` for it and
    :class:`~membrane_rtc.gateway.websocket.Handler` for its sockets."""

    def __init__(self, runtime: Runtime, config: ServerConfig,
                 metrics: Metrics | None = None) -> None:
        self.runtime = runtime
        self.config = config
        self.metrics = metrics or Metrics()
        self.metrics.watch_queues(
            lambda: [c.ws.buffered_bytes for c in self.connections.values()])
        self.join_rate = JoinRateLimiter(config.joins_per_second, config.join_burst)
        self.client_addresses = ClientAddresses(config.trusted_proxies)
        #: Open sockets per client address key, and each socket's key.
        self.open_per_address = OpenConnections(config.max_connections_per_ip)
        self._address_key: dict[WebSocket, str] = {}
        self.peer_class: type[Peer] = load_class(config.peer_class, Peer)
        #: Clients that asked to join, by connection id, until their socket is gone.
        self.connections: dict[int, PeerConnection] = {}
        #: Every socket open now, upgraded or not.
        self.sockets: set[WebSocket] = set()
        self._conn_ids = itertools.count(1)
        self._all_closed = asyncio.Event()
        self._keepalive: asyncio.TimerHandle | None = None
        #: Sockets not read from while the runtime catches up (see MAX_BACKLOG).
        self._held_back: set[WebSocket] = set()
        self._backlog_check: asyncio.TimerHandle | None = None
        self.server: asyncio.Server | None = None
        #: Draining: readiness says 503, new clients get HTTP 503, the others are closed with
        #: 1012 when the drain timeout ends (see :meth:`drain_and_close`).
        self.draining = False
        #: Set once a drain is over: the server may stop.
        self.drained = asyncio.Event()
        self._drain: asyncio.Task[None] | None = None
        self._no_clients = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()  # readiness answers under way

    def reload_peer_class(self) -> None:
        """Load the Peer class anew (``--reload``): ``parse_request`` runs here."""
        self.peer_class = load_class(self.config.peer_class, Peer)

    @property
    def port(self) -> int:
        """The TCP port actually bound (useful with port 0)."""
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Start listening (the runtime behind it is ready)."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: WebSocket(self, self.config.max_message_bytes,
                              self.config.max_outbound_bytes, self.config.handshake_timeout),
            self.config.host, self.config.port)
        self._keepalive = loop.call_later(PING_INTERVAL, self._ping_all)

    async def stop(self) -> None:
        """Stop accepting, close every socket with 1001 and wait (bounded) for them to go."""
        if self.server is None:
            return
        self.server.close()
        for timer in (self._keepalive, self._backlog_check):
            if timer is not None:
                timer.cancel()
        for task in list(self._tasks):
            task.cancel()
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
        """Every socket counts toward the limits from its first byte on, upgraded or not (a
        half-finished request holds a socket as much as a peer does); past them it is answered
        at once, without waiting for its request."""
        self.sockets.add(ws)
        address = _peer_host(ws)
        counted = not self.client_addresses.is_trusted(address)  # a proxy: see handshake
        if counted:
            self._count_address(ws, address)
        if self.config.max_connections and len(self.sockets) > self.config.max_connections:
            self._refuse(ws, "", 503, "too many connections", "too_many_connections",
                         limit=self.config.max_connections)
        elif counted and self._over_address_limit(ws):
            self._refuse_too_many_from(ws, "")

    def _count_address(self, ws: WebSocket, address: str) -> None:
        old = self._address_key.get(ws)
        if old is not None:
            self.open_per_address.remove(old)
        key = self._address_key[ws] = address_key(address)
        self.open_per_address.add(key)

    def _over_address_limit(self, ws: WebSocket) -> bool:
        limit = self.config.max_connections_per_ip
        return bool(limit) and self.open_per_address[self._address_key[ws]] > limit

    def _refuse_too_many_from(self, ws: WebSocket, path: str) -> None:
        self._refuse(ws, path, 429, "too many connections from this address",
                     "too_many_connections_per_ip", limit=self.config.max_connections_per_ip)

    def handshake(self, ws: WebSocket, request: Request) -> None:
        """An HTTP request: a probe, a static file, or a client asking to join a room."""
        try:
            self._admit(ws, request)
        except Exception as exc:  # a malformed request our checks missed: 400, one line
            if ws.request is not None:
                self._refuse(ws, "", 400, f"malformed request ({type(exc).__name__})")

    def request_timed_out(self, ws: WebSocket) -> None:
        """A socket that did not send a whole HTTP request in time: dropped."""
        self.metrics.refused("handshake_timeout")
        log_event(log, logging.DEBUG, "handshake_timeout", remote=_host(ws),
                  seconds=self.config.handshake_timeout)
        ws.abort()

    def bad_request(self, ws: WebSocket, status: int, reason: str) -> None:
        self.metrics.refused(STATUS_REASONS.get(status, "bad_request"))
        log_event(log, logging.INFO, "peer_refused", status=status, reason=reason,
                  remote=_host(ws))

    def _admit(self, ws: WebSocket, request: Request) -> None:
        """Check a request in the order of :data:`ADMISSION_CHECKS`: its form, then what it
        asks for, the drain, the limits, the websocket handshake, then ``Peer.parse_request``
        - and only then ask the runtime (so a request that cannot be upgraded never joins)."""
        if problem := _malformed(request):
            self._refuse(ws, "", 400, problem)
            return
        path = request.path
        peer = _peer_host(ws)
        client = self.client_addresses.client(
            peer, request.headers.get_all("Forwarded"),
            request.headers.get_all("X-Forwarded-For"))
        if client != peer:
            ws.client_address = (client, 0)  # behind a proxy: the port is the proxy's
        if client != peer or ws not in self._address_key:
            self._count_address(ws, client)
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            if urlsplit(path).path == "/readyz":
                self._spawn(self._answer_readiness(ws))
            else:
                ws.respond(self._serve_file(request))
            return
        if self.draining:
            self._refuse(ws, path, 503, "server draining", "draining")
            return
        if self._refused_by_limits(ws, request):
            return
        if not ws.validate_upgrade():  # answered already (HTTP 400 and the like)
            self.metrics.refused("bad_request")
            log_event(log, logging.INFO, "peer_refused", status=ws.response_status,
                      reason="not a websocket handshake", path=_without_secrets(path),
                      remote=_host(ws))
            return
        peer_request = PeerRequest(
            path=path,
            headers={name.lower(): value for name, value in request.headers.raw_items()},
            remote_address=ws.client_address,
            path_prefix=self.config.path_prefix,
        )
        try:
            credentials, metadata, room_name = self.peer_class.parse_request(peer_request)
        except Exception as exc:
            self._refuse(ws, path, 400, f"{type(exc).__name__}: {exc}")
            return
        resume_token = _resume_token(path)
        try:
            received = _received(path, resume_token)
        except ValueError as exc:
            self._refuse(ws, path, 400, str(exc))
            return
        conn_id = next(self._conn_ids)
        credentials = {k: v for k, v in credentials.items() if k not in _SESSION_PARAMETERS}
        auth = AuthData(str(uuid.uuid4()), credentials, metadata)
        rate = None
        if self.config.peer_messages_per_second:
            rate = MessageRate(self.config.peer_messages_per_second,
                               self.config.peer_message_burst,
                               asyncio.get_running_loop().time())
        conn = PeerConnection(conn_id, auth.peer_id, room_name, path, ws, rate)
        ws.context = conn
        self.connections[conn_id] = conn
        conn.answer_timer = asyncio.get_running_loop().call_later(
            self.config.connect_timeout, self.refuse, conn_id, 503,
            "the actor system did not answer in time")
        self.runtime.connect(conn_id, room_name, auth, resume_token, received)

    def _refused_by_limits(self, ws: WebSocket, request: Request) -> bool:
        """The limits checked before the handshake: origin, connections per address, join
        rate."""
        config = self.config
        origin = request.headers.get("Origin")
        if config.allowed_origins is not None and origin is not None \
                and origin not in config.allowed_origins:
            self._refuse(ws, request.path, 403, "origin not allowed", origin=origin)
        elif self._over_address_limit(ws):
            self._refuse_too_many_from(ws, request.path)
        elif not self.join_rate.allow(address := self._address_key[ws]):
            wait = max(1, round(self.join_rate.retry_after(address)))
            self._refuse(ws, request.path, 429, "too many joins from this address",
                         headers={"Retry-After": str(wait)})
        else:
            return False
        return True

    def _refuse(self, ws: WebSocket, path: str, status: int, reason: str,
                refusal: str | None = None, headers: dict[str, str] | None = None,
                **fields: object) -> None:
        """Answer a websocket request with an HTTP error, and count and log why."""
        self.metrics.refused(refusal or STATUS_REASONS.get(status, "unavailable"))
        log_event(log, logging.INFO, "peer_refused", status=status, reason=reason,
                  path=_without_secrets(path), remote=_host(ws), **fields)
        # A 404's reason is the runtime's own ("no such room", "room is closing"): the client
        # may know it. Others (a 401's above all) stay in the log.
        why = f": {reason}" if status == 404 else ""
        ws.reject(status, f"{HTTPStatus(status).phrase}{why}\n", headers)

    def _serve_file(self, request: Request) -> Response:
        """Plain HTTP: ``/healthz``, the JS client at ``/client.js`` and, with ``demo``, the
        demo page at ``/``; a real local page is what lets browsers open a camera and a
        loopback socket."""
        path = urlsplit(request.path).path
        if path == "/healthz":  # the process serves: the question a liveness probe asks
            if not self.runtime.alive():  # its actor system is gone: restart it
                return _response(503, b"actor system gone\n", _TEXT)
            return _response(200, b"ok\n", _TEXT)
        name = {"/client.js": "client.js", "/": "demo.html" if self.config.demo else None}.get(path)
        if name is None:
            return _response(404, b"Not Found\n", _TEXT)
        body, content_type = _STATIC[name]
        return _response(200, body, content_type)

    async def _answer_readiness(self, ws: WebSocket) -> None:
        """``/readyz``: 200 when the rooms can be reached (asked of the runtime, bounded), 503
        when not or while draining: a load balancer then sends new clients elsewhere."""
        ready = False
        if not self.draining:
            try:
                ready = await asyncio.wait_for(self.runtime.ready(), READY_TIMEOUT)
            except (asyncio.TimeoutError, OSError):
                ready = False
        if ws.transport is not None and not ws.transport.is_closing():
            status = 200 if ready and not self.draining else 503
            ws.respond(_response(status, b"ready\n" if status == 200 else
                                 (b"draining\n" if self.draining else b"not ready\n"), _TEXT))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- draining ----------------------------------------------------------------------------

    def drain(self) -> None:
        """An operator's drain (through the runtime): as :meth:`drain_and_close`."""
        self._spawn(self.drain_and_close())

    async def drain_and_close(self, timeout: float | None = None) -> None:
        """Drain: readiness 503 and new clients HTTP 503 at once; the clients still here after
        ``timeout`` (the config's ``drain_timeout``) are closed with 1012 so that they
        reconnect, resuming, elsewhere; then :attr:`drained` is set. Once per gateway."""
        if self._drain is None:
            seconds = self.config.drain_timeout if timeout is None else timeout
            self._drain = asyncio.ensure_future(self._drain_for(seconds))
        await asyncio.shield(self._drain)

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
                  peer_id=conn.peer_id, room=conn.room_name, remote=_host(conn.ws))
        loop = asyncio.get_running_loop()
        conn.idle_timeout = idle_timeout or self.config.idle_timeout
        conn.last_seen = loop.time()
        conn.idle_timer = loop.call_at(conn.last_seen + conn.idle_timeout, self._check_idle,
                                       conn)

    def refuse(self, conn_id: int, status: int, reason: str) -> None:
        conn = self._answering(conn_id)
        if conn is not None:
            self._forget(conn)
            if status == 401:
                self.metrics.refused_unauthorized(reason)
            self._refuse(conn.ws, conn.path, status, reason, peer_id=conn.peer_id,
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
        self.metrics.messages_forwarded.inc(len(frames))
        connections = self.connections
        for conn_id, frame in frames:
            conn = connections.get(conn_id)
            if conn is not None:
                conn.ws.send_text(frame)

    def close(self, conn_id: int, code: int, reason: str, refusal: str | None = None) -> None:
        conn = self.connections.get(conn_id)
        if conn is None:
            return
        if refusal is not None:
            self.metrics.refused(refusal)
            log_event(log, logging.INFO, f"peer_{refusal}", peer_id=conn.peer_id,
                      room=conn.room_name)
        conn.ws.close(code, reason)

    # -- after the upgrade (websocket.Handler) -----------------------------------------------

    def text_received(self, ws: WebSocket, text: str) -> None:
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
        self.metrics.messages_received.inc()
        self.runtime.receive(conn.conn_id, message)
        if self._behind(conn, 1) and ws.transport is not None and ws not in self._held_back:
            ws.transport.pause_reading()
            self._held_back.add(ws)
            if self._backlog_check is None:
                self._backlog_check = asyncio.get_running_loop().call_later(
                    BACKLOG_CHECK, self._read_again)

    def _behind(self, conn: PeerConnection, share: float) -> bool:
        """``conn``'s room, or all rooms, have more than ``share`` of their bound waiting."""
        return (self.runtime.backlog(conn.conn_id) > MAX_BACKLOG * share
                or self.runtime.backlog() > MAX_TOTAL_BACKLOG * share)

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
        ws = conn.ws
        if verdict == "throttle":
            if conn.throttle_timer is None and ws.transport is not None:
                ws.transport.pause_reading()
                conn.throttle_timer = asyncio.get_running_loop().call_later(
                    conn.rate.wait(), self._throttle_over, conn)
            return True
        if not conn.closed_on_purpose:
            log_event(log, logging.WARNING, "peer_message_rate_exceeded", peer_id=conn.peer_id,
                      room=conn.room_name, remote=_host(ws),
                      limit=self.config.peer_messages_per_second)
            self.metrics.refused("message_rate")
            conn.closed_on_purpose = True
            # A closing handshake, not a cut: the client reads the close frame behind what it
            # sends meanwhile (dropped unread), where a reset would lose it.
            ws.close(CloseCode.POLICY_VIOLATION, "message rate exceeded")
            self._forget(conn)
        return False

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

    def binary_received(self, ws: WebSocket) -> None:
        conn: PeerConnection = ws.context
        if not self._within_rate(conn):
            return
        if not conn.sent_binary:  # ignored; said once, not once per frame
            conn.sent_binary = True
            log_event(log, logging.INFO, "peer_binary_frames_ignored", peer_id=conn.peer_id,
                      room=conn.room_name)

    def write_buffer_full(self, ws: WebSocket) -> None:
        """A slow reader: close it with 1008 (after what it has not read yet) and let its room
        see it leave now; nothing more is queued for it."""
        conn: PeerConnection = ws.context
        log_event(log, logging.WARNING, "slow_reader_closed", peer_id=conn.peer_id,
                  room=conn.room_name, queued_bytes=ws.buffered_bytes, limit=ws.max_buffered)
        self.metrics.refused("slow_reader")
        conn.closed_on_purpose = True
        ws.fail(CloseCode.POLICY_VIOLATION, "slow reader")
        self._forget(conn)

    def connection_closed(self, ws: WebSocket) -> None:
        self.sockets.discard(ws)
        self._held_back.discard(ws)
        key = self._address_key.pop(ws, None)
        if key is not None:
            self.open_per_address.remove(key)
        if not self.sockets:
            self._all_closed.set()
        conn: PeerConnection | None = ws.context
        if conn is None:  # plain HTTP, or refused before asking the runtime
            return
        if conn.answer_timer is not None:  # gone while the runtime decided
            conn.answer_timer.cancel()
            conn.answer_timer = None
        self.connections.pop(conn.conn_id, None)
        if not self.connections:
            self._no_clients.set()
        self._forget(conn)
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

    def _forget(self, conn: PeerConnection) -> None:
        """The gateway no longer holds this connection (gone, cut off or refused): tell the
        runtime, once. Its peer leaves its room, or may resume if the connection dropped:
        neither the client nor the gateway closed it on purpose."""
        if not conn.forgotten:
            conn.forgotten = True
            ws = conn.ws
            resumable = not (conn.closed_on_purpose or ws.client_closed
                             or ws.close_sent_code in _BROKE_THE_PROTOCOL)
            self.runtime.disconnected(conn.conn_id, resumable)

    def _check_idle(self, conn: PeerConnection) -> None:
        """One timer per idle period, not one reset per frame: re-armed from the last frame
        while the client talks, fired when it went quiet for a whole period."""
        loop = asyncio.get_running_loop()
        if loop.time() - conn.last_seen < conn.idle_timeout:
            conn.idle_timer = loop.call_at(conn.last_seen + conn.idle_timeout,
                                           self._check_idle, conn)
            return
        log_event(log, logging.INFO, "peer_idle_timeout", peer_id=conn.peer_id,
                  room=conn.room_name, seconds=conn.idle_timeout)
        self.metrics.refused("idle_timeout")
        conn.closed_on_purpose = True
        conn.ws.close(CloseCode.NORMAL, "idle timeout")

    def _ping_all(self) -> None:
        """Keepalive: one timer for all sockets. A client that has not answered the previous
        ping is gone without a word (its network dropped): close it."""
        for ws in list(self.sockets):
            if not ws.open:
                continue
            if ws.awaiting_pong:
                ws.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
            else:
                ws.ping()
        self._keepalive = asyncio.get_running_loop().call_later(PING_INTERVAL, self._ping_all)


#: Close codes the server sends a client that broke the protocol: it may not resume.
_BROKE_THE_PROTOCOL = frozenset({CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_DATA,
                                 CloseCode.MESSAGE_TOO_BIG})

#: The query parameter of a client that resumes its peer (docs/reference/protocol.md).
RESUME_PARAMETER = "resume"


#: The query parameter of a resuming client: how many frames of its session it received.
RECEIVED_PARAMETER = "received"
#: Parameters of the session, not credentials: ``Peer.parse_request``'s are without them.
_SESSION_PARAMETERS = frozenset({RESUME_PARAMETER, RECEIVED_PARAMETER})
#: The largest ``received`` taken: a JavaScript client counts exactly up to here.
MAX_RECEIVED = 2 ** 53 - 1


def _resume_token(path: str) -> str | None:
    """The ``?resume=`` token of a request, if any."""
    tokens = parse_qs(urlsplit(path).query).get(RESUME_PARAMETER)
    return tokens[0] if tokens else None


def _received(path: str, resume_token: str | None) -> int | None:
    """The ``?received=`` count of a resuming request, if any (passed on to the room, which
    judges it); ValueError saying why when it is not one decimal count."""
    values = parse_qs(urlsplit(path).query, keep_blank_values=True).get(RECEIVED_PARAMETER)
    if values is None:
        return None
    if len(values) > 1:
        raise ValueError(f"{RECEIVED_PARAMETER} given more than once")
    if resume_token is None:
        raise ValueError(f"{RECEIVED_PARAMETER} without {RESUME_PARAMETER}")
    [value] = values
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_RECEIVED)) \
            or int(value) > MAX_RECEIVED:
        raise ValueError(f"{RECEIVED_PARAMETER} is not a count from 0 to {MAX_RECEIVED}")
    return int(value)


def _without_secrets(path: str) -> str:
    """The request's path for log lines: without its query, where tokens travel."""
    return urlsplit(path).path


_TEXT = "text/plain; charset=utf-8"


def _response(status: int, body: bytes, content_type: str) -> Response:
    """A complete plain HTTP answer (the connection closes after it)."""
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("Cache-Control", "no-cache"), ("Connection", "close")])
    return Response(status, HTTPStatus(status).phrase, headers, body)


def _host(ws: WebSocket) -> str:
    """The client's IP address: the TCP peer's, or behind a trusted proxy the one it names."""
    return ws.client_address[0] if ws.client_address else "unknown"


def _peer_host(ws: WebSocket) -> str:
    """The TCP peer's IP address (a trusted proxy's, when there is one)."""
    return ws.remote_address[0] if ws.remote_address else "unknown"


#: Headers a request may carry at most once: a second one would leave the meaning to
#: whichever copy each reader picks (websockets itself refuses two of some, with an error).
_SINGLE_HEADERS = ("Host", "Upgrade", "Origin", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                   "Authorization", "Forwarded")


def _malformed(request: Request) -> str | None:
    """What makes a request unusable before anything looks at it, or None."""
    for name in _SINGLE_HEADERS:
        if len(request.headers.get_all(name)) > 1:
            return f"more than one {name} header"
    path = request.path
    if not path.startswith("/"):
        return "the request target is not a path"
    try:
        urlsplit(path)
    except ValueError:
        return "the request target is not a valid URL path"
    return None


def _static(name: str, content_type: str) -> tuple[bytes, str]:
    return (resources.files("membrane_rtc").joinpath("static", name).read_bytes(), content_type)


_STATIC = {
    "client.js": _static("client.js", "text/javascript; charset=utf-8"),
    "demo.html": _static("demo.html", "text/html; charset=utf-8"),
}
