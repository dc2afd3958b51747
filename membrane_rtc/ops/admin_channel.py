"""The embedded mode's admin channel: operators' requests over a loopback-only websocket.

In the multi-process mode ``membrane-rtc admin`` reaches the admin actor through Thespian's own
admin port. An embedded server has no such port, so it opens this channel instead:

- bound to 127.0.0.1 only: nobody off the machine reaches it;
- every connection must present ``Authorization: Bearer <token>``; the token is random, made at
  start-up, and written with the port to a state file only the server's user can read
  (:mod:`membrane_rtc.ops.state_file`);
- one JSON request per frame, ``{"op": "list", "args": {}}``, answered by
  ``{"ok": true, "value": ...}`` or ``{"ok": false, "error": "..."}``.

Each request becomes the same typed message the multi-process path sends, and goes to the same
admin actor.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HTTPRequest
from websockets.http11 import Response

from .operations import BY_NAME, ENVELOPE_FIELDS, operation_of, request_fields
from ..runtime.api import ActorBridge, ActorSystemError, Request

__all__ = ["AdminChannel", "encode_request", "decode_request"]

log = logging.getLogger(__name__)


class _Labelled(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets' own lines about this server ("server listening on 127.0.0.1:45859"),
    labelled: in the start-up output they would pass for the websocket port."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"admin channel (for membrane-rtc admin, loopback only): {msg}", kwargs


def encode_request(request: Request) -> bytes:
    """One admin request as a JSON frame."""
    operation = operation_of(request)
    args = {name: getattr(request, name) for name in request_fields(operation)}
    return msgspec.json.encode({"op": operation.name, "args": args})


def decode_request(frame: str | bytes) -> Request:
    """Parse a JSON admin frame into its typed request; ValueError says what is wrong."""
    try:
        document = msgspec.json.decode(frame)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("op"), str):
        raise ValueError('expected {"op": NAME, "args": {...}}')
    operation = BY_NAME.get(document["op"])
    if operation is None:
        raise ValueError(f"unknown op {document['op']!r}; one of {', '.join(BY_NAME)}")
    args = document.get("args") or {}
    if not isinstance(args, dict) or any(key in ENVELOPE_FIELDS for key in args):
        raise ValueError("args must be an object of the operation's fields")
    try:
        return operation.request(**args)
    except TypeError as exc:
        raise ValueError(f"bad args for {operation.name}: {exc}") from None


class AdminChannel:
    """Serves the admin channel on 127.0.0.1 for one server's bridge."""

    def __init__(self, bridge: ActorBridge, port: int = 0, token: str | None = None) -> None:
        self.bridge = bridge
        self.requested_port = port
        self.token = token or secrets.token_urlsafe(32)
        self.server: Server | None = None

    @property
    def port(self) -> int:
        """The loopback port the channel listens on."""
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await serve(self._handle, "127.0.0.1", self.requested_port,
                                  process_request=self._check_token, compression=None,
                                  max_size=1 << 20, logger=_Labelled(log, {}))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def _check_token(self, socket: ServerConnection, request: HTTPRequest) -> Response | None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            log.warning("admin channel: refused a connection without the right token")
            return socket.respond(401, "Unauthorized\n")
        return None

    async def _handle(self, socket: ServerConnection) -> None:
        try:
            async for frame in socket:
                await socket.send(msgspec.json.encode(await self._answer(frame)), text=True)
        except ConnectionClosed:
            pass

    async def _answer(self, frame: str | bytes) -> dict[str, Any]:
        try:
            request = decode_request(frame)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        try:
            reply = await self.bridge.ask(self.bridge.admin, request)
        except ActorSystemError as exc:
            return {"ok": False, "error": str(exc)}
        if reply.error is not None:
            return {"ok": False, "error": reply.error}
        return {"ok": True, "value": reply.value}
