"""The ``membrane-rtc`` command line: ``membrane-rtc serve ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from typing import Any, Sequence

from .config import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES, RoomConfig, ServerConfig
from .loading import SpecError, absolute_spec, load_class
from .peer import Peer
from .room import Room
from .server import Server, ServerError

log = logging.getLogger("membrane_rtc.cli")


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def _json_option(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{flag}: not valid JSON ({exc.msg} at char {exc.pos}): {text}") from None


def _class_option(spec: str, base: type, flag: str) -> str:
    """Check a SPEC loads now (clear error instead of a traceback later); keep it a string so
    actors in other processes can load it too."""
    spec = absolute_spec(spec)
    try:
        load_class(spec, base)
    except SpecError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    return spec


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="membrane-rtc", description="WebRTC signaling server on Thespian actors.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the signaling server",
                                description="Run the signaling server (embedded actor system).")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port (default %(default)s; 0 = any free)")
    serve.add_argument("--room", action="append", dest="rooms", metavar="NAME",
                       help="create a room at start-up (repeatable; default: one room 'demo')")
    serve.add_argument("--room-class", default="actors.default:DefaultRoom", metavar="SPEC",
                       help="Room class of the rooms, module:Class or file.py:Class (default %(default)s)")
    serve.add_argument("--room-options", default="null", metavar="JSON",
                       help="custom options for the rooms' on_init, as JSON")
    serve.add_argument("--peer-class", default="membrane_rtc.peer:Peer", metavar="SPEC",
                       help="Peer class, module:Class or file.py:Class (default %(default)s)")
    serve.add_argument("--peer-options", default="null", metavar="JSON",
                       help="custom options for Peer.on_init, as JSON")
    serve.add_argument("--path-prefix", default="/webrtc", help="URL prefix of rooms (default %(default)s)")
    serve.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES, metavar="N",
                       help="largest client frame; bigger closes with 1009 (default %(default)s)")
    serve.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, metavar="S",
                       help="seconds without a client frame before closing (default %(default)s)")
    serve.add_argument("--log-level", default="INFO", help="logging level (default %(default)s)")
    return parser


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Turn parsed ``serve`` arguments into a ServerConfig, or raise UsageError."""
    room_class = _class_option(args.room_class, Room, "--room-class")
    peer_class = _class_option(args.peer_class, Peer, "--peer-class")
    room_options = _json_option(args.room_options, "--room-options")
    peer_options = _json_option(args.peer_options, "--peer-options")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: {args.port} is not a port number")
    if args.max_message_bytes <= 0 or args.idle_timeout <= 0:
        raise UsageError("--max-message-bytes and --idle-timeout must be positive")
    names = args.rooms or ["demo"]
    return ServerConfig(
        host=args.host, port=args.port, path_prefix="/" + args.path_prefix.strip("/"),
        rooms=[RoomConfig(name, room_class, room_options) for name in names],
        peer_class=peer_class, peer_options=peer_options,
        max_message_bytes=args.max_message_bytes, idle_timeout=args.idle_timeout,
    )


async def run_server(config: ServerConfig) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly."""
    server = Server(config)
    try:
        await server.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    except ServerError as exc:
        raise UsageError(f"cannot start: {exc}") from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    rooms = ", ".join(room.name for room in config.rooms)
    print(f"membrane-rtc serving {server.url}/<room> (rooms: {rooms}); Ctrl-C to stop", flush=True)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    print("membrane-rtc stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``membrane-rtc`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Like uvicorn: user modules named as module:Class are found from the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if args.command == "serve":
            asyncio.run(run_server(config_from_args(args)))
    except UsageError as exc:
        print(f"membrane-rtc: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
