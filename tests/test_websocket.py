"""The asyncio driver of websockets' sans-I/O protocol (membrane_rtc/gateway/websocket.py), frame by
frame over a raw loopback socket: fragments, pings between data, closes, slow readers, resets."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import AsyncIterator

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request

from membrane_rtc.gateway.websocket import WebSocket

#: A fixed Sec-WebSocket-Key and what the server must answer for it (RFC 6455 example).
KEY, ACCEPT = "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


class Echo:
    """A Handler: upgrades every request; echoes text; writes a lot when asked to."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.binaries = 0
        self.closed: list[WebSocket] = []
        self.full: list[WebSocket] = []
        self.gone = asyncio.Event()

    def connection_opened(self, ws: WebSocket) -> None:
        pass

    def request_timed_out(self, ws: WebSocket) -> None:
        ws.abort()

    def bad_request(self, ws: WebSocket, status: int, reason: str) -> None:
        pass

    def handshake(self, ws: WebSocket, request: Request) -> None:
        ws.upgrade()

    def text_received(self, ws: WebSocket, text: str) -> None:
        self.texts.append(text)
        if text.startswith("flood"):
            for _ in range(int(text.split()[1])):
                ws.send_text(b"x" * 65536)
        elif text == "close":
            ws.send_text(b"last words")
            ws.close(4001, "asked to")
        else:
            ws.send_text(text.encode())

    def binary_received(self, ws: WebSocket) -> None:
        self.binaries += 1

    def connection_closed(self, ws: WebSocket) -> None:
        self.closed.append(ws)
        self.gone.set()

    def write_buffer_full(self, ws: WebSocket) -> None:
        self.full.append(ws)
        ws.fail(1008, "slow reader")


@pytest.fixture
async def echo() -> AsyncIterator[tuple[Echo, int]]:
    handler = Echo()
    server = await asyncio.get_running_loop().create_server(
        lambda: WebSocket(handler, max_size=1024, max_buffered=256 * 1024), "127.0.0.1", 0)
    try:
        yield handler, server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


class RawClient:
    """A websocket client made by hand: frames go out exactly as the test builds them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, receive_buffer: int | None = None) -> "RawClient":
        sock = socket.socket()
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect(("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write((f"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101") and ACCEPT.encode() in head
        return cls(reader, writer)

    def send(self, opcode: Opcode, data: bytes, fin: bool = True) -> None:
        self.writer.write(Frame(opcode, data, fin).serialize(mask=True))

    async def recv(self) -> tuple[Opcode, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return Opcode(first & 0x0F), await asyncio.wait_for(self.reader.readexactly(length), 5)


async def test_fragments_are_joined_and_pings_between_them_answered(
        echo: tuple[Echo, int]) -> None:
    handler, port = echo
    client = await RawClient.connect(port)
    client.send(Opcode.TEXT, b'{"event":', fin=False)
    client.send(Opcode.PING, b"are you there")  # control frames may come between fragments
    client.send(Opcode.CONT, b' "offer"', fin=False)
    client.send(Opcode.CONT, "}é".encode(), fin=True)
    assert await client.recv() == (Opcode.PONG, b"are you there")
    assert await client.recv() == (Opcode.TEXT, '{"event": "offer"}é'.encode())
    client.send(Opcode.BINARY, b"\x00\x01", fin=False)
    client.send(Opcode.CONT, b"\x02", fin=True)
    client.send(Opcode.TEXT, b"after")
    assert await client.recv() == (Opcode.TEXT, b"after")
    assert handler.texts == ['{"event": "offer"}é', "after"] and handler.binaries == 1


async def test_a_server_close_comes_after_what_was_sent_before_it(
        echo: tuple[Echo, int]) -> None:
    handler, port = echo
    client = await RawClient.connect(port)
    client.send(Opcode.TEXT, b"close")
    assert await client.recv() == (Opcode.TEXT, b"last words")
    opcode, data = await client.recv()
    assert opcode is Opcode.CLOSE and Close.parse(data) == Close(4001, "asked to")
    client.send(Opcode.TEXT, b"too late")  # said while closing: dropped
    client.send(Opcode.CLOSE, Close(4001, "asked to").serialize())
    assert await asyncio.wait_for(client.reader.read(), 5) == b""  # then the server hangs up
    await asyncio.wait_for(handler.gone.wait(), 5)
    assert handler.texts == ["close"] and handler.closed[0].close_code == 4001


async def test_what_a_client_says_before_its_close_frame_arrives_with_it(
        echo: tuple[Echo, int]) -> None:
    """A client that sends its last message and closes at once: both frames come in one read,
    and the message, said before the close, is delivered (RFC 6455: only data after a close
    frame may be dropped). It used to be dropped because the read also moved the state on."""
    handler, port = echo
    client = await RawClient.connect(port)
    last = Frame(Opcode.TEXT, b"done").serialize(mask=True)
    close = Frame(Opcode.CLOSE, Close(1000, "bye").serialize()).serialize(mask=True)
    client.writer.write(last + close)  # one write: one read on the server
    opcode, data = await client.recv()  # no echo: the server had answered the close already
    assert opcode is Opcode.CLOSE and Close.parse(data) == Close(1000, "bye")
    await asyncio.wait_for(handler.gone.wait(), 5)
    assert handler.texts == ["done"]


async def test_bad_frames_close_with_the_right_code(echo: tuple[Echo, int]) -> None:
    handler, port = echo
    too_big = await RawClient.connect(port)
    too_big.send(Opcode.TEXT, b"x" * 2000)  # max_size is 1024 here
    opcode, data = await too_big.recv()
    assert opcode is Opcode.CLOSE and Close.parse(data).code == 1009
    bad_utf8 = await RawClient.connect(port)
    bad_utf8.send(Opcode.TEXT, b"\xff\xfe")
    opcode, data = await bad_utf8.recv()
    assert opcode is Opcode.CLOSE and Close.parse(data).code == 1007
    assert handler.texts == []


async def test_a_client_that_stops_reading_is_cut_off_with_1008(echo: tuple[Echo, int]) -> None:
    handler, port = echo
    client = await RawClient.connect(port, receive_buffer=4096)
    client.send(Opcode.TEXT, b"flood 200")  # 12.5 MB for a client that reads nothing yet
    for _ in range(100):
        if handler.full:
            break
        await asyncio.sleep(0.02)
    [ws] = handler.full
    assert ws.buffered_bytes <= 256 * 1024 + 64  # the limit (and a close frame), not 12.5 MB
    frames = 0
    while (opcode := (await client.recv())[0]) is Opcode.TEXT:  # what was queued, then...
        frames += 1
    assert opcode is Opcode.CLOSE and 0 < frames < 200
    await asyncio.wait_for(handler.gone.wait(), 10)


async def test_a_reset_in_the_middle_of_a_frame_ends_the_connection_once(
        echo: tuple[Echo, int]) -> None:
    handler, port = echo
    client = await RawClient.connect(port)
    frame = Frame(Opcode.TEXT, b"x" * 500).serialize(mask=True)
    client.writer.write(frame[:100])  # half a frame...
    await client.writer.drain()
    sock = client.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.writer.transport.abort()  # ...then a TCP reset
    await asyncio.wait_for(handler.gone.wait(), 5)
    assert len(handler.closed) == 1 and handler.texts == []
    assert handler.closed[0].close_code == 1006
