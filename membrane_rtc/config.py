"""Server settings and their defaults, written once; the CLI and the Python API both fill this."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from .names import room_name_problem

__all__ = ["RoomConfig", "ServerConfig", "ConfigError", "ROLES", "ACTOR_SYSTEMS", "EVENT_LOOPS"]

#: The roles a membrane-rtc process can play; see ``ServerConfig.roles``.
ROLES = ("leader", "rooms", "gateway")
#: The actor-system modes; see ``ServerConfig.actor_system``.
ACTOR_SYSTEMS = ("embedded", "multiproc")
#: The event loops ``membrane-rtc serve`` can run on: ``auto`` is uvloop when installed
#: (``pip install 'membrane-rtc[speed]'``), else asyncio's own.
EVENT_LOOPS = ("auto", "asyncio", "uvloop")

#: The room class ``membrane-rtc serve`` and ``admin create`` use unless told otherwise.
DEFAULT_ROOM_CLASS = "actors.default:DefaultRoom"
#: The HS256 secret of ``actors.jwt_auth:JWTPeer`` and ``membrane-rtc token``.
JWT_SECRET_VARIABLE = "MEMBRANE_RTC_JWT_SECRET"
#: Peers are closed after this long without a frame from the client (Membrane: 15 minutes).
DEFAULT_IDLE_TIMEOUT = 15 * 60.0
#: Largest client frame accepted; a bigger one closes the connection with 1009.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
#: Peers one room holds; one more is refused with "Could not join room" / "room_is_full".
DEFAULT_MAX_PEERS_PER_ROOM = 1000
#: Rooms one server holds; creating one more is refused.
DEFAULT_MAX_ROOMS = 1000
#: Open websocket connections; past it a new client gets HTTP 503 before the upgrade.
DEFAULT_MAX_CONNECTIONS = 20_000
#: New connections per second from one client address (HTTP 429 past it), with a burst.
DEFAULT_JOINS_PER_SECOND = 20.0
DEFAULT_JOIN_BURST = 40
#: Bytes waiting to be written to one client; a reader that slow is closed with 1008.
DEFAULT_MAX_OUTBOUND_BYTES = 1024 * 1024
#: Longest a user callback may run before it counts as a crash (hung callbacks).
DEFAULT_CALLBACK_TIMEOUT = 5.0
#: A room's restart budget, Elixir's supervisor defaults: 3 restarts within 5 seconds.
DEFAULT_MAX_RESTARTS = 3
DEFAULT_RESTART_WINDOW = 5.0
#: Seconds a peer whose connection dropped stays in its room, waiting for its client to
#: resume (``?resume=<token>``); 0 turns resuming off (a drop is a leave, as in Membrane).
DEFAULT_RESUME_GRACE = 20.0
#: Bytes of frames kept for a peer while it is away; more ends its grace (it leaves).
DEFAULT_RESUME_QUEUE_BYTES = 64 * 1024
#: Seconds a draining server (SIGTERM, ``admin drain``) lets its clients stay before it closes
#: them with 1012 and shuts down.
DEFAULT_DRAIN_TIMEOUT = 10.0
#: Seconds an auto-created room may stay empty before it is stopped.
DEFAULT_EMPTY_TIMEOUT = 300.0
#: Webhook events waiting per URL before new ones are dropped.
DEFAULT_WEBHOOK_QUEUE = 10_000
#: Seconds a new socket may take to complete its HTTP request (and, for a websocket, to be
#: answered); a half-finished request is closed after it.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
#: Open connections (websocket or not, upgraded or not) from one client address (an IPv6
#: client's /64); past it: HTTP 429. Generous for an office behind one NAT address.
DEFAULT_MAX_CONNECTIONS_PER_IP = 100
#: Messages per second one peer may send, and how many at once; past it the gateway stops
#: reading from it for a while, and one that goes on is closed with 1008. No real signaling
#: client comes near it (a whole ICE gathering is a few dozen messages).
DEFAULT_PEER_MESSAGES_PER_SECOND = 100.0
DEFAULT_PEER_MESSAGE_BURST = 500
#: Lifetime of the TURN credentials handed to a peer (seconds): coturn's REST API default.
DEFAULT_TURN_TTL = 86400


class ConfigError(ValueError):
    """A setting out of its range; ``field`` names it (the CLI shows it as its flag)."""

    def __init__(self, field: str, problem: str, key: str | None = None) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        #: The setting (``room-options``) when it is not simply the field's.
        self.key = key


def convention_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of a convention leader, as Thespian wants it."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"convention address must be HOST:PORT, not {text!r}")
    return host, int(port)


@dataclass
class RoomConfig:
    """A room to create at start-up."""

    name: str
    room_class: str | type = "membrane_rtc.room:Room"
    options: Any = None


@dataclass
class ServerConfig:
    """Everything ``membrane-rtc serve`` can be told. Classes may be given as SPEC strings."""

    host: str = "127.0.0.1"
    port: int = 8080
    path_prefix: str = "/webrtc"
    rooms: list[RoomConfig] = field(default_factory=list)
    peer_class: str | type = "membrane_rtc.peer:Peer"
    peer_options: Any = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    #: Serve the demo page at ``/`` (the JS client is always at ``/client.js``).
    demo: bool = True
    #: How long a connecting client may wait for the actors to accept or refuse it.
    connect_timeout: float = 10.0
    #: "embedded" (Thespian simpleSystemBase, one process) or "multiproc" (multiprocTCPBase:
    #: every room its own OS process, hosting its peers).
    actor_system: str = "embedded"
    #: multiproc: Thespian's admin port. embedded: the loopback admin channel's port (0 = any).
    admin_port: int | None = None
    #: Open the admin side for ``membrane-rtc admin``: the loopback admin channel (embedded)
    #: and the state file that tells local operators how to reach it.
    admin: bool = True
    #: Create a room (auto_room_class, auto_room_options) on the first connection to an
    #: unknown name that may_auto_create allows (names.py), within max_rooms.
    auto_create: bool = False
    auto_room_class: str | type = DEFAULT_ROOM_CLASS
    auto_room_options: Any = None
    #: Seconds an auto-created room stays after its last peer left (rooms of ``rooms`` stay).
    empty_timeout: float = DEFAULT_EMPTY_TIMEOUT
    #: Restart budget of each room: at most this many restarts within the window (seconds).
    max_restarts: int = DEFAULT_MAX_RESTARTS
    restart_window: float = DEFAULT_RESTART_WINDOW

    # -- limits (docs/reference/configuration.md); each refusal: a clear answer, a log line --
    #: Peers per room ("Could not join room", details "room_is_full"); 0 = no limit.
    max_peers_per_room: int = DEFAULT_MAX_PEERS_PER_ROOM
    #: Rooms per server (create_room raises ServerError); 0 = no limit.
    max_rooms: int = DEFAULT_MAX_ROOMS
    #: Open websocket connections (HTTP 503 past it); 0 = no limit.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: New connections per second per client IP address (HTTP 429 past it); 0 = no limit.
    joins_per_second: float = DEFAULT_JOINS_PER_SECOND
    #: How many connections one address may open at once before the rate applies.
    join_burst: int = DEFAULT_JOIN_BURST
    #: Bytes queued for one client before it is closed with 1008 as too slow a reader.
    max_outbound_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES
    #: Browser origins allowed to connect (HTTP 403 for others); None = any. Requests with
    #: no Origin header (non-browser clients, which could send any) are always let through.
    allowed_origins: list[str] | None = None
    #: Seconds a user Room/Peer callback may run; past it, it is a crash. 0 = no limit.
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT
    #: Seconds a socket may take to send a complete HTTP request; 0 = no limit.
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    #: Open sockets per client address (IPv6: per /64), HTTP 429 past it; 0 = no limit.
    max_connections_per_ip: int = DEFAULT_MAX_CONNECTIONS_PER_IP
    #: Reverse proxies (CIDR blocks) whose ``X-Forwarded-For`` / ``Forwarded`` header names
    #: the client: only a connection from one of them is believed, and the client is the
    #: rightmost address in the header that is not a trusted proxy itself.
    trusted_proxies: list[str] = field(default_factory=list)
    #: Messages per second one peer may send (token bucket, ``peer_message_burst`` at once);
    #: past it the gateway stops reading from it, then closes it with 1008. 0 = no limit.
    peer_messages_per_second: float = DEFAULT_PEER_MESSAGES_PER_SECOND
    peer_message_burst: int = DEFAULT_PEER_MESSAGE_BURST
    # -- several hosts (docs/howto/scale-out.md) -------------------------------------------
    #: What this process does: "leader" (supervisor, registry, admin actor), "rooms" (runs
    #: room actors), "gateway" (websockets). One process alone does all three.
    roles: frozenset[str] = frozenset(ROLES)
    #: The convention leader's ``HOST:PORT`` (its Thespian admin port): join a deployment of
    #: several actor systems. Implies the multi-process actor system.
    convention: str | None = None
    #: This room host's name in the deployment (default: the machine's name and admin port).
    host_name: str | None = None

    # -- real networks (docs/reference/protocol.md, "Resuming" and "ICE servers") -----------
    #: Seconds a dropped peer may resume within (0: off); frames for it queue meanwhile, up
    #: to resume_queue_bytes.
    resume_grace: float = DEFAULT_RESUME_GRACE
    resume_queue_bytes: int = DEFAULT_RESUME_QUEUE_BYTES
    #: The TURN server's shared secret (coturn ``static-auth-secret``): with turn_urls, every
    #: peer is handed TURN credentials made from it. None: no TURN entry.
    turn_secret: str | None = None
    turn_urls: list[str] = field(default_factory=list)
    turn_ttl: int = DEFAULT_TURN_TTL
    #: STUN servers handed to every peer (no credentials).
    stun_urls: list[str] = field(default_factory=list)

    #: POST every room and peer event, signed with webhook_secret, to each of these URLs.
    webhook_urls: list[str] = field(default_factory=list)
    webhook_secret: str | None = None
    #: Events waiting per webhook URL; past it, new ones are dropped (counted, logged).
    webhook_queue: int = DEFAULT_WEBHOOK_QUEUE

    #: Seconds between a drain's start (readiness 503, new clients 503) and closing the
    #: remaining clients with 1012.
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT

    #: Tell clients why a room crashed (the exception's text) instead of ``room_crashed``.
    #: For development: on the open internet that text leaks the server's internals.
    expose_errors: bool = False
    #: Development: restart the rooms whose class's source file changed (``--reload``).
    reload: bool = False
    #: The event loop ``membrane-rtc serve`` runs (an embedding program runs its own).
    event_loop: str = "auto"
    #: Serve Prometheus metrics on this port (127.0.0.1 unless metrics_host says otherwise).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"


    def validate(self) -> None:
        """Check every setting's range and how they fit together, once for the CLI and for
        ``Server(...)``; raise :class:`ConfigError` naming the first one that is wrong."""
        for name in ("port", "metrics_port", "admin_port"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 65535:
                raise ConfigError(name, f"{value} is not a port number")
        for name in ("max_message_bytes", "idle_timeout", "connect_timeout", "restart_window",
                     "empty_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, "must be positive")
        for name in ("max_peers_per_room", "max_rooms", "max_connections", "joins_per_second",
                     "join_burst", "max_outbound_bytes", "callback_timeout", "max_restarts",
                     "drain_timeout", "handshake_timeout", "max_connections_per_ip",
                     "peer_messages_per_second", "peer_message_burst"):
            if getattr(self, name) < 0:
                raise ConfigError(name, "must be >= 0 (0: no limit)")
        for block in self.trusted_proxies:
            try:
                ipaddress.ip_network(block, strict=False)
            except ValueError:
                raise ConfigError("trusted_proxies", f"{block!r} is not an IP address or "
                                                     "CIDR block") from None
        for room in self.rooms:
            if (problem := room_name_problem(room.name)) is not None:
                raise ConfigError("rooms", problem)
        if self.resume_grace < 0:
            raise ConfigError("resume_grace", "must be >= 0 (0: resuming off)")
        if self.resume_queue_bytes <= 0:
            raise ConfigError("resume_queue_bytes", "must be positive")
        if self.webhook_urls and not self.webhook_secret:
            raise ConfigError("webhook_secret", "webhooks are signed: give a secret too "
                                                "(--webhook-secret)")
        for url in self.webhook_urls:
            if not url.startswith(("http://", "https://")):
                raise ConfigError("webhook_urls", f"{url!r} is not an http(s) URL")
        if self.webhook_queue <= 0:
            raise ConfigError("webhook_queue", "must be positive")
        if self.turn_ttl <= 0:
            raise ConfigError("turn_ttl", "must be positive")
        if bool(self.turn_secret) != bool(self.turn_urls):
            raise ConfigError("turn_secret", "TURN needs both a secret and at least one URL "
                                             "(--turn-secret and --turn-url)")
        for name, schemes in (("turn_urls", ("turn:", "turns:")), ("stun_urls", ("stun:", "stuns:"))):
            for url in getattr(self, name):
                if not url.startswith(schemes):
                    raise ConfigError(name, f"{url!r} does not start with {' or '.join(schemes)}")
        if self.event_loop not in EVENT_LOOPS:
            raise ConfigError("event_loop", f"must be one of {', '.join(EVENT_LOOPS)}")
        if self.actor_system not in ACTOR_SYSTEMS:
            raise ConfigError("actor_system", f"must be one of {', '.join(ACTOR_SYSTEMS)}")
        roles = frozenset(self.roles)
        if not roles or not roles <= set(ROLES):
            raise ConfigError("roles", f"must be some of {', '.join(ROLES)}")
        if self.convention is None:
            if roles != set(ROLES):
                raise ConfigError("roles", "a process without every role joins a convention: "
                                           "give --convention HOST:PORT (convention=)")
            return
        try:
            leader_port = convention_address(self.convention)[1]
        except ValueError as exc:
            raise ConfigError("convention", str(exc)) from None
        if self.actor_system != "multiproc":
            raise ConfigError("convention", "a convention needs the multiproc actor system")
        if "leader" in roles and self.admin_port is not None and self.admin_port != leader_port:
            raise ConfigError("convention", "the leader's port is its own admin port")
