"""One websocket connection on asyncio: websockets' sans-I/O ``ServerProtocol`` driven from a
lean ``asyncio.Protocol``.

``websockets`` parses and builds every byte (HTTP handshake, frames, close handshake, size
checks; its sans-I/O core leaves text undecoded, so this adapter decodes it, 1007 on bad
UTF-8); otherwise this adapter only moves bytes and events, the way its sans-I/O guide
describes: feed what arrives to ``receive_data``, act on ``events_received``, write
``data_to_send``. It is lean where its own asyncio adapter is general: no task and no future
per connection or per message, and everything one connection is to send within one turn of
the event loop goes out in one ``transport.write``.

What the connection means is the :class:`Handler`'s business (the gateway): it answers the
HTTP request, now or later, and gets each complete text message.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol, cast

from websockets.exceptions import InvalidMessage
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

__all__ = ["Handler", "WebSocket"]

#: websockets logs every connection opened and closed at INFO; the gateway logs its own
#: structured line per connection instead, so this logger only speaks of problems.
_wire_log = logging.getLogger(__name__)
_wire_log.setLevel(logging.WARNING)

#: Seconds the closing handshake may take before the TCP connection is dropped.
CLOSE_TIMEOUT = 5.0


class Handler(Protocol):
    """What a :class:`WebSocket` tells the application (the gateway implements it)."""

    def connection_opened(self, ws: WebSocket) -> None:
        """A TCP connection arrived (nothing read yet): the application may count it, or
        answer it at once with :meth:`WebSocket.reject`."""

    def request_timed_out(self, ws: WebSocket) -> None:
        """The client did not send a whole HTTP request within the handshake timeout."""

    def bad_request(self, ws: WebSocket, status: int, reason: str) -> None:
        """What arrived is no HTTP request websockets can parse: it was answered with
        ``status`` and the connection ends (the application only logs and counts it)."""

    def handshake(self, ws: WebSocket, request: Request) -> None:
        """An HTTP request arrived: answer it now or later, with :meth:`WebSocket.upgrade`
        or :meth:`WebSocket.respond`."""

    def text_received(self, ws: WebSocket, text: str) -> None:
        """A complete text message (fragments joined, UTF-8 checked)."""

    def binary_received(self, ws: WebSocket) -> None:
        """A complete binary message (its content is not kept)."""

    def connection_closed(self, ws: WebSocket) -> None:
        """The TCP connection is gone; called once per connection, upgraded or not."""

    def write_buffer_full(self, ws: WebSocket) -> None:
        """More is waiting to be written than ``max_buffered`` allows: a slow reader."""


class WebSocket(asyncio.Protocol):
    """One client connection: HTTP request, then (if upgraded) websocket messages."""

    __slots__ = ("handler", "protocol", "transport", "request", "remote_address",
                 "client_address", "context", "max_buffered", "handshake_timeout",
                 "_upgrade_response", "response_status", "_unflushed", "_fragments",
                 "_flush_scheduled", "_close_timer", "_request_timer", "_closed",
                 "awaiting_pong", "_loop")

    def __init__(self, handler: Handler, max_size: int | None, max_buffered: int = 0,
                 handshake_timeout: float = 0) -> None:
        self.handler = handler
        self.protocol = ServerProtocol(max_size=max_size, logger=_wire_log)
        self.transport: asyncio.Transport | None = None
        #: The HTTP request, kept until it is answered.
        self.request: Request | None = None
        #: The TCP peer's address.
        self.remote_address: tuple[str, int] | None = None
        #: The client's address: the TCP peer's, unless the application learnt better (a
        #: trusted reverse proxy named the client).
        self.client_address: tuple[str, int] | None = None
        #: The application's own state for this connection (the gateway's peer).
        self.context: Any = None
        #: Bytes that may wait in the transport's buffer before write_buffer_full (0: any).
        self.max_buffered = max_buffered
        #: Pings sent and not yet answered (keepalive).
        self.awaiting_pong = False
        #: Seconds the client may take to send its whole HTTP request (0: no limit).
        self.handshake_timeout = handshake_timeout
        #: The 101 answer :meth:`validate_upgrade` prepared, sent by :meth:`upgrade`.
        self._upgrade_response: Response | None = None
        #: The status of the HTTP answer sent, once sent.
        self.response_status: int | None = None
        self._request_timer: asyncio.TimerHandle | None = None
        self._unflushed = 0  # bytes sent since the last flush
        self._fragments: list[bytes] | None = None
        self._flush_scheduled = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- state -------------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        """Upgraded and not closing: messages may be sent."""
        return self.protocol.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        """The close code received, else the one sent (1006 if none was exchanged)."""
        return self.protocol.close_code

    @property
    def close_reason(self) -> str | None:
        return self.protocol.close_reason

    @property
    def close_sent_code(self) -> int | None:
        """The code of the close frame this side sent, if any (1009: a frame too big)."""
        sent = self.protocol.close_sent
        return sent.code if sent is not None else None

    @property
    def client_closed(self) -> bool:
        """The client started the closing handshake: it left on purpose."""
        return self.protocol.close_rcvd is not None and \
            self.protocol.close_rcvd_then_sent is not False

    @property
    def buffered_bytes(self) -> int:
        """Bytes written but not yet taken by the kernel (a slow reader's backlog)."""
        return self.transport.get_write_buffer_size() if self.transport else 0

    # -- the application's calls -------------------------------------------------------------

    def validate_upgrade(self) -> bool:
        """Check that the pending request is a valid websocket handshake, without answering
        it yet (:meth:`upgrade` does, later); if it is not, answer it now with the HTTP error
        websockets chose (400, 426...) and return False."""
        assert self.request is not None, "no request to answer"
        response = self.protocol.accept(self.request)
        if response.status_code != 101:
            self.respond(response)
            return False
        self._upgrade_response = response
        return True

    def upgrade(self) -> bool:
        """Accept the pending request as a websocket (101), validating it first unless
        :meth:`validate_upgrade` did; False if it was answered with an HTTP error instead."""
        if self._upgrade_response is None and not self.validate_upgrade():
            return False
        assert self._upgrade_response is not None
        response, self._upgrade_response = self._upgrade_response, None
        self.respond(response)
        return True

    def reject(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        """Answer the pending request with an HTTP error."""
        response = self.protocol.reject(status, text)
        for name, value in (headers or {}).items():
            response.headers[name] = value
        self.respond(response)

    def respond(self, response: Response) -> None:
        """Answer the pending request with ``response`` (a 101 from :meth:`upgrade`, or
        anything else, after which the connection ends)."""
        self.request = None
        self.response_status = response.status_code
        self.protocol.send_response(response)
        self._schedule_flush()

    def send_text(self, data: bytes) -> None:
        """Send an encoded text message (dropped once the connection is closing). One that
        would take what waits for this client past ``max_buffered`` is not sent: the
        handler hears of a slow reader instead."""
        if self.protocol.state is not State.OPEN:
            return
        if self.max_buffered:
            self._unflushed += len(data)
            if self._unflushed + self.buffered_bytes > self.max_buffered:
                self.handler.write_buffer_full(self)
                return
        self.protocol.send_text(data)
        self._schedule_flush()

    def ping(self) -> None:
        """Send a keepalive ping; the pong clears :attr:`awaiting_pong`."""
        if self.protocol.state is State.OPEN:
            self.awaiting_pong = True
            self.protocol.send_ping(b"")
            self._schedule_flush()

    def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the closing handshake (after what was sent before); the TCP connection is
        dropped if the client does not answer within CLOSE_TIMEOUT."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self._schedule_flush()
            self._expect_close()

    def abort(self) -> None:
        """Drop the TCP connection now, without a word (a client that never finished its
        request)."""
        if self.transport is not None and not self._closed:
            self.transport.abort()

    def fail(self, code: int, reason: str) -> None:
        """Close at once, without waiting for the client's answer (a client too slow to read
        gets the close frame after what it has not read yet)."""
        if self.protocol.state is State.OPEN:
            self.protocol.fail(code, reason)
            self._schedule_flush()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is one, though not an asyncio.Transport subclass).
        self.transport = stream = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        peer = stream.get_extra_info("peername")
        self.remote_address = self.client_address = (peer[0], peer[1]) if peer else None
        if self.handshake_timeout:
            self._request_timer = self._loop.call_later(self.handshake_timeout,
                                                        self._request_overdue)
        self.handler.connection_opened(self)

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._receive()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._receive()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed:
            return
        self._closed = True
        for timer in (self._close_timer, self._request_timer):
            if timer is not None:
                timer.cancel()
        if self.protocol.state is not State.CLOSED:
            self.protocol.receive_eof()  # the connection is gone: so is the protocol
            self.protocol.events_received()
        self.handler.connection_closed(self)

    # -- internals ---------------------------------------------------------------------------

    def _receive(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self.request = event
                if self._request_timer is not None:
                    self._request_timer.cancel()
                    self._request_timer = None
                self.handler.handshake(self, event)
            elif isinstance(event, Frame):
                self._frame(event)
        problem = self.protocol.handshake_exc
        if problem is not None and self.request is None and self.response_status is None:
            self._unparsable_request(problem)
        self._schedule_flush()  # pongs, close frames, HTTP errors the protocol answered
        if self.protocol.close_expected():
            self._expect_close()

    def _unparsable_request(self, problem: Exception) -> None:
        """websockets answers a request too large itself (414, 431) but only hangs up on
        one it cannot parse at all: answer that one with 400 first, then tell the handler."""
        if isinstance(problem, InvalidMessage):
            self.response_status = 400
            if self.transport is not None:
                self.transport.write(self.protocol.reject(400, "Bad Request\n").serialize())
        else:
            # RequestLineTooLong (websockets 15+) is answered 414, too many or too long
            # headers 431.
            self.response_status = 414 if type(problem).__name__ == "RequestLineTooLong" \
                else 431
        self.handler.bad_request(self, self.response_status, str(problem))

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._message(opcode, bytes(frame.data))
            else:
                self._fragments = [opcode.value.to_bytes(1, "big"), bytes(frame.data)]
        elif opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                first, *parts = self._fragments
                self._fragments = None
                self._message(Opcode(first[0]), b"".join(parts))
        elif opcode is Opcode.PONG:
            self.awaiting_pong = False
        # PING: websockets queued the pong; CLOSE: it answered; both go out with the flush.

    def _message(self, opcode: Opcode, data: bytes) -> None:
        protocol = self.protocol
        if protocol.close_sent is not None and not protocol.close_rcvd_then_sent:
            return  # we closed first: what the client still says is dropped
        # Otherwise it came before the client's own close frame (in the same read, so the
        # state has moved on already): said while open, it is delivered (RFC 6455).
        if opcode is Opcode.BINARY:
            self.handler.binary_received(self)
            return
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            self.protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            return
        self.handler.text_received(self, text)

    def _schedule_flush(self) -> None:
        """Write at the end of this loop turn: one write for all that was queued meanwhile."""
        if not self._flush_scheduled and self._loop is not None and not self._closed:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._unflushed = 0
        transport = self.transport
        if transport is None or self._closed:
            return
        chunks = self.protocol.data_to_send()
        if not chunks:
            return
        eof = chunks[-1] == b""  # websockets' sign to end the TCP connection
        data = b"".join(chunks)
        if data:
            transport.write(data)
        if eof:
            transport.close()  # after the buffered data is written
            self._expect_close()

    def _request_overdue(self) -> None:
        self._request_timer = None
        if self.request is None and self.response_status is None and not self._closed:
            self.handler.request_timed_out(self)

    def _expect_close(self) -> None:
        """The connection should end soon; if it has not within CLOSE_TIMEOUT, drop it."""
        if self._close_timer is None and self._loop is not None and not self._closed:
            self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.abort()
