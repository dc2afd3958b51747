"""Admission: what is checked before a websocket upgrade, in the order of
:data:`ADMISSION_CHECKS` (the request's form, the drain, the per-address limits, the
handshake, ``Peer.parse_request``, the session parameters), and the HTTP errors that refuse.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request

from ..config import ServerConfig
from ..limits import ClientAddresses, JoinRateLimiter, MessageRate, OpenConnections, client_key
from ..loading import load_class
from ..ops.logs import log_event
from ..ops.metrics import STATUS_REASONS, Metrics
from ..peer import Peer, PeerRequest
from ..room import AuthData
from .connection import PeerConnection, client_ip, log, tcp_peer_ip, without_secrets
from .plain_http import PlainHttp
from .websocket import WebSocket

#: What is checked before the upgrade, in the order it is checked: here (at the socket's
#: opening, in :class:`~membrane_rtc.gateway.websocket.WebSocket`, :meth:`Admission.admit`),
#: then by the runtime, whose answer the gateway waits for at most ``connect_timeout``.
#: docs/reference/protocol.md's table has one row per check, in this order.
ADMISSION_CHECKS = (
    "max-connections", "max-connections-per-ip", "handshake-timeout", "http-request",
    "request-target", "plain-http", "draining", "allowed-origin", "client-address",
    "joins-per-second", "websocket-handshake", "parse-request", "received", "room",
    "auto-create", "on-init", "received-count", "connect-timeout",
)

#: The query parameter of a client that resumes its peer (docs/reference/protocol.md).
RESUME_PARAMETER = "resume"
#: The query parameter of a resuming client: how many frames of its session it received.
RECEIVED_PARAMETER = "received"
#: Parameters of the session, not credentials: ``Peer.parse_request``'s are without them.
_SESSION_PARAMETERS = frozenset({RESUME_PARAMETER, RECEIVED_PARAMETER})
#: The largest ``received`` taken: a JavaScript client counts exactly up to here.
MAX_RECEIVED = 2 ** 53 - 1

#: Headers a request may carry at most once: a second one would leave the meaning to
#: whichever copy each reader picks (websockets itself refuses two of some, with an error).
_SINGLE_HEADERS = ("Host", "Upgrade", "Origin", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                   "Authorization", "Forwarded")


@dataclass(frozen=True)
class Joining:
    """A request that passed the gateway's checks: what the runtime is asked to decide."""

    conn: PeerConnection
    auth: AuthData
    resume_token: str | None
    received: int | None


class Admission:
    """The gateway's checks before the upgrade, with the per-address counts they keep."""

    def __init__(self, config: ServerConfig, metrics: Metrics, plain_http: PlainHttp,
                 draining: Callable[[], bool]) -> None:
        self.config = config
        self.metrics = metrics
        self.plain_http = plain_http
        self.draining = draining
        self.join_rate = JoinRateLimiter(config.joins_per_second, config.join_burst)
        self.client_addresses = ClientAddresses(config.trusted_proxies)
        #: Open sockets per client address key, and each socket's key.
        self.open_per_address = OpenConnections(config.max_connections_per_ip)
        self._client_key: dict[WebSocket, str] = {}
        self.peer_class: type[Peer] = load_class(config.peer_class, Peer)
        self._conn_ids = itertools.count(1)

    def reload_peer_class(self) -> None:
        """Load the Peer class anew (``--reload``): ``parse_request`` runs here."""
        self.peer_class = load_class(self.config.peer_class, Peer)

    def opened(self, ws: WebSocket, open_sockets: int) -> None:
        """Every socket counts toward the limits from its first byte on, upgraded or not (a
        half-finished request holds a socket as much as a peer does); past them it is answered
        at once, without waiting for its request."""
        address = tcp_peer_ip(ws)
        counted = not self.client_addresses.is_trusted(address)  # a proxy: see admit
        if counted:
            self._count_address(ws, address)
        if self.config.max_connections and open_sockets > self.config.max_connections:
            self.refuse(ws, "", 503, "too many connections", "too_many_connections",
                        limit=self.config.max_connections)
        elif counted and self._over_address_limit(ws):
            self._refuse_too_many_from(ws, "")

    def closed(self, ws: WebSocket) -> None:
        """``ws`` is gone: it no longer counts toward its address's limit."""
        key = self._client_key.pop(ws, None)
        if key is not None:
            self.open_per_address.remove(key)

    def request_timed_out(self, ws: WebSocket) -> None:
        """A socket that did not send a whole HTTP request in time: dropped."""
        self.metrics.refused("handshake_timeout")
        log_event(log, logging.DEBUG, "handshake_timeout", remote=client_ip(ws),
                  seconds=self.config.handshake_timeout)
        ws.abort()

    def bad_request(self, ws: WebSocket, status: int, reason: str) -> None:
        """websockets answered a request it could not parse: count and log it."""
        self.metrics.refused(STATUS_REASONS.get(status, "bad_request"))
        log_event(log, logging.INFO, "peer_refused", status=status, reason=reason,
                  remote=client_ip(ws))

    def admit(self, ws: WebSocket, request: Request) -> Joining | None:
        """Check a request in the order of :data:`ADMISSION_CHECKS`: its form, then what it
        asks for, the drain, the limits, the websocket handshake, then ``Peer.parse_request``;
        None when it was answered here (so a request that cannot be upgraded never joins)."""
        if problem := _malformed(request):
            self.refuse(ws, "", 400, problem)
            return None
        path = request.path
        self._find_client(ws, request)
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            self.plain_http.answer(ws, path)
            return None
        if self.draining():
            self.refuse(ws, path, 503, "server draining", "draining")
            return None
        if self._refused_by_limits(ws, request):
            return None
        if not ws.validate_upgrade():  # answered already (HTTP 400 and the like)
            self.metrics.refused("bad_request")
            log_event(log, logging.INFO, "peer_refused", status=ws.response_status,
                      reason="not a websocket handshake", path=without_secrets(path),
                      remote=client_ip(ws))
            return None
        return self._joining(ws, request)

    def refuse(self, ws: WebSocket, path: str, status: int, reason: str,
               counted_as: str | None = None, headers: dict[str, str] | None = None,
               **fields: object) -> None:
        """Answer a websocket request with an HTTP error, and count and log why (as
        ``counted_as``, a metrics reason; else the status's usual reason)."""
        self.metrics.refused(counted_as or STATUS_REASONS.get(status, "unavailable"))
        log_event(log, logging.INFO, "peer_refused", status=status, reason=reason,
                  path=without_secrets(path), remote=client_ip(ws), **fields)
        # A 404's reason is the runtime's own ("no such room", "room is closing"): the client
        # may know it. Others (a 401's above all) stay in the log.
        why = f": {reason}" if status == 404 else ""
        ws.reject(status, f"{HTTPStatus(status).phrase}{why}\n", headers)

    def _find_client(self, ws: WebSocket, request: Request) -> None:
        """The client's address (behind a trusted proxy, the one it names), counted."""
        peer = tcp_peer_ip(ws)
        client = self.client_addresses.client(
            peer, request.headers.get_all("Forwarded"),
            request.headers.get_all("X-Forwarded-For"))
        if client != peer:
            ws.client_address = (client, 0)  # behind a proxy: the port is the proxy's
        if client != peer or ws not in self._client_key:
            self._count_address(ws, client)

    def _joining(self, ws: WebSocket, request: Request) -> Joining | None:
        """``Peer.parse_request`` and the session parameters: what to ask the runtime."""
        path = request.path
        peer_request = PeerRequest(
            path=path,
            headers={name.lower(): value for name, value in request.headers.raw_items()},
            remote_address=ws.client_address,
            path_prefix=self.config.path_prefix,
        )
        try:
            credentials, metadata, room_name = self.peer_class.parse_request(peer_request)
        except Exception as exc:
            self.refuse(ws, path, 400, f"{type(exc).__name__}: {exc}")
            return None
        resume_token = _resume_token(path)
        try:
            received = _received(path, resume_token)
        except ValueError as exc:
            self.refuse(ws, path, 400, str(exc))
            return None
        conn_id = next(self._conn_ids)
        credentials = {k: v for k, v in credentials.items() if k not in _SESSION_PARAMETERS}
        auth = AuthData(str(uuid.uuid4()), credentials, metadata)
        rate = None
        if self.config.peer_messages_per_second:
            rate = MessageRate(self.config.peer_messages_per_second,
                               self.config.peer_message_burst,
                               asyncio.get_running_loop().time())
        conn = PeerConnection(conn_id, auth.peer_id, room_name, path, ws, rate)
        return Joining(conn, auth, resume_token, received)

    def _refused_by_limits(self, ws: WebSocket, request: Request) -> bool:
        """The limits checked before the handshake: origin, connections per address, join
        rate."""
        config = self.config
        origin = request.headers.get("Origin")
        if config.allowed_origins is not None and origin is not None \
                and origin not in config.allowed_origins:
            self.refuse(ws, request.path, 403, "origin not allowed", origin=origin)
        elif self._over_address_limit(ws):
            self._refuse_too_many_from(ws, request.path)
        elif not self.join_rate.allow(address := self._client_key[ws]):
            wait = max(1, round(self.join_rate.retry_after(address)))
            self.refuse(ws, request.path, 429, "too many joins from this address",
                        headers={"Retry-After": str(wait)})
        else:
            return False
        return True

    def _count_address(self, ws: WebSocket, address: str) -> None:
        old = self._client_key.get(ws)
        if old is not None:
            self.open_per_address.remove(old)
        key = self._client_key[ws] = client_key(address)
        self.open_per_address.add(key)

    def _over_address_limit(self, ws: WebSocket) -> bool:
        limit = self.config.max_connections_per_ip
        return bool(limit) and self.open_per_address[self._client_key[ws]] > limit

    def _refuse_too_many_from(self, ws: WebSocket, path: str) -> None:
        self.refuse(ws, path, 429, "too many connections from this address",
                    "too_many_connections_per_ip", limit=self.config.max_connections_per_ip)


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
