"""The ``membrane-rtc`` command line: ``serve`` runs a server, ``admin`` operates a running one."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import jwt

from . import __version__
from .admin import DEFAULT_TIMEOUT, AdminClient, AdminError
from .operations import BY_NAME, OPERATIONS, request_fields
from . import config as defaults
from .config import (ACTOR_SYSTEMS, EVENT_LOOPS, ROLES, ConfigError, RoomConfig, ServerConfig,
                     convention_address)
from .logs import LOG_FORMATS, announce, configure_logging
from .loading import SpecError, absolute_spec, load_class
from .peer import Peer
from .room import Room
from .runtime.bridge import ActorSystemError
from .scaffold import ScaffoldError, new_room
from .server import Server, ServerError
from .supervision import HostInfo, RoomInfo

log = logging.getLogger("membrane_rtc.cli")


#: Bound on a clean shutdown (close sockets with 1001, every on_terminate, stop the actors).
#: Each step has its own shorter bound; this one guarantees the process ends.
SHUTDOWN_TIMEOUT = 30.0


#: Every flag's default is the setting's own (config.py writes each once).
_DEFAULT = ServerConfig()
#: Where ``--turn-secret`` is read from when not given (a flag shows in ``ps``).
TURN_SECRET_VARIABLE = "MEMBRANE_RTC_TURN_SECRET"
#: Where ``--webhook-secret`` is read from when not given.
WEBHOOK_SECRET_VARIABLE = "MEMBRANE_RTC_WEBHOOK_SECRET"
#: Where ``membrane-rtc token --secret`` is read from (JWTPeer reads the same by default).
JWT_SECRET_VARIABLE = "MEMBRANE_RTC_JWT_SECRET"


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class ShutdownTimeout(Exception):
    """The server did not stop cleanly in time: printed as one line, exit status 1."""


def _json_option(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{flag}: not valid JSON ({exc.msg} at char {exc.pos}): {text}") from None


def _class_option(spec: str, base: type, flag: str) -> str:
    """Check a SPEC loads now (clear error instead of a traceback later); keep it a string so
    actors in other processes can load it too."""
    try:
        spec = absolute_spec(spec)
        load_class(spec, base)
    except SpecError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    return spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="membrane-rtc", description="WebRTC signaling server on Thespian actors.")
    parser.add_argument("--version", action="version", version=f"membrane-rtc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the signaling server",
                                description="Run the signaling server (embedded actor system).")
    serve.add_argument("--host", default=_DEFAULT.host, help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=_DEFAULT.port, help="port (default %(default)s; 0 = any free)")
    serve.add_argument("--room", action="append", dest="rooms", metavar="NAME",
                       help="create a room at start-up (repeatable; default: one room 'demo')")
    serve.add_argument("--room-class", default=defaults.DEFAULT_ROOM_CLASS, metavar="SPEC",
                       help="Room class of the rooms, module:Class or file.py:Class (default %(default)s)")
    serve.add_argument("--room-options", default="null", metavar="JSON",
                       help="custom options for the rooms' on_init, as JSON")
    serve.add_argument("--peer-class", default=_DEFAULT.peer_class, metavar="SPEC",
                       help="Peer class, module:Class or file.py:Class (default %(default)s)")
    serve.add_argument("--peer-options", default="null", metavar="JSON",
                       help="custom options for Peer.on_init, as JSON")
    serve.add_argument("--auto-create", action="store_true",
                       help="create a room (--room-class, --room-options) on the first "
                            "connection to an unknown name of letters, digits, _ . - (up to "
                            "64), within --max-rooms")
    serve.add_argument("--empty-timeout", type=float, default=defaults.DEFAULT_EMPTY_TIMEOUT,
                       metavar="S", help="seconds an auto-created room stays after its last "
                       "peer left (default %(default)s; --room rooms stay)")
    serve.add_argument("--path-prefix", default=_DEFAULT.path_prefix, help="URL prefix of rooms (default %(default)s)")
    limits = serve.add_argument_group("limits", "Each refusal gets a clear answer and a log line; 0 = no limit.")
    limits.add_argument("--max-message-bytes", type=int, default=defaults.DEFAULT_MAX_MESSAGE_BYTES,
                        metavar="N", help="largest client frame; bigger closes with 1009 (default %(default)s)")
    limits.add_argument("--idle-timeout", type=float, default=defaults.DEFAULT_IDLE_TIMEOUT, metavar="S",
                        help="seconds without a client frame before closing (default %(default)s)")
    limits.add_argument("--max-peers-per-room", type=int, default=defaults.DEFAULT_MAX_PEERS_PER_ROOM,
                        metavar="N", help="peers in one room; more get 'Could not join room' / "
                                          "room_is_full (default %(default)s)")
    limits.add_argument("--max-rooms", type=int, default=defaults.DEFAULT_MAX_ROOMS, metavar="N",
                        help="rooms on this server; creating more is refused (default %(default)s)")
    limits.add_argument("--max-connections", type=int, default=defaults.DEFAULT_MAX_CONNECTIONS,
                        metavar="N", help="open websocket connections; more get HTTP 503 (default %(default)s)")
    limits.add_argument("--joins-per-second", type=float, default=defaults.DEFAULT_JOINS_PER_SECOND,
                        metavar="R", help="new connections per second per client address; more get "
                                          "HTTP 429 (default %(default)s)")
    limits.add_argument("--join-burst", type=int, default=defaults.DEFAULT_JOIN_BURST, metavar="N",
                        help="connections one address may open at once (default %(default)s)")
    limits.add_argument("--max-outbound-bytes", type=int, default=defaults.DEFAULT_MAX_OUTBOUND_BYTES,
                        metavar="N", help="bytes queued for one client; a slower reader is closed "
                                          "with 1008 (default %(default)s)")
    limits.add_argument("--allowed-origin", action="append", dest="allowed_origins", metavar="ORIGIN",
                        help="browser Origin allowed to connect, e.g. https://example.com "
                             "(repeatable; others get HTTP 403; default: any)")
    limits.add_argument("--callback-timeout", type=float, default=defaults.DEFAULT_CALLBACK_TIMEOUT,
                        metavar="S", help="seconds a Room/Peer callback may run before it counts "
                                          "as a crash (default %(default)s)")
    limits.add_argument("--handshake-timeout", type=float,
                        default=defaults.DEFAULT_HANDSHAKE_TIMEOUT, metavar="S",
                        help="seconds a socket may take to send its whole HTTP request; "
                             "slower ones are closed (default %(default)s)")
    limits.add_argument("--max-connections-per-ip", type=int,
                        default=defaults.DEFAULT_MAX_CONNECTIONS_PER_IP, metavar="N",
                        help="open sockets per client address (IPv6: per /64); more get "
                             "HTTP 429 (default %(default)s)")
    limits.add_argument("--trusted-proxy", action="append", dest="trusted_proxies",
                        metavar="CIDR",
                        help="a reverse proxy whose X-Forwarded-For/Forwarded header names the "
                             "client, e.g. 127.0.0.1/32 (repeatable; default: none, the TCP "
                             "peer is the client)")
    limits.add_argument("--peer-messages-per-second", type=float,
                        default=defaults.DEFAULT_PEER_MESSAGES_PER_SECOND, metavar="R",
                        help="messages per second one peer may send; faster ones are slowed, "
                             "then closed with 1008 (default %(default)s)")
    limits.add_argument("--peer-message-burst", type=int,
                        default=defaults.DEFAULT_PEER_MESSAGE_BURST, metavar="N",
                        help="messages one peer may send at once (default %(default)s)")
    serve.add_argument("--no-demo", dest="demo", action="store_false",
                       help="do not serve the demo page at / (the JS client stays at /client.js)")
    serve.add_argument("--actor-system", choices=ACTOR_SYSTEMS, default=_DEFAULT.actor_system,
                       help="embedded: one process (Thespian simpleSystemBase); multiproc: every "
                            "room its own OS process, its peers inside it (multiprocTCPBase)")
    serve.add_argument("--admin-port", type=int, default=None, metavar="N",
                       help="multiproc: Thespian's admin port (default 1900); embedded: the "
                            "loopback admin channel's port (default: any free one)")
    serve.add_argument("--max-restarts", type=int, default=defaults.DEFAULT_MAX_RESTARTS, metavar="N",
                       help="restarts of a crashing room allowed within --restart-window (default %(default)s)")
    serve.add_argument("--restart-window", type=float, default=defaults.DEFAULT_RESTART_WINDOW, metavar="S",
                       help="seconds of the restart budget (default %(default)s)")
    hosts = serve.add_argument_group(
        "several hosts", "Actor systems joined in a Thespian convention: one leader, room "
        "hosts, gateways on any host (docs/howto/scale-out.md). Implies --actor-system multiproc.")
    hosts.add_argument("--role", action="append", dest="roles", metavar="ROLE",
                       choices=list(ROLES),
                       help="leader (supervisor, registry, admin), rooms (runs rooms) or gateway "
                            "(websockets); repeatable (default: all three, one process)")
    hosts.add_argument("--convention", metavar="HOST:PORT",
                       help="the leader's address and Thespian admin port (the leader gives its own)")
    hosts.add_argument("--host-name", metavar="NAME",
                       help="this room host's name in admin listings (default: machine:admin-port)")
    networks = serve.add_argument_group(
        "real networks", "Resuming after a drop and ICE servers for the clients "
        "(docs/reference/protocol.md).")
    networks.add_argument("--resume-grace", type=float, default=defaults.DEFAULT_RESUME_GRACE,
                          metavar="S", help="seconds a dropped peer may resume within, its "
                          "room-mates seeing nothing (default %(default)s; 0 = off)")
    networks.add_argument("--resume-queue-bytes", type=int,
                          default=defaults.DEFAULT_RESUME_QUEUE_BYTES, metavar="N",
                          help="bytes of frames kept for a dropped peer; more and it leaves "
                               "(default %(default)s)")
    networks.add_argument("--turn-secret", metavar="SECRET",
                          default=os.environ.get(TURN_SECRET_VARIABLE),
                          help="the TURN server's shared secret (coturn static-auth-secret): "
                               "each peer gets TURN credentials made from it (default: $"
                               f"{TURN_SECRET_VARIABLE}, which other users' ps cannot read)")
    networks.add_argument("--turn-url", action="append", dest="turn_urls", metavar="URL",
                          help="a TURN server URL, e.g. turn:turn.example.com:3478?transport=udp "
                               "or turns:...; repeatable")
    networks.add_argument("--turn-ttl", type=int, default=defaults.DEFAULT_TURN_TTL,
                          metavar="S", help="lifetime of TURN credentials (default %(default)s)")
    networks.add_argument("--stun-url", action="append", dest="stun_urls", metavar="URL",
                          help="a STUN server URL handed to every peer, e.g. "
                               "stun:stun.example.com:3478; repeatable")
    hooks = serve.add_argument_group(
        "webhooks", "Room and peer events POSTed as signed JSON (docs/reference/webhooks.md).")
    hooks.add_argument("--webhook-url", action="append", dest="webhook_urls", metavar="URL",
                       help="where to POST events; repeatable")
    hooks.add_argument("--webhook-secret", metavar="SECRET",
                       default=os.environ.get(WEBHOOK_SECRET_VARIABLE),
                       help="signs each body (X-Membrane-Signature: sha256=HMAC) (default: $"
                            f"{WEBHOOK_SECRET_VARIABLE})")
    hooks.add_argument("--webhook-queue", type=int, default=defaults.DEFAULT_WEBHOOK_QUEUE,
                       metavar="N", help="events waiting per URL before new ones are dropped "
                                         "(default %(default)s)")
    serve.add_argument("--drain-timeout", type=float, default=defaults.DEFAULT_DRAIN_TIMEOUT,
                       metavar="S", help="on SIGTERM or 'admin drain': seconds clients may stay "
                       "(new ones get HTTP 503, /readyz 503) before they are closed with 1012 "
                       "and the server stops (default %(default)s; Ctrl-C stops at once)")
    serve.add_argument("--expose-errors", action="store_true",
                       help="development: tell clients why a room crashed (the exception's "
                            "text) instead of 'room_crashed'")
    serve.add_argument("--reload", action="store_true",
                       help="development: restart the rooms whose class's source file changes "
                            "(pip install 'membrane-rtc[reload]')")
    serve.add_argument("--event-loop", choices=EVENT_LOOPS, default=_DEFAULT.event_loop,
                       help="auto: uvloop if installed (pip install 'membrane-rtc[speed]') and "
                            "the actors run embedded, else asyncio's (default %(default)s)")
    serve.add_argument("--log-level", default="INFO", help="logging level (default %(default)s)")
    serve.add_argument("--log-format", choices=LOG_FORMATS, default="text",
                       help="one line per event, as text or JSON (default %(default)s)")
    serve.add_argument("--metrics-port", type=int, default=None, metavar="N",
                       help="serve Prometheus metrics at http://127.0.0.1:N/metrics (default: off)")

    token = commands.add_parser(
        "token", help="mint a JWT access token for actors.jwt_auth:JWTPeer (development)",
        description="Print an HS256 access token for actors.jwt_auth:JWTPeer. For "
                    "development: in production your application issues the tokens.")
    token.add_argument("--secret", default=os.environ.get(JWT_SECRET_VARIABLE),
                       help=f"the shared secret (default: ${JWT_SECRET_VARIABLE}, which other "
                            "users' ps cannot read)")
    token.add_argument("--room", required=True, help="the room it admits to ('*': any room)")
    token.add_argument("--sub", required=True, help="who the peer is (AuthData.identity)")
    token.add_argument("--ttl", type=int, default=3600, metavar="S",
                       help="seconds it is valid (default %(default)s)")
    token.add_argument("--name", help="a display name: the peer's public metadata")
    new = commands.add_parser("new", help="write a room module and its test to start from",
                              description="Write NAME.py and test_NAME.py in the current "
                                          "directory: a room and its test, which pass as "
                                          "written.")
    new.add_argument("kind", choices=["room"])
    new.add_argument("name", help="a lower-case module name, e.g. lobby")
    admin = commands.add_parser(
        "admin", help="operate a running server",
        description="Operate a running server. It is found by its websocket --port through the "
                    "state file it wrote (readable by its user only).")
    # The common options go before or after the operation (admin --json list, admin list
    # --json): the operations take them too, without defaults of their own.
    common = argparse.ArgumentParser(add_help=False)
    for parser_, default in ((admin, None), (common, argparse.SUPPRESS)):
        parser_.add_argument("--port", type=int, default=default or 8080,
                             help="the server's websocket port (default 8080)")
        parser_.add_argument("--admin-port", type=int, default=default, metavar="N",
                             help="reach a multiproc server through this Thespian admin port "
                                  "instead")
        parser_.add_argument("--json", action="store_true", default=default or False,
                             help="print JSON instead of a table")
        parser_.add_argument("--timeout", type=float, default=default or DEFAULT_TIMEOUT,
                             metavar="S", help=f"seconds to wait for an answer (default "
                                               f"{DEFAULT_TIMEOUT:g})")
    admin.add_argument("--log-level", default="WARNING", help=argparse.SUPPRESS)
    operations = admin.add_subparsers(dest="operation", required=True)
    for operation in OPERATIONS:  # one sub-command per admin operation, from the one table
        command = operations.add_parser(operation.name, help=operation.help, parents=[common])
        for name in request_fields(operation):
            option = operation.options.get(name)
            if option is None:
                command.add_argument(name)
            else:
                command.add_argument(option.flag, dest=name, default=option.default,
                                     metavar=option.metavar)
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Turn parsed ``serve`` arguments into a ServerConfig, or raise UsageError."""
    room_class = _class_option(args.room_class, Room, "--room-class")
    peer_class = _class_option(args.peer_class, Peer, "--peer-class")
    room_options = _json_option(args.room_options, "--room-options")
    peer_options = _json_option(args.peer_options, "--peer-options")
    roles = frozenset(args.roles or ROLES)
    admin_port = args.admin_port
    if admin_port is None and args.convention is not None and "leader" in roles:
        try:  # the convention is the leader's own admin port
            admin_port = convention_address(args.convention)[1]
        except ValueError:
            pass  # validate() says what is wrong with it
    names = args.rooms or ["demo"]
    config = ServerConfig(
        host=args.host, port=args.port, path_prefix="/" + args.path_prefix.strip("/"),
        rooms=[RoomConfig(name, room_class, room_options) for name in names],
        peer_class=peer_class, peer_options=peer_options,
        max_message_bytes=args.max_message_bytes, idle_timeout=args.idle_timeout,
        actor_system="multiproc" if args.convention else args.actor_system,
        admin_port=admin_port,
        demo=args.demo, roles=roles, convention=args.convention, host_name=args.host_name,
        max_restarts=args.max_restarts, restart_window=args.restart_window,
        max_peers_per_room=args.max_peers_per_room, max_rooms=args.max_rooms,
        max_connections=args.max_connections, joins_per_second=args.joins_per_second,
        join_burst=args.join_burst, max_outbound_bytes=args.max_outbound_bytes,
        allowed_origins=args.allowed_origins, callback_timeout=args.callback_timeout,
        handshake_timeout=args.handshake_timeout,
        max_connections_per_ip=args.max_connections_per_ip,
        trusted_proxies=args.trusted_proxies or [],
        peer_messages_per_second=args.peer_messages_per_second,
        peer_message_burst=args.peer_message_burst,
        metrics_port=args.metrics_port, event_loop=args.event_loop, reload=args.reload,
        expose_errors=args.expose_errors,
        resume_grace=args.resume_grace, resume_queue_bytes=args.resume_queue_bytes,
        turn_secret=args.turn_secret or None, turn_urls=args.turn_urls or [],
        turn_ttl=args.turn_ttl, stun_urls=args.stun_urls or [],
        auto_create=args.auto_create, auto_room_class=room_class,
        auto_room_options=room_options, empty_timeout=args.empty_timeout,
        drain_timeout=args.drain_timeout, webhook_urls=args.webhook_urls or [],
        webhook_secret=args.webhook_secret or None, webhook_queue=args.webhook_queue,
    )
    try:
        config.validate()
    except ConfigError as exc:
        raise UsageError(f"--{_FLAG_OF.get(exc.field, exc.field.replace('_', '-'))}: "
                         f"{exc.problem}") from None
    return config


#: Settings whose flag is not simply the field's name with dashes.
_FLAG_OF = {"roles": "role", "rooms": "room", "turn_urls": "turn-url", "stun_urls": "stun-url",
            "webhook_urls": "webhook-url", "trusted_proxies": "trusted-proxy"}


async def run_server(config: ServerConfig) -> None:
    """Serve until SIGINT (stop now) or SIGTERM / ``admin drain`` (drain first), then shut
    down cleanly."""
    server = Server(config)
    try:
        await server.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    except ConfigError as exc:  # a class refused its options (check_options)
        flag = exc.key or _FLAG_OF.get(exc.field, exc.field.replace('_', '-'))
        raise UsageError(f"--{flag}: {exc.problem}") from None
    except (ServerError, ActorSystemError) as exc:
        raise UsageError(f"cannot start: {exc}") from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    asked_to_drain = asyncio.Event()
    loop.add_signal_handler(signal.SIGINT, stop.set)  # a terminal's Ctrl-C: stop now
    loop.add_signal_handler(signal.SIGTERM, asked_to_drain.set)  # a service manager: drain
    rooms = ", ".join(room.name for room in config.rooms) if "leader" in config.roles \
        else "the leader's"
    if server.gateway is None:  # a leader or a room host without websockets
        announce("serving", f"membrane-rtc serving as {' + '.join(sorted(config.roles))} in "
                 f"the convention at {config.convention} (room host {server.host_name}); "
                 "Ctrl-C to stop")
    else:
        announce("serving", f"membrane-rtc serving {server.url}/<room> (rooms: {rooms}; actor "
                 f"system: {config.actor_system}; event loop: {_loop_name()}); Ctrl-C to stop",
                 url=server.url)
        if config.demo and "leader" in config.roles:  # a gateway alone creates no room
            announce("demo_page", f"demo page: http://{config.host}:{server.port}/?room="
                     f"{config.rooms[0].name} (open it in two tabs)")
    if server.metrics_port is not None:
        announce("metrics", f"metrics: http://{config.metrics_host}:{server.metrics_port}"
                 "/metrics")
    await _first_of(stop.wait(), asked_to_drain.wait(), server.drained())
    if not stop.is_set():
        log.info("draining for up to %g s", config.drain_timeout)
        await _first_of(stop.wait(), server.drain())  # a Ctrl-C cuts the drain short
    log.info("shutting down")
    try:
        await asyncio.wait_for(server.stop(), SHUTDOWN_TIMEOUT)
    except asyncio.TimeoutError:
        raise ShutdownTimeout(f"shutdown took over {SHUTDOWN_TIMEOUT:g} s; exiting anyway") from None
    announce("stopped", "membrane-rtc stopped")


async def _first_of(*waits: Any) -> None:
    """Wait until the first of these coroutines is done; cancel the others."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def loop_factory(config: ServerConfig) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to serve on: uvloop's (``uvloop``, or ``auto`` when it is installed and
    the actors run embedded), else asyncio's (None).

    ``auto`` keeps asyncio's loop for the multi-process actor system: with uvloop, its bridge
    threads made latency at a steady 1,000 messages/s unstable here (p99 of hundreds of ms in
    4 runs out of 4, against a few ms in most runs on asyncio's loop).
    """
    choice = config.event_loop
    if choice == "asyncio" or (choice == "auto" and config.actor_system != "embedded"):
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise UsageError("--event-loop uvloop: uvloop is not installed "
                             "(pip install 'membrane-rtc[speed]')") from None
        return None
    return uvloop.new_event_loop


def _loop_name() -> str:
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") \
        else "asyncio"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def _show(value: Any, as_json: bool) -> str:
    """An admin answer as a table (or JSON): rooms, peers, or ``ok`` for the others."""
    if not isinstance(value, list):
        return json.dumps({"ok": True}) if as_json else "ok"
    if as_json:
        return json.dumps([dataclasses.asdict(item) for item in value])
    if not value:
        return "(none)"
    if isinstance(value[0], RoomInfo):
        rows = [["NAME", "STATE", "PEERS", "RESTARTS", "HOST", "PID", "CLASS", "LAST EXIT"]]
        rows += [[r.name, r.state, str(r.peers), str(r.restarts), r.host or "-",
                  str(r.pid or "-"), r.room_class, r.reason or "-"] for r in value]
    elif isinstance(value[0], HostInfo):
        rows = [["HOST", "ROOMS"]] + [[h.host, str(h.rooms)] for h in value]
    else:
        rows = [["PEER ID", "REMOTE ADDRESS", "STATE"]]
        rows += [[p.peer_id, p.remote_address or "-", "away" if p.away else "connected"]
                 for p in value]
    return _table(rows)


def run_admin(args: argparse.Namespace) -> str:
    """Carry out one ``membrane-rtc admin`` operation; return what to print."""
    try:
        client = (AdminClient.multiproc(args.admin_port, args.timeout)
                  if args.admin_port is not None
                  else AdminClient.for_server(args.port, args.timeout))
    except AdminError as exc:
        raise UsageError(str(exc)) from None
    operation = BY_NAME[args.operation]
    with client:
        try:
            fields: dict[str, Any] = {}
            for name in request_fields(operation):
                value = getattr(args, name)
                option = operation.options.get(name)
                if option is not None and option.kind == "spec":
                    value = absolute_spec(value)
                elif option is not None and option.kind == "json":
                    value = _json_option(value, option.flag)
                fields[name] = value
            value = client.request(operation.request(**fields))
        except (AdminError, SpecError) as exc:
            raise UsageError(str(exc)) from None
    return _show(value, args.json)


def run_new(name: str) -> str:
    """``membrane-rtc new room NAME``: write the files; return how to test and serve them."""
    try:
        room, test, cls = new_room(name, Path.cwd())
    except ScaffoldError as exc:
        raise UsageError(str(exc)) from None
    return (f"wrote {room.name} and {test.name}\n"
            f"  test it:  python -m pytest {test.name}\n"
            f"  serve it: membrane-rtc serve --room {name} --room-class {room.name}:{cls}")


def mint_token(secret: str | None, room: str, sub: str, ttl: int,
               name: str | None = None) -> str:
    """An HS256 access token for ``actors.jwt_auth:JWTPeer`` (PyJWT signs it)."""
    if not secret:
        raise UsageError(f"--secret: give one, or set ${JWT_SECRET_VARIABLE}")
    if len(secret.encode()) < 32:  # RFC 7518, 3.2; JWTPeer refuses shorter ones too
        raise UsageError(f"--secret: {len(secret.encode())} bytes is too short for HS256: "
                         "give at least 32 (JWTPeer refuses shorter secrets)")
    if ttl <= 0:
        raise UsageError("--ttl: must be positive")
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "room": room, "iat": now, "exp": now + ttl}
    if name is not None:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")


def _error(args: argparse.Namespace, text: str) -> None:
    """One line on stderr: as text, or with ``--log-format json`` as a JSON log line."""
    if getattr(args, "log_format", "text") == "json":
        log.error("%s", text)
    else:
        print(f"membrane-rtc: error: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``membrane-rtc`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "log_level", "WARNING"), getattr(args, "log_format", "text"))
    # Like uvicorn: user modules named as module:Class are found from the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if args.command == "new":
            print(run_new(args.name))
        elif args.command == "token":
            print(mint_token(args.secret, args.room, args.sub, args.ttl, args.name))
        elif args.command == "serve":
            config = config_from_args(args)
            with asyncio.Runner(loop_factory=loop_factory(config)) as runner:
                runner.run(run_server(config))
        else:
            print(run_admin(args))
    except UsageError as exc:
        _error(args, str(exc))
        return 2
    except ShutdownTimeout as exc:
        _error(args, str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
