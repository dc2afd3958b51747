"""A small test client: real websocket connection, bounded waits, frame-shape checks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

WAIT = 5.0
FOUR_KEYS = {"event", "data", "from", "to"}


class Client:
    """One connected client. ``recv()`` returns decoded JSON frames and asserts their shape."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.peer_id: str | None = None
        #: What ``authenticated`` said besides the peer id (resume token, ICE servers, ...).
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def connect(cls, url: str, *, authenticate: bool = True, **kwargs: Any) -> "Client":
        client = cls(await asyncio.wait_for(websockets.connect(url, **kwargs), WAIT))
        if authenticate:
            await client.authenticated()
        return client

    async def authenticated(self) -> dict[str, Any]:
        """Read ``authenticated``; check its shape (Membrane's, plus our optional fields)."""
        frame = await self.recv()
        assert frame["event"] == "authenticated", frame
        data = frame["data"]
        self.peer_id = data.pop("peer_id")
        assert frame == {"event": "authenticated", "data": data, "from": None,
                         "to": [self.peer_id]}
        assert set(data) <= {"resume_token", "resumed", "ice_servers", "metadata"}, data
        self.welcome = data
        return data

    async def recv_text(self, timeout: float = WAIT) -> str:
        data = await asyncio.wait_for(self.connection.recv(), timeout)
        assert isinstance(data, str), "server frames are text frames"
        return data

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        frame = json.loads(await self.recv_text(timeout))
        assert isinstance(frame, dict) and set(frame) == FOUR_KEYS, frame
        return frame

    async def recv_event(self, event: str, timeout: float = WAIT) -> dict[str, Any]:
        """The next frame, which must be ``event``."""
        frame = await self.recv(timeout)
        assert frame["event"] == event, frame
        return frame

    async def send(self, event: str, data: Any = None, to: Any = None, **extra: Any) -> None:
        await self.connection.send(json.dumps({"event": event, "data": data, "to": to, **extra}))

    async def send_text(self, text: str) -> None:
        await self.connection.send(text)

    async def closed(self, timeout: float = WAIT) -> int | None:
        """Wait until the server closes the connection; return the close code."""
        await asyncio.wait_for(self.connection.wait_closed(), timeout)
        return self.connection.close_code

    async def close(self) -> None:
        await self.connection.close()


async def refusal(url: str, **kwargs: Any) -> websockets.InvalidStatus:
    """Connect expecting an HTTP refusal before the upgrade; return it (status, headers)."""
    try:
        connection = await asyncio.wait_for(websockets.connect(url, **kwargs), WAIT)
    except websockets.InvalidStatus as exc:
        return exc
    await connection.close()
    raise AssertionError(f"{url} was accepted")


async def refused_status(url: str, **kwargs: Any) -> int:
    """Connect expecting an HTTP refusal before the upgrade; return its status."""
    return (await refusal(url, **kwargs)).response.status_code


async def http_get(url: str) -> tuple[int, str]:
    """A plain HTTP GET (no upgrade): status and body."""
    async with httpx.AsyncClient(timeout=WAIT) as client:
        response = await client.get(url)
        return response.status_code, response.text
