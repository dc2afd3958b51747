"""A small test client: real websocket connection, bounded waits, frame-shape checks."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

WAIT = 5.0
FOUR_KEYS = {"event", "data", "from", "to"}


class Client:
    """One connected client. ``recv()`` returns decoded JSON frames and asserts their shape."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.peer_id: str | None = None

    @classmethod
    async def connect(cls, url: str, *, authenticate: bool = True, **kwargs: Any) -> "Client":
        client = cls(await asyncio.wait_for(websockets.connect(url, **kwargs), WAIT))
        if authenticate:
            frame = await client.recv()
            assert frame["event"] == "authenticated", frame
            client.peer_id = frame["data"]["peer_id"]
            assert frame == {"event": "authenticated", "data": {"peer_id": client.peer_id},
                             "from": None, "to": [client.peer_id]}
        return client

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
