"""Prometheus metrics (``prometheus-client``): what the gateway counts, and the rooms' registry.

Counters and gauges the gateway moves as it works live in :class:`Metrics`; the rooms' states,
peers and restarts are read from the supervisor when Prometheus scrapes, so they are never
stale. Each server has its own registry, so several servers can live in one process (tests).
"""

from __future__ import annotations

import logging
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable, Sequence
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..supervision import RoomInfo, RoomStatus

__all__ = ["Metrics", "REFUSALS", "RUNTIME_ERRORS"]

log = logging.getLogger(__name__)

#: Every refusal reason counted (label ``reason`` of ``membrane_rtc_refusals_total``).
REFUSALS = (
    "bad_request",           # HTTP 400: parse_request raised / path not under the prefix
    "unauthorized",          # HTTP 401: Peer.on_init raised
    "forbidden_origin",      # HTTP 403: Origin not allowed
    "no_such_room",          # HTTP 404
    "rate_limited",          # HTTP 429: too many joins per second from one address
    "too_many_connections",  # HTTP 503: max connections reached
    "too_many_connections_per_ip",  # HTTP 429: max connections from one address reached
    "handshake_timeout",     # a socket that did not send a whole request in time: dropped
    "message_rate",          # close 1008: a peer went on past its message rate
    "draining",              # HTTP 503: the server is draining (SIGTERM, admin drain)
    "unavailable",           # HTTP 500/503: the actors failed or did not answer in time
    "join_refused",          # "Could not join room" (on_join, room full)
    "invalid_json",          # "Invalid JSON"
    "invalid_message",       # "Invalid message"
    "frame_too_big",         # close 1009
    "slow_reader",           # close 1008: outbound queue over its limit
    "idle_timeout",          # closed after the idle timeout
)

#: The refusal reason of each HTTP status the gateway answers before an upgrade.
#: Distinct 401 reasons counted by name (the rest as ``other``).
MAX_UNAUTHORIZED_REASONS = 32

#: Kinds of messages the runtime could not pass between the gateway and the actors; each
#: failed alone, the others went on (label ``kind`` of ``membrane_rtc_runtime_errors_total``).
RUNTIME_ERRORS = (
    "unsendable",   # could not be serialised for the actors' processes (dropped before sending)
    "undelivered",  # the receiving actor was gone or did not acknowledge in time
    "unhandled",    # the gateway failed handling one of the actors' messages
    "bridge",       # an error in a round of the bridge itself (the next round goes on)
)

STATUS_REASONS = {400: "bad_request", 401: "unauthorized", 403: "forbidden_origin",
                  404: "no_such_room", 429: "rate_limited"}


class _RoomsCollector(Collector):
    """Reads the registry at scrape time: rooms by state, peers and restarts per room."""

    def __init__(self, read_rooms: Callable[[], Sequence[RoomInfo]]) -> None:
        self.read_rooms = read_rooms

    def collect(self) -> Iterable[Metric]:
        try:
            rooms = self.read_rooms()
        except Exception as exc:  # the scrape still gets the gateway's own metrics
            log.warning("metrics: cannot read the rooms: %s", exc)
            return
        by_state = GaugeMetricFamily("membrane_rtc_rooms", "Rooms in the registry, by state",
                                     labels=["state"])
        counts: dict[str, int] = {}
        for room in rooms:
            counts[room.state] = counts.get(room.state, 0) + 1
        for state in RoomStatus:
            by_state.add_metric([state.value], counts.get(state, 0))
        peers = GaugeMetricFamily("membrane_rtc_room_peers", "Peers joined, per room",
                                  labels=["room"])
        restarts = CounterMetricFamily(
            "membrane_rtc_room_restarts", "Restarts of each room still in the registry",
            labels=["room"])
        for room in rooms:
            peers.add_metric([room.name], room.peers)
            restarts.add_metric([room.name], room.restarts)
        yield from (by_state, peers, restarts)


class _MessageCounts(Collector):
    """Reads the gateway's message counts at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily("membrane_rtc_messages_received",
                                  "Client messages handed to the actors",
                                  value=self.metrics.messages_received)
        yield CounterMetricFamily("membrane_rtc_messages_forwarded",
                                  "Frames the rooms sent to clients",
                                  value=self.metrics.messages_forwarded)


class Metrics:
    """The gateway's counters; exposed over HTTP by :meth:`serve` when a port is configured."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Counter(
            "membrane_rtc_connections", "Websocket connections accepted",
            registry=self.registry)
        self.webhooks = Counter(
            "membrane_rtc_webhooks", "Webhook deliveries: sent, retried, failed (given up), "
            "dropped (queue full)", ["outcome"], registry=self.registry)
        for outcome in ("sent", "retried", "failed", "dropped"):
            self.webhooks.labels(outcome)
        self.unauthorized = Counter(
            "membrane_rtc_unauthorized", "HTTP 401 refusals by the reason Peer.on_init gave "
            "(membrane_rtc.Unauthorized; 'unauthorized' for any other exception)", ["reason"],
            registry=self.registry)
        self.resumed = Counter(
            "membrane_rtc_resumed", "Connections that resumed a peer after a drop",
            registry=self.registry)
        self.peers = Gauge("membrane_rtc_peers", "Websocket connections open now",
                           registry=self.registry)
        #: The two counts every forwarded message moves, as plain ints (the event loop's
        #: thread adds to them; a Counter's lock per ``inc`` was some 5% of the CPU per
        #: message), read when Prometheus scrapes.
        self.messages_received = 0
        self.messages_forwarded = 0
        self.registry.register(_MessageCounts(self))
        self.refusals = Counter("membrane_rtc_refusals", "Refused connections and frames",
                                ["reason"], registry=self.registry)
        for reason in REFUSALS:  # every reason shows from the start, at 0
            self.refusals.labels(reason)
        self.queued_bytes = Gauge(
            "membrane_rtc_outbound_queued_bytes", "Bytes waiting to be written, all clients",
            registry=self.registry)
        self.largest_queue = Gauge(
            "membrane_rtc_outbound_queue_max_bytes",
            "Bytes waiting to be written to the most behind client", registry=self.registry)
        self.runtime_errors = Counter(
            "membrane_rtc_runtime_errors", "Messages between the gateway and the actors that "
            "failed alone, by kind: unsendable, undelivered, unhandled, bridge",
            ["kind"], registry=self.registry)
        for kind in RUNTIME_ERRORS:
            self.runtime_errors.labels(kind)
        self._http: tuple[WSGIServer, threading.Thread] | None = None
        self._unauthorized_reasons: set[str] = set()

    def refused(self, reason: str) -> None:
        """Count one refusal (one of :data:`REFUSALS`)."""
        self.refusals.labels(reason).inc()

    def refused_unauthorized(self, reason: str) -> None:
        """Count a 401 by its reason; past MAX_UNAUTHORIZED_REASONS distinct ones, as
        ``other`` (a label per free text would grow without end)."""
        seen = self._unauthorized_reasons
        if reason not in seen:
            if len(seen) >= MAX_UNAUTHORIZED_REASONS:
                reason = "other"
            seen.add(reason)
        self.unauthorized.labels(reason).inc()

    def runtime_error(self, kind: str, count: int = 1) -> None:
        """Count messages that failed in the runtime (one of :data:`RUNTIME_ERRORS`); called
        from the bridge's threads too (prometheus_client's counters are thread-safe)."""
        self.runtime_errors.labels(kind).inc(count)

    def watch_queues(self, read_queues: Callable[[], Iterable[int]]) -> None:
        """Compute the queue gauges at scrape time from each client's queued bytes."""
        self.queued_bytes.set_function(lambda: float(sum(read_queues())))
        self.largest_queue.set_function(lambda: float(max(read_queues(), default=0)))

    def watch_rooms(self, read_rooms: Callable[[], Sequence[RoomInfo]]) -> None:
        """Add the rooms' registry, read at scrape time."""
        self.registry.register(_RoomsCollector(read_rooms))

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host:port`` (a thread); return the port bound.

        prometheus-client's own ``start_http_server`` is the same WSGI app and server, but its
        thread wakes twice a second to look for a shutdown (``serve_forever``'s default poll):
        this one waits for a connection only, and :meth:`stop` wakes it with one."""
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        server_class = type("MetricsServer", (_MetricsServer,), {"address_family": family})
        server: WSGIServer = make_server(host, port, make_wsgi_app(self.registry),
                                         server_class, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": None},
                                  name="membrane-rtc-metrics", daemon=True)
        thread.start()
        self._http = server, thread
        return int(server.server_address[1])

    @property
    def address(self) -> tuple[str, int] | None:
        """Where ``/metrics`` is served: (host, port), or None when it is not."""
        if self._http is None:
            return None
        host, port = self._http[0].server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        http, address = self._http, self.address
        self._http = None
        if http is None or address is None:
            return
        server, thread = http
        stopping = threading.Thread(target=server.shutdown, daemon=True)  # waits for the loop
        stopping.start()
        for _ in range(STOP_POKES):  # a connection wakes the loop to see the shutdown asked
            try:
                socket.create_connection(address, timeout=1).close()
            except OSError:
                pass
            stopping.join(0.1)
            if not stopping.is_alive():
                break
        server.server_close()
        thread.join(1)


#: How many connections ``Metrics.stop`` makes, 0.1 s apart, to wake the serving thread.
STOP_POKES = 50


class _MetricsServer(ThreadingMixIn, WSGIServer):
    """One thread per scrape, none left behind at exit (as prometheus-client's server)."""

    daemon_threads = True


#: Seconds a scrape may take to send its request: a connection that sends half a request and
#: waits holds a thread, so it is closed after this (prometheus-client's handler waits forever).
REQUEST_TIMEOUT = 10.0


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape (as prometheus-client's handler)."""

    timeout = REQUEST_TIMEOUT  # StreamRequestHandler sets it on the connection

    def log_message(self, format: str, *args: Any) -> None:
        pass
