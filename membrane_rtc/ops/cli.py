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
from typing import Any, Callable, Mapping, Sequence

import jwt

from .. import __version__
from .admin import DEFAULT_TIMEOUT, AdminClient, AdminError
from .operations import ARGUMENT_HELP, BY_NAME, OPERATIONS, request_fields
from ..config import BY_FIELD, DEFAULT_PORT, JWT_SECRET_VARIABLE, ServerConfig
from ..config_checks import ConfigError
from .logs import LOG_FORMATS, announce, configure_logging
from ..loading import SpecError, absolute_spec
from .setting_sources import (CONFIG_VARIABLE, Resolved, SettingsError, add_arguments, describe,
                       given_on_command_line, resolve, server_config)
from ..runtime.api import ActorSystemError
from .scaffold import ScaffoldError, new_room
from ..preflight import preflight
from ..server import Server, ServerError
from ..startup import CannotListen
from ..supervision import HostInfo, RoomInfo

log = logging.getLogger(__name__)


#: Bound on a clean shutdown (close sockets with 1001, every on_terminate, stop the actors).
#: Each step has its own shorter bound; this one guarantees the process ends.
SHUTDOWN_TIMEOUT = 30.0




class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class ShutdownTimeout(Exception):
    """The server did not stop cleanly in time: printed as one line, exit status 1."""


class ActorSystemLost(Exception):
    """The actor system died under a running server: printed as one line, exit status 1 (a
    supervisor restarts the server; ``/healthz`` said 503 meanwhile)."""


def _json_option(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{flag}: not valid JSON ({exc.msg} at char {exc.pos}): {text}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="membrane-rtc", description="WebRTC signaling server on Thespian actors.")
    parser.add_argument("--version", action="version", version=f"membrane-rtc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run the signaling server",
        description="Run the signaling server: the actors (embedded, or every room its own "
                    "process) and the websocket gateway in front of them.",
        epilog="Every setting can also come from the environment, the flag in upper case "
               "with underscores after MEMBRANE_RTC (MEMBRANE_RTC_IDLE_TIMEOUT=30 for "
               "--idle-timeout; a list with commas), or from a --config file whose keys are "
               "the flags without their dashes (idle-timeout = 30). A flag wins over the "
               "environment, the environment over the file. docs/reference/configuration.md "
               "lists them all.")
    serve.add_argument("--config", metavar="FILE",
                       help="read settings from this TOML file (default: "
                            f"${CONFIG_VARIABLE}, else none)")
    serve.add_argument("--print-config", action="store_true",
                       help="print the effective settings and where each came from (secrets "
                            "masked), then exit")
    add_arguments(serve)

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
        parser_.add_argument("--port", type=int, default=default or DEFAULT_PORT,
                             help=f"the server's websocket port (default {DEFAULT_PORT})")
        parser_.add_argument("--admin-port", type=int, default=default, metavar="N",
                             help="reach a multiproc server through this Thespian admin port "
                                  "instead, signing with $MEMBRANE_RTC_ACTOR_KEY or else the "
                                  "key in this user's state file of that server")
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
                command.add_argument(name, help=ARGUMENT_HELP.get(name))
            else:
                command.add_argument(option.flag, dest=name, default=option.default,
                                     metavar=option.metavar, help=option.help)
    return parser


def serve(args: argparse.Namespace) -> None:
    """``membrane-rtc serve``: settings from every source, checked (one line and exit status
    2 for a bad one, before anything listens), then the server until it is told to stop."""
    resolved = resolve_settings(args)
    args.log_format = resolved.values["log-format"]  # an error line in the chosen format
    configure_logging(resolved.values["log-level"], resolved.values["log-format"])
    # Thespian's own INFO lines (each global actor it registers) are noise to an operator.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("Thespian").setLevel(logging.WARNING)
    for warning in resolved.warnings:
        log.warning("%s", warning)
    config = _server_config(resolved)
    if args.print_config:
        print(describe(resolved), flush=True)
    try:
        preflight(config)  # each class's check_options, the --reload extra
    except ConfigError as exc:
        raise _config_problem(exc, resolved.where) from None
    if args.print_config:
        return
    with asyncio.Runner(loop_factory=loop_factory(config)) as runner:
        runner.run(run_server(config))


def _config_problem(exc: ConfigError,
                    where: Callable[[str], str] | None = None) -> UsageError:
    """A ConfigError as one line naming the setting: as it was given (``where``: its flag,
    variable or file key), else its flag."""
    if exc.field.startswith("$"):  # an environment variable of its own (the actor key)
        return UsageError(f"{exc.field}: {exc.problem}")
    key = exc.key or BY_FIELD[exc.field].key
    return UsageError(f"{where(key) if where else '--' + key}: {exc.problem}")


def resolve_settings(args: argparse.Namespace,
                     environ: Mapping[str, str] | None = None) -> Resolved:
    """The settings of ``serve``: its flags, else the environment, else ``--config``'s file,
    else the defaults; UsageError names a bad one as it was given."""
    try:
        return resolve(given_on_command_line(args),
                       os.environ if environ is None else environ, args.config)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def config_from_args(args: argparse.Namespace,
                     environ: Mapping[str, str] | None = None) -> ServerConfig:
    """Turn parsed ``serve`` arguments (and the environment and config file they lead to)
    into a checked ServerConfig, or raise UsageError."""
    return _server_config(resolve_settings(args, environ))


def _server_config(resolved: Resolved) -> ServerConfig:
    try:
        return server_config(resolved)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


async def run_server(config: ServerConfig) -> None:
    """Serve until SIGINT (stop now) or SIGTERM / ``admin drain`` (drain first), then shut
    down cleanly."""
    server = Server(config)
    try:
        await server.start()
    except CannotListen as exc:
        raise UsageError(f"cannot listen on {exc.host}:{exc.port or 0} ({exc.what}, "
                         f"{BY_FIELD[exc.field].flag}): {exc.strerror}") from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    except ConfigError as exc:  # preflight(), which serve() ran already: for completeness
        raise _config_problem(exc) from None
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
                 f"the convention at {', '.join(config.convention or [])} (room host "
                 f"{server.host_name}); "
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
    await _first_of(stop.wait(), asked_to_drain.wait(), server.drained(), server.actors_lost())
    if not stop.is_set() and server.alive:
        log.info("draining for up to %g s", config.drain_timeout)
        # A Ctrl-C cuts the drain short, and so does the actor system's death.
        await _first_of(stop.wait(), server.drain(), server.actors_lost())
    if not server.alive:
        log.error("the actor system is gone (%s); exiting, for a supervisor to restart the "
                  "server", server.failure)
        await server.abort()
        raise ActorSystemLost("the actor system is gone (see the log above); exiting")
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
    # serve sets logging up again once its settings are known (the file, the environment);
    # till then, as far as its flags say, for an error line about them.
    log_format = getattr(args, "log_format", "text")
    configure_logging("WARNING" if args.command == "serve"
                      else getattr(args, "log_level", "WARNING"),
                      log_format if log_format in LOG_FORMATS else "text")
    # Like uvicorn: user modules named as module:Class are found from the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if args.command == "new":
            print(run_new(args.name))
        elif args.command == "token":
            print(mint_token(args.secret, args.room, args.sub, args.ttl, args.name))
        elif args.command == "serve":
            serve(args)
        else:
            print(run_admin(args))
    except UsageError as exc:
        _error(args, str(exc))
        return 2
    except (ShutdownTimeout, ActorSystemLost) as exc:
        _error(args, str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
