"""The wire protocol: message structs, JSON decode/encode and the built-in messages.

Pure code with no I/O, like the protocol core of ``websockets``: the gateway and the actors call
it, tests exercise it without sockets. Frames are those of Membrane's ``webrtc-server``: every
server-to-client frame is a JSON object with the four keys ``event``, ``data``, ``from``, ``to``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Literal, Union

import msgspec

__all__ = [
    "ALL",
    "Message",
    "ProtocolError",
    "InvalidJSON",
    "InvalidMessage",
    "decode_client_frame",
    "decode_server_frame",
    "encode",
    "authenticated",
    "joined",
    "left",
    "error",
    "PING",
    "PONG",
    "INVALID_JSON",
    "INVALID_MESSAGE",
    "GATEWAY_ANSWERS",
    "received_after",
    "COULD_NOT_JOIN_ROOM",
    "ROOM_CLOSED",
    "NO_SUCH_PEER",
    "CloseCode",
    "SERVER_EVENTS",
    "MAX_DEPTH",
    "MAX_ADDRESSEES",
]

#: The ``to`` value that addresses every peer of the room but the sender.
ALL: Literal["all"] = "all"

#: A client may send this literal text frame to check the connection; the server answers PONG.
PING = "ping"
PONG = "pong"

# Error descriptions, exactly as Membrane's webrtc-server words them (plus NO_SUCH_PEER, ours).
INVALID_JSON = "Invalid JSON"
INVALID_MESSAGE = "Invalid message"
COULD_NOT_JOIN_ROOM = "Could not join room"
ROOM_CLOSED = "Room closed"
NO_SUCH_PEER = "No such peer"
#: The ``error`` descriptions the gateway itself answers a client's malformed frame with: not
#: frames of the session (the room never numbered them), so a client does not count them.
GATEWAY_ANSWERS = frozenset({INVALID_JSON, INVALID_MESSAGE})

#: The events only the server sends. A client frame that uses one is refused ("Invalid
#: message"): a peer must not pass itself off as the server to its room-mates.
SERVER_EVENTS = frozenset({"authenticated", "joined", "left", "error"})
#: How deep arrays and objects may nest in a client frame (the frame itself is depth 1). A
#: signaling message needs a few levels; thousands would exhaust the stack of whatever
#: handles the message next (pickle between processes fails past ~480).
MAX_DEPTH = 32
#: How many peer ids one ``to`` list may name (duplicates are dropped first): one frame must
#: not turn into a thousand sends. More than this: use ``"all"``.
MAX_ADDRESSEES = 1000

class CloseCode(IntEnum):
    """The websocket close codes the server sends (RFC 6455, section 7.4.1)."""

    #: Closed on purpose: left, kicked, idle, room closed, join refused.
    NORMAL = 1000
    #: The server is shutting down.
    GOING_AWAY = 1001
    #: The client broke the websocket protocol (sent by websockets itself).
    PROTOCOL_ERROR = 1002
    #: A text frame that is not UTF-8 (the websocket adapter decodes text and sends it).
    INVALID_DATA = 1007
    #: A client too slow to read what it is sent (its outbound queue passed the limit).
    POLICY_VIOLATION = 1008
    #: A frame over the size limit.
    MESSAGE_TOO_BIG = 1009
    #: The server failed this connection (a ``Peer`` callback raised).
    INTERNAL_ERROR = 1011
    #: The server is restarting (a drain ended): reconnect, resuming, elsewhere or soon.
    SERVICE_RESTART = 1012


Addressees = Union[list[str], Literal["all"], None]


class Message(msgspec.Struct, rename={"from_": "from"}):
    """One signaling message: ``event`` names it, ``data`` is any JSON value.

    ``from_`` (wire key ``from``) is the sender's peer id, set by the server, ``None`` for the
    room's own messages. ``to`` is a list of peer ids, ``"all"`` (everyone but the sender) or
    ``None``.
    """

    event: str
    data: Any = None
    from_: str | None = None
    to: Addressees = None


class ProtocolError(ValueError):
    """A client frame the protocol cannot accept; ``description`` is the wire error text."""

    description: str = INVALID_MESSAGE

    def __init__(self, details: Any = None) -> None:
        super().__init__(self.description if details is None else f"{self.description}: {details}")
        self.details = details

    def to_message(self, peer_id: str | None) -> Message:
        """The ``error`` frame that answers this bad input."""
        return error(self.description, self.details, to=peer_id)


class InvalidJSON(ProtocolError):
    """The frame is not JSON at all; ``details`` is the raw text, as Membrane sends it."""

    description = INVALID_JSON


class InvalidMessage(ProtocolError):
    """The frame is JSON but not a message object (no string ``event``, or a bad ``to``)."""

    description = INVALID_MESSAGE


def _nests_deeper(value: Any, levels: int) -> bool:
    """Whether ``value`` holds arrays/objects more than ``levels`` deep (scalars are 0 deep).

    Walked after decoding (msgspec has no depth limit of its own, and fails cleanly only past
    ~1,000): a signaling message's data is a flat object or two, so this is a few checks per
    message, where scanning the text for brackets cost more than decoding it.
    """
    kind = type(value)  # exactly dict or list: what msgspec decodes JSON into
    if kind is dict:
        children: Any = value.values()
    elif kind is list:
        children = value
    else:
        return False
    if levels == 0:
        return True
    for child in children:  # a plain loop: a generator costs more than the walk itself
        kind = type(child)
        if (kind is dict or kind is list) and _nests_deeper(child, levels - 1):
            return True
    return False


class _ClientFrame(msgspec.Struct):
    """What a client may send: like Message without ``from``, which the server sets (so a
    client's ``from``, whatever its type, is ignored rather than an error)."""

    event: str
    data: Any = None
    to: Addressees = None


_client_decoder = msgspec.json.Decoder(_ClientFrame)
_decoder = msgspec.json.Decoder(Message)
_encoder = msgspec.json.Encoder()


def decode_client_frame(text: str | bytes, sender: str | None) -> Message:
    """Decode a client's text frame into a :class:`Message` sent by ``sender``.

    ``from`` is always overwritten with ``sender``: a client cannot speak for another peer,
    nor for the server (:data:`SERVER_EVENTS` are refused). Nesting deeper than
    :data:`MAX_DEPTH` and a ``to`` list of more than :data:`MAX_ADDRESSEES` ids are refused;
    an id named twice in ``to`` is kept once. Raises :class:`InvalidJSON` or
    :class:`InvalidMessage`, never anything else.
    """
    try:
        frame = _client_decoder.decode(text)
    except (msgspec.ValidationError, RecursionError):  # RecursionError: nested ~1,000 deep
        raise InvalidMessage() from None
    except msgspec.DecodeError:
        raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
        raise InvalidJSON(raw) from None
    # The frame object is one level, so its data may nest MAX_DEPTH - 1 more.
    if frame.event in SERVER_EVENTS or _nests_deeper(frame.data, MAX_DEPTH - 1):
        raise InvalidMessage()
    to = frame.to
    if isinstance(to, list) and len(to) > 1:
        if len(to) > MAX_ADDRESSEES:
            raise InvalidMessage()
        to = list(dict.fromkeys(to))  # the first of each id, in order
    return Message(frame.event, frame.data, sender, to)


def decode_server_frame(text: str | bytes) -> Message:
    """Decode a frame the server sent (clients use this); raises ProtocolError."""
    try:
        return _decoder.decode(text)
    except msgspec.ValidationError:
        raise InvalidMessage() from None
    except msgspec.DecodeError:
        raise InvalidJSON(text if isinstance(text, str) else text.decode("utf-8", "replace")) from None


def encode(message: Message) -> bytes:
    """Encode a message as the UTF-8 JSON of one text frame (always all four keys)."""
    return _encoder.encode(message)


def authenticated(peer_id: str, **extra: Any) -> Message:
    """Sent to a client once its peer has joined the room (or resumed). ``extra`` are our
    additions to Membrane's ``{"peer_id"}``: ``resume_token``, ``resumed``, ``ice_servers``,
    ``metadata`` (a client that ignores them works as before)."""
    return Message("authenticated", {"peer_id": peer_id, **extra}, None, [peer_id])


def joined(peer_id: str, metadata: Any = None) -> Message:
    """Broadcast by a room to the others when a peer joins, with its public ``metadata``
    when it has some."""
    data = {"peer_id": peer_id} if metadata is None else {"peer_id": peer_id,
                                                          "metadata": metadata}
    return Message("joined", data, peer_id, ALL)


def left(peer_id: str) -> Message:
    """Broadcast by a room to everyone left when a peer leaves."""
    return Message("left", {"peer_id": peer_id}, None, ALL)


def error(description: str, details: Any = None, *, to: str | None = None) -> Message:
    """An ``error`` frame for one client, with ``data = {description, details}``."""
    return Message("error", {"description": description, "details": details}, None,
                   [to] if to is not None else None)


def received_after(received: int, message: Message | None, first: bool = False) -> int:
    """A client's count of its session's frames (what it says as ``received`` on a resume)
    once ``message`` arrives (None: text that is no message, which does not count, as in
    ``client.js``; ``pong`` is not passed in). ``first``: the connection's ``authenticated``,
    frame 1 of a new session and none of a resumed one's. The gateway's own answers
    (:data:`GATEWAY_ANSWERS`, from ``None``) never passed the room; every other frame counts,
    even one the client then drops as a forgery."""
    if message is None:
        return received
    data = message.data
    if first:
        return received if isinstance(data, dict) and data.get("resumed") else 1
    if message.event == "error" and message.from_ is None and isinstance(data, dict) \
            and data.get("description") in GATEWAY_ANSWERS:
        return received
    return received + 1
