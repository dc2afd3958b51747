"""Server settings, each declared once: name, type, default and help, in :class:`ServerConfig`.

The command line's flags, the ``--config`` file's keys, the ``MEMBRANE_RTC_*`` environment
variables, ``serve --print-config`` and the configuration reference are all derived from these
declarations (:data:`SETTINGS`; :mod:`membrane_rtc.ops.setting_sources` reads them from each
source), as the admin operations are derived from :mod:`membrane_rtc.ops.operations`. What a setting's
declaration is: :mod:`membrane_rtc.config_fields`; the checks of the values:
:mod:`membrane_rtc.config_checks`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .config_checks import (check_actor_key, check_addresses, check_choice, check_convention,
                            check_ice, check_numbers, check_resuming, check_roles,
                            check_webhooks, convention_address)
from .config_fields import ENV_PREFIX, Setting, declared_settings, setting
from .ice import DEFAULT_TURN_TTL
from .ops.logs import LOG_FORMATS
from .sessions import DEFAULT_RESUME_GRACE, DEFAULT_RESUME_QUEUE_BYTES

__all__ = ["RoomConfig", "ServerConfig", "SETTINGS", "ROLES", "ACTOR_SYSTEMS", "EVENT_LOOPS"]

#: The roles a membrane-rtc process can play; see ``ServerConfig.roles``.
ROLES = ("leader", "rooms", "gateway")
#: The actor-system modes; see ``ServerConfig.actor_system``.
ACTOR_SYSTEMS = ("embedded", "multiproc")
#: The multi-process actor system's key (HMAC-SHA256 of every Thespian message): unset, each
#: server makes one; several hosts set the same one on every host. An environment variable
#: only: a flag would show in ``ps``.
ACTOR_KEY_VARIABLE = "MEMBRANE_RTC_ACTOR_KEY"
#: The event loops ``membrane-rtc serve`` can run on: ``auto`` is uvloop when installed
#: (``pip install 'membrane-rtc[speed]'``), else asyncio's own.
EVENT_LOOPS = ("auto", "asyncio", "uvloop")

#: The room class rooms run unless told otherwise (``serve``, ``admin create``, ``Server``).
DEFAULT_ROOM_CLASS = "actors.default:DefaultRoom"
#: The Peer class connections get unless told otherwise.
DEFAULT_PEER_CLASS = "membrane_rtc.peer:Peer"
#: The websocket (and HTTP) port of ``membrane-rtc serve``; ``membrane-rtc admin`` looks for
#: a server there unless told otherwise.
DEFAULT_PORT = 8080
#: The HS256 secret of ``actors.jwt_auth:JWTPeer`` and ``membrane-rtc token`` (not a setting
#: of the server: the peer class reads it).
JWT_SECRET_VARIABLE = ENV_PREFIX + "JWT_SECRET"
#: Logging levels ``--log-level`` takes.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
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


def own_leader(leaders: list[str], admin_port: int | None, address: str | None) -> str | None:
    """Which of the convention's leaders (``HOST:PORT``) a leader on ``admin_port`` that
    advertises ``address`` is: the one with its port (and its address, if several have
    that port). None if none is."""
    mine = [text for text in leaders if convention_address(text)[1] == admin_port]
    if len(mine) > 1:
        mine = [text for text in mine if convention_address(text)[0] == address]
    return mine[0] if len(mine) == 1 else None


#: The help groups of ``serve --help`` (and of the configuration reference), in order.
GROUPS = {
    "server": "",
    "rooms": "The rooms and peers: what runs, and what to do when it crashes.",
    "limits": "Each refusal gets a clear answer and a log line; 0 = no limit.",
    "actors": "Where the rooms run.",
    "several hosts": "Actor systems joined in a Thespian convention: one leader, room hosts, "
                     "gateways on any host (docs/howto/scale-out.md). Implies --actor-system "
                     "multiproc.",
    "real networks": "Resuming after a drop and ICE servers for the clients "
                     "(docs/reference/protocol.md).",
    "webhooks": "Room and peer events POSTed as signed JSON (docs/reference/webhooks.md).",
    "operations": "Draining, metrics and logs.",
    "development": "Not for the open internet.",
}


@dataclass
class RoomConfig:
    """A room to create at start-up."""

    name: str
    room_class: str | type = DEFAULT_ROOM_CLASS
    options: Any = None


@dataclass
class ServerConfig:
    """Everything ``membrane-rtc serve`` can be told. Classes may be given as SPEC strings.

    Each field is one setting: its flag, file key and environment variable are its name with
    dashes (``idle_timeout``: ``--idle-timeout``, ``idle-timeout``,
    ``MEMBRANE_RTC_IDLE_TIMEOUT``), those of a list in the singular (``--room``).
    """

    host: str = setting("127.0.0.1", "address to listen on (0.0.0.0: every interface)")
    port: int = setting(DEFAULT_PORT, "websocket and HTTP port (0: any free one)", metavar="N")
    path_prefix: str = setting("/webrtc", "URL prefix of the rooms: ws://HOST:PORT/PREFIX/ROOM",
                               metavar="PREFIX")
    #: The rooms created at start-up; from the command line: ``room`` names, each running
    #: ``room-class`` with ``room-options``.
    rooms: list[RoomConfig] = setting(
        [], "create a room of this name at start-up (running --room-class)", key="room",
        metavar="NAME", group="rooms", command_line_default=["demo"])
    peer_class: str | type = setting(
        DEFAULT_PEER_CLASS, "Peer class of every connection, module:Class or file.py:Class",
        metavar="SPEC", group="rooms", base="peer")
    peer_options: Any = setting(None, "custom options for Peer.on_init, as JSON",
                                metavar="JSON", group="rooms", unset="null")
    max_message_bytes: int = setting(
        DEFAULT_MAX_MESSAGE_BYTES, "largest client frame; bigger closes with 1009",
        metavar="N", group="limits")
    idle_timeout: float = setting(
        DEFAULT_IDLE_TIMEOUT, "seconds without a client frame before closing it (Peer.on_init "
        "may set its own)", metavar="S", group="limits")
    demo: bool = setting(True, "serve the demo page at / (the JS client is always at "
                               "/client.js)")
    connect_timeout: float = setting(
        10.0, "seconds a connecting client may wait for the actors to accept or refuse it",
        metavar="S", group="limits")
    actor_system: str = setting(
        "embedded", "embedded: one process (Thespian simpleSystemBase); multiproc: every room "
        "its own OS process, its peers inside it (multiprocTCPBase)", choices=ACTOR_SYSTEMS,
        group="actors")
    admin_port: int | None = setting(
        None, "multiproc: Thespian's admin port, on $THESPIAN_BASE_IPADDR (127.0.0.1 unless "
        "set), taking only messages signed with the actor-system key ($MEMBRANE_RTC_ACTOR_KEY, "
        "else one made at start and kept in the 0600 state file); embedded: the loopback "
        "admin channel's port; 0: any free one, in either mode", metavar="N", group="actors",
        unset="1900 multiproc, any free port embedded")
    admin: bool = setting(
        True, "open the admin side for membrane-rtc admin (the embedded mode's loopback "
        "channel) and write the state file it finds the server by", group="actors")
    auto_create: bool = setting(
        False, "create a room (--auto-room-class, --auto-room-options) on the first connection "
        "to an unknown name of letters, digits, _ . - (up to 64), within --max-rooms",
        group="rooms")
    auto_room_class: str | type = setting(
        DEFAULT_ROOM_CLASS, "Room class of the rooms --auto-create makes", metavar="SPEC",
        group="rooms", base="room", default_from="room-class")
    auto_room_options: Any = setting(
        None, "custom options for those rooms' on_init, as JSON", metavar="JSON",
        group="rooms", unset="null", default_from="room-options")
    empty_timeout: float = setting(
        DEFAULT_EMPTY_TIMEOUT, "seconds an auto-created room stays after its last peer left "
        "(--room rooms stay)", metavar="S", group="rooms")
    max_restarts: int = setting(
        DEFAULT_MAX_RESTARTS, "restarts of a crashing room allowed within --restart-window; "
        "past it the room is failed", metavar="N", group="rooms")
    restart_window: float = setting(DEFAULT_RESTART_WINDOW, "seconds of the restart budget",
                                    metavar="S", group="rooms")

    # -- limits (docs/reference/configuration.md); each refusal: a clear answer, a log line --
    max_peers_per_room: int = setting(
        DEFAULT_MAX_PEERS_PER_ROOM, "peers in one room; more get 'Could not join room' / "
        "room_is_full", metavar="N", group="limits")
    max_rooms: int = setting(DEFAULT_MAX_ROOMS, "rooms on this server; creating more is "
                                                "refused", metavar="N", group="limits")
    max_connections: int = setting(
        DEFAULT_MAX_CONNECTIONS, "open connections; more get HTTP 503", metavar="N",
        group="limits")
    joins_per_second: float = setting(
        DEFAULT_JOINS_PER_SECOND, "new connections per second per client address; more get "
        "HTTP 429", metavar="R", group="limits")
    join_burst: int = setting(DEFAULT_JOIN_BURST, "connections one address may open at once "
                                                  "before the rate applies", metavar="N",
                              group="limits")
    max_outbound_bytes: int = setting(
        DEFAULT_MAX_OUTBOUND_BYTES, "bytes queued for one client; a slower reader is closed "
        "with 1008", metavar="N", group="limits")
    #: Requests with no Origin header (non-browser clients, which could send any) are always
    #: let through.
    allowed_origins: list[str] | None = setting(
        None, "browser Origin allowed to connect, e.g. https://example.com; others get HTTP "
        "403", key="allowed-origin", metavar="ORIGIN", group="limits", unset="any")
    callback_timeout: float = setting(
        DEFAULT_CALLBACK_TIMEOUT, "seconds a Room/Peer callback may run before it counts as "
        "a crash", metavar="S", group="limits")
    handshake_timeout: float = setting(
        DEFAULT_HANDSHAKE_TIMEOUT, "seconds a socket may take to send its whole HTTP "
        "request; slower ones are closed", metavar="S", group="limits")
    max_connections_per_ip: int = setting(
        DEFAULT_MAX_CONNECTIONS_PER_IP, "open sockets per client address (IPv6: per /64); "
        "more get HTTP 429", metavar="N", group="limits")
    #: Only a connection from one of them is believed, and the client is the rightmost
    #: address in the header that is not a trusted proxy itself.
    trusted_proxies: list[str] = setting(
        [], "a reverse proxy (CIDR) whose X-Forwarded-For/Forwarded header names the client, "
        "e.g. 127.0.0.1/32", key="trusted-proxy", metavar="CIDR", group="limits",
        unset="none: the TCP peer is the client")
    peer_messages_per_second: float = setting(
        DEFAULT_PEER_MESSAGES_PER_SECOND, "messages per second one peer may send; faster ones "
        "are slowed, then closed with 1008", metavar="R", group="limits")
    peer_message_burst: int = setting(DEFAULT_PEER_MESSAGE_BURST, "messages one peer may send "
                                                                  "at once", metavar="N",
                                      group="limits")
    # -- several hosts (docs/howto/scale-out.md) -------------------------------------------
    roles: frozenset[str] = setting(
        frozenset(ROLES), "what this process does: leader (supervisor, registry, admin), rooms "
        "(runs rooms) or gateway (websockets)", key="role", choices=ROLES,
        group="several hosts", unset="all three, one process")
    convention: list[str] | None = setting(
        None, "a convention leader's HOST:PORT (its Thespian admin port; a leader gives its "
        "own too): join a deployment of several actor systems. Repeated: several leaders, "
        "one leading, the next taking over when it is lost - the same list in the same "
        "order on every process. Every host needs the same $MEMBRANE_RTC_ACTOR_KEY; the "
        "actor ports carry pickles unencrypted (Thespian has no TLS): keep them on a private "
        "network or WireGuard", metavar="HOST:PORT", group="several hosts")
    host_name: str | None = setting(
        None, "this room host's name in admin listings", metavar="NAME",
        group="several hosts", unset="machine:admin-port")

    # -- real networks (docs/reference/protocol.md, "Resuming" and "ICE servers") -----------
    resume_grace: float = setting(
        DEFAULT_RESUME_GRACE, "seconds a dropped peer may resume within, its room-mates "
        "seeing nothing (0: off)", metavar="S", group="real networks")
    resume_queue_bytes: int = setting(
        DEFAULT_RESUME_QUEUE_BYTES, "bytes of each peer's most recent frames kept for a "
        "resume (received); more since a drop and it leaves", metavar="N",
        group="real networks")
    turn_secret: str | None = setting(
        None, "the TURN server's shared secret (coturn static-auth-secret): each peer gets "
        "TURN credentials made from it", metavar="SECRET", group="real networks", secret=True)
    turn_urls: list[str] = setting(
        [], "a TURN server URL, e.g. turn:turn.example.com:3478?transport=udp or turns:...",
        key="turn-url", metavar="URL", group="real networks", unset="none")
    turn_ttl: int = setting(DEFAULT_TURN_TTL, "lifetime of TURN credentials, in seconds",
                            metavar="S", group="real networks")
    stun_urls: list[str] = setting(
        [], "a STUN server URL handed to every peer, e.g. stun:stun.example.com:3478",
        key="stun-url", metavar="URL", group="real networks", unset="none")

    webhook_urls: list[str] = setting([], "where to POST room and peer events",
                                      key="webhook-url", metavar="URL", group="webhooks",
                                      unset="none")
    webhook_secret: str | None = setting(
        None, "signs each webhook body (X-Membrane-Signature: sha256=HMAC)", metavar="SECRET",
        group="webhooks", secret=True)
    webhook_queue: int = setting(DEFAULT_WEBHOOK_QUEUE, "events waiting per URL before new "
                                                        "ones are dropped", metavar="N",
                                 group="webhooks")

    drain_timeout: float = setting(
        DEFAULT_DRAIN_TIMEOUT, "on SIGTERM or 'admin drain': seconds clients may stay (new "
        "ones get HTTP 503, /readyz 503) before they are closed with 1012 and the server "
        "stops; Ctrl-C stops at once", metavar="S", group="operations")
    expose_errors: bool = setting(
        False, "tell clients why a room crashed (the exception's text, which leaks the "
        "server's internals) instead of 'room_crashed'", group="development")
    reload: bool = setting(
        False, "restart the rooms whose class's source file changes (pip install "
        "'membrane-rtc[reload]')", group="development")
    #: An embedding program runs its own loop.
    event_loop: str = setting(
        "auto", "the event loop membrane-rtc serve runs: auto is uvloop if installed (pip "
        "install 'membrane-rtc[speed]') and the actors run embedded, else asyncio's",
        choices=EVENT_LOOPS, group="actors")
    metrics_port: int | None = setting(
        None, "serve Prometheus metrics at http://METRICS_HOST:N/metrics", metavar="N",
        group="operations", unset="off")
    metrics_host: str = setting(
        "127.0.0.1", "address the metrics listen on (0.0.0.0 for a scraper in another pod "
        "or machine)", metavar="HOST", group="operations")

    def validate(self) -> None:
        """Check every setting's range and how they fit together, once for the CLI and for
        ``Server(...)``; raise :class:`~membrane_rtc.config_checks.ConfigError` naming the
        first one that is wrong (the checks: :mod:`membrane_rtc.config_checks`)."""
        check_numbers(vars(self))
        check_addresses(self.trusted_proxies, [room.name for room in self.rooms])
        check_resuming(self.resume_grace, self.resume_queue_bytes)
        check_webhooks(self.webhook_urls, self.webhook_secret, self.webhook_queue)
        check_ice(self.turn_secret, self.turn_urls, self.turn_ttl, self.stun_urls)
        check_choice("event_loop", self.event_loop, EVENT_LOOPS)
        check_choice("actor_system", self.actor_system, ACTOR_SYSTEMS)
        key = os.environ.get(ACTOR_KEY_VARIABLE)
        multiproc = self.actor_system == "multiproc"
        check_actor_key(ACTOR_KEY_VARIABLE, key, multiproc)
        roles = frozenset(self.roles)
        check_roles(roles, ROLES, self.convention)
        if self.convention is None:
            return
        if isinstance(self.convention, str):  # one leader, as embedding programs gave it
            self.convention = [self.convention]
        check_convention(self.convention, roles, multiproc, self.admin_port,
                         ACTOR_KEY_VARIABLE, key)


#: The settings of the command itself, not of ``Server``: the class and options of the rooms
#: ``room`` names, and logging (an embedding program does its own).
COMMAND_SETTINGS = (
    Setting("room-class", "Room class of the --room rooms, module:Class or file.py:Class",
            "spec", DEFAULT_ROOM_CLASS, metavar="SPEC", group="rooms", base="room"),
    Setting("room-options", "custom options for their on_init, as JSON", "json", None,
            optional=True, unset="null", metavar="JSON", group="rooms"),
    Setting("log-level", "logging level", "str", "info", choices=LOG_LEVELS,
            group="operations"),
    Setting("log-format", "one line per event, as text or JSON", "str", "text",
            choices=LOG_FORMATS, group="operations"),
)

#: Where the command's own settings go in the listings.
_PLACE_AFTER = {"room-class": "room", "room-options": "room-class"}


#: Every setting of ``membrane-rtc serve``, each once (help-group order).
SETTINGS: tuple[Setting, ...] = declared_settings(ServerConfig, COMMAND_SETTINGS,
                                                   _PLACE_AFTER, GROUPS)
#: The settings by key (``port``) and by ServerConfig field (``rooms``).
BY_KEY = {s.key: s for s in SETTINGS}
BY_FIELD = {s.field: s for s in SETTINGS if s.field is not None}
