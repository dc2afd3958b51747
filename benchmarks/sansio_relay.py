"""The bare relay of ``benchmarks/relay.py`` on websockets' sans-I/O core: the Python limit.

Same URL shape, frames and behaviour (rooms are dicts, every message parsed, stamped with
its sender and re-encoded), but no asyncio adapter: an ``asyncio.Protocol`` feeds bytes to
websockets' ``ServerProtocol`` and writes what it has to send once per connection per loop
turn, as membrane-rtc's gateway does - with no actors, limits or metrics. Deliberately shares
no code with membrane_rtc. ``python -m benchmarks.sansio_relay PORT [asyncio|uvloop]``
serves ws://127.0.0.1:PORT/webrtc/<room>, on uvloop when it is installed (as
``membrane-rtc serve`` embedded does) unless told otherwise.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Callable

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

#: room name -> peer id -> connection
rooms: dict[str, dict[str, "Connection"]] = {}


class Connection(asyncio.Protocol):
    """One client: bytes in through ``ServerProtocol``, events out to the room."""

    def __init__(self) -> None:
        self.protocol = ServerProtocol(max_size=65536)
        self.transport: asyncio.Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.room: dict[str, Connection] | None = None
        self.me = ""
        self.fragments: list[bytes] = []
        self.flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self.handle_events()

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        self.handle_events()  # returning None: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self.room is not None:
            del self.room[self.me]
            self.room = None
        self.transport = None

    def handle_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self.handshake(event)
            elif isinstance(event, Frame):
                self.frame(event)
        self.schedule_flush()  # pongs, close frames, HTTP errors websockets answered

    def handshake(self, request: Request) -> None:
        response = self.protocol.accept(request)
        self.protocol.send_response(response)
        if response.status_code != 101:
            return
        self.me = str(uuid.uuid4())
        self.send(json.dumps({"event": "authenticated", "data": {"peer_id": self.me},
                              "from": None, "to": [self.me]}))
        self.room = rooms.setdefault(request.path.rsplit("/", 1)[-1], {})
        self.room[self.me] = self

    def frame(self, frame: Frame) -> None:
        # Text and binary alike, as relay.py's json.loads takes either.
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            self.fragments.append(bytes(frame.data))
            if frame.fin:
                text, self.fragments = b"".join(self.fragments), []
                self.forward(text)
        # PING: websockets queued the pong; CLOSE: it answered; both go out with the flush.

    def forward(self, text: bytes) -> None:
        room = self.room
        if room is None or self.protocol.state is not State.OPEN:
            return
        message = json.loads(text)
        message["from"] = self.me
        to = message.get("to")
        targets = [p for p in room if p != self.me] if to == "all" else (to or [])
        frame = json.dumps(message)
        for peer in targets:
            if (connection := room.get(peer)) is not None:
                connection.send(frame)

    def send(self, text: str) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_text(text.encode())
            self.schedule_flush()

    def schedule_flush(self) -> None:
        """Write at the end of this loop turn: one write for all queued meanwhile."""
        if not self.flush_scheduled and self.transport is not None and self.loop is not None:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        chunks = self.protocol.data_to_send()
        if self.transport is None or not chunks:
            return
        self.transport.write(b"".join(chunks))
        if chunks[-1] == b"":  # websockets' sign to end the TCP connection
            self.transport.close()


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Connection, "127.0.0.1", port)
    kind = "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
    print(f"sans-I/O relay serving ws://127.0.0.1:{port}/webrtc/<room> on {kind}", flush=True)
    async with server:
        await server.serve_forever()


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory if chosen or (by default) installed, else None (asyncio's)."""
    if choice != "asyncio":
        try:
            import uvloop
            return uvloop.new_event_loop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit("uvloop is not installed") from None
    return None


if __name__ == "__main__":
    factory = loop_factory(sys.argv[2] if len(sys.argv) > 2 else "auto")
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main(int(sys.argv[1])))
