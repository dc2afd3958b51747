"""A Python signaling client (asyncio, ``websockets``) for bots, tests and aiortc peers.

    async with SignalingClient("ws://127.0.0.1:8080/webrtc/demo") as client:
        print("I am", client.peer_id)
        await client.send("offer", {"sdp": ...}, to=[other_id])
        message = await client.recv()        # a Message: event, data, from_, to

A connection that drops is resumed inside ``recv``/``send`` with the server's resume token
(backoff with jitter, for at most ``give_up_after`` seconds): same ``peer_id``, and saying how
many frames of its session it received (``received``), it gets every one after those again,
in order, even those the server wrote into the dropped connection. ``resumes`` counts the
resumes; a client the server admitted afresh instead has a new ``peer_id``.

Only the server may send ``authenticated``, ``left`` and ``error`` (from ``None``) and ``joined``
(from the joining peer, naming itself): a frame that uses one of these names otherwise is a
peer speaking as the server (through an older server, or a room that rewrites events), and is
dropped unseen, as is text that is no server frame at all.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets
from websockets.asyncio.client import ClientConnection

from . import protocol
from .protocol import Addressees, CloseCode, Message
from .sessions import DEFAULT_RESUME_GRACE

#: Close codes after which resuming is pointless: let go on purpose, or rules broken.
FINAL_CLOSE_CODES = frozenset({CloseCode.NORMAL, CloseCode.PROTOCOL_ERROR,
                               CloseCode.INVALID_DATA, CloseCode.POLICY_VIOLATION,
                               CloseCode.MESSAGE_TOO_BIG})

__all__ = ["SignalingClient", "SignalingError"]


class SignalingError(RuntimeError):
    """The server refused us (HTTP status before the upgrade, or an ``error`` frame)."""

    def __init__(self, description: str, details: Any = None) -> None:
        super().__init__(description if details is None else f"{description}: {details}")
        self.description = description
        self.details = details


class SignalingClient:
    """One peer's connection to a room."""

    def __init__(self, url: str, *, timeout: float = 10.0, resume: bool = True,
                 give_up_after: float = DEFAULT_RESUME_GRACE, backoff: float = 0.25,
                 max_backoff: float = 5.0,
                 headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        #: Extra request headers (e.g. ``Authorization``), sent again with every resume: the
        #: server checks a resuming client's credentials as a new one's. Both this and
        #: :attr:`url` may be changed (a fresh token) before a resume.
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.resume = resume
        self.give_up_after = give_up_after
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.peer_id: str | None = None
        #: What the server's ``authenticated`` said (None where it said nothing).
        self.resume_token: str | None = None
        self.ice_servers: list[dict[str, Any]] | None = None
        self.metadata: dict[str, Any] | None = None
        #: How many times a dropped connection was resumed as the same peer.
        self.resumes = 0
        #: The frames received on this session, as docs/reference/protocol.md counts them:
        #: from ``authenticated`` on, without ``pong`` and the gateway's own answers to our
        #: malformed frames, nor a resume's ``authenticated``. Sent as ``received=`` on a
        #: resume; a fresh session starts again at 1.
        self.received = 0
        self._connection: ClientConnection | None = None
        self._closing = False

    async def connect(self) -> str:
        """Join the room; return our peer id. Raises SignalingError when refused."""
        await self._open(self.url)
        assert self.peer_id is not None
        return self.peer_id

    async def _open(self, url: str) -> bool:
        """Connect and read ``authenticated``; return whether it says we resumed."""
        try:
            self._connection = connection = await asyncio.wait_for(
                websockets.connect(url, additional_headers=self.headers or None,
                                   compression=None, max_queue=None), self.timeout)
        except websockets.InvalidStatus as exc:
            raise SignalingError(f"HTTP {exc.response.status_code}") from None
        async with asyncio.timeout(self.timeout):  # one bound, however many frames are dropped
            while (first := self._server_message(await connection.recv())) is None:
                pass
        if first.event == "error":
            await self.close()
            data = first.data or {}
            raise SignalingError(data.get("description", "error"), data.get("details"))
        if first.event != "authenticated":
            raise SignalingError("unexpected first frame", first.event)
        data = first.data
        self.received = protocol.received_after(self.received, first, first=True)
        self.peer_id = data["peer_id"]
        self.resume_token = data.get("resume_token")
        self.ice_servers = data.get("ice_servers")
        self.metadata = data.get("metadata")
        return bool(data.get("resumed"))

    def _server_message(self, text: str | bytes) -> Message | None:
        """The message in a frame, or None for one to drop: not a server frame at all (nothing
        to act on), or a peer speaking as the server."""
        try:
            message = protocol.decode_server_frame(text)
        except protocol.ProtocolError:
            return None
        return message if self._genuine(message) else None

    def _genuine(self, message: Message) -> bool:
        """Whether a message is no peer speaking as the server: ``joined`` comes from the
        joining peer and names it (Membrane's format; never us), the server's other events
        from ``None``; a peer cannot send from ``None``, nor as another peer."""
        if message.event not in protocol.SERVER_EVENTS:
            return True
        data, from_ = message.data, message.from_
        if message.event == "joined":
            genuine = from_ is not None and isinstance(data, dict) \
                and data.get("peer_id") == from_ and from_ != self.peer_id
        else:
            genuine = from_ is None and isinstance(data, dict) \
                and (message.event == "error" or isinstance(data.get("peer_id"), str))
        return genuine

    def _may_resume(self, closed: websockets.ConnectionClosed) -> bool:
        """A drop (no close frame from the server, or one that does not end the session)."""
        code = closed.rcvd.code if closed.rcvd is not None else None
        return self.resume and not self._closing and self.resume_token is not None \
            and code not in FINAL_CLOSE_CODES

    async def _resume(self) -> None:
        """Reconnect with our resume token until it works or ``give_up_after`` passes."""
        assert self.resume_token is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.give_up_after
        for attempt in itertools.count():  # until the deadline below
            parts = urlsplit(self.url)  # the latest: it may change between attempts
            query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                     if k not in ("resume", "received")]
            query += [("resume", self.resume_token), ("received", str(self.received))]
            url = urlunsplit(parts._replace(query=urlencode(query)))
            try:
                if await self._open(url):
                    self.resumes += 1
                return  # resumed, or (token expired) admitted afresh with a new peer_id
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                pass
            ceiling = min(self.max_backoff, self.backoff * 2 ** attempt)
            delay = random.uniform(0, ceiling)  # jitter: clients do not return in lockstep
            if loop.time() + delay > deadline:
                break
            await asyncio.sleep(delay)
        raise SignalingError("could not resume", self.url)

    async def send(self, event: str, data: Any = None,
                   to: Addressees = None) -> None:
        """Send an event to some peers (ids) or ``"all"``; the server sets ``from``."""
        assert self._connection is not None, "not connected"
        frame = protocol.encode(Message(event, data, None, to))
        try:
            await self._connection.send(frame, text=True)
        except websockets.ConnectionClosed as closed:
            if not self._may_resume(closed):
                raise
            await self._resume()
            await self._connection.send(frame, text=True)

    async def recv(self, timeout: float | None = None) -> Message:
        """The next message from the server (``pong`` replies are skipped)."""
        assert self._connection is not None, "not connected"
        while True:
            try:
                text = await asyncio.wait_for(self._connection.recv(), timeout or self.timeout)
            except websockets.ConnectionClosed as closed:
                if not self._may_resume(closed):
                    raise
                await self._resume()
                continue
            if text == protocol.PONG:
                continue
            message = self._count(text)
            if message is not None and self._genuine(message):
                return message

    def _count(self, text: str | bytes) -> Message | None:
        """Decode a frame (None: not a message) and count it as one of the session: the room
        numbered it, even one we then drop unseen - but not the gateway's own answer to a
        malformed frame of ours, which never passed the room."""
        try:
            message = protocol.decode_server_frame(text)
        except protocol.ProtocolError:
            message = None
        self.received = protocol.received_after(self.received, message)
        return message

    async def recv_event(self, event: str, timeout: float | None = None) -> Message:
        """Skip messages until one with ``event`` arrives."""
        while (message := await self.recv(timeout)).event != event:
            pass
        return message

    async def close(self) -> None:
        """Leave the room for good (a close frame: the server lets our peer go at once)."""
        self._closing = True
        if self._connection is not None:
            await self._connection.close()

    async def __aenter__(self) -> SignalingClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
