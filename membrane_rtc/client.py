"""A Python signaling client (asyncio, ``websockets``) for bots, tests and aiortc peers.

    async with SignalingClient("ws://127.0.0.1:8080/webrtc/demo") as client:
        print("I am", client.peer_id)
        await client.send("offer", {"sdp": ...}, to=[other_id])
        message = await client.recv()        # a Message: event, data, from_, to
"""

from __future__ import annotations

import asyncio
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from . import protocol
from .protocol import Addressees, Message

__all__ = ["SignalingClient", "SignalingError"]


class SignalingError(RuntimeError):
    """The server refused us (HTTP status before the upgrade, or an ``error`` frame)."""

    def __init__(self, description: str, details: Any = None) -> None:
        super().__init__(description if details is None else f"{description}: {details}")
        self.description = description
        self.details = details


class SignalingClient:
    """One peer's connection to a room."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self.peer_id: str | None = None
        self._connection: ClientConnection | None = None

    async def connect(self) -> str:
        """Join the room; return our peer id. Raises SignalingError when refused."""
        try:
            self._connection = await asyncio.wait_for(
                websockets.connect(self.url, compression=None, max_queue=None), self.timeout)
        except websockets.InvalidStatus as exc:
            raise SignalingError(f"HTTP {exc.response.status_code}") from None
        first = await self.recv()
        if first.event == "error":
            await self.close()
            data = first.data or {}
            raise SignalingError(data.get("description", "error"), data.get("details"))
        if first.event != "authenticated":
            raise SignalingError("unexpected first frame", first.event)
        self.peer_id = first.data["peer_id"]
        return self.peer_id

    async def send(self, event: str, data: Any = None,
                   to: Addressees = None) -> None:
        """Send an event to some peers (ids) or ``"all"``; the server sets ``from``."""
        assert self._connection is not None, "not connected"
        await self._connection.send(protocol.encode(Message(event, data, None, to)), text=True)

    async def recv(self, timeout: float | None = None) -> Message:
        """The next message from the server (``pong`` replies are skipped)."""
        assert self._connection is not None, "not connected"
        while True:
            text = await asyncio.wait_for(self._connection.recv(), timeout or self.timeout)
            if text != protocol.PONG:
                return protocol.decode_server_frame(text)

    async def recv_event(self, event: str, timeout: float | None = None) -> Message:
        """Skip messages until one with ``event`` arrives."""
        while (message := await self.recv(timeout)).event != event:
            pass
        return message

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def __aenter__(self) -> SignalingClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
