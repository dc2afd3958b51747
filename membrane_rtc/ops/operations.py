"""The operators' operations, in one table: the admin actor (which requests it takes), the
embedded admin channel (how a request and its answer travel), the admin client and
``membrane-rtc admin`` (its command line) derive from it.

Adding an operation is one row here (its request message, what it answers, its command line),
the request class in :mod:`membrane_rtc.runtime.messages.admin`, and its handler in the
supervisor or the room actor; a Python method on ``Server`` (``server_operations.py``) and
the admin client if it should have one there too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..config import DEFAULT_ROOM_CLASS
from ..runtime.messages import Request
from ..runtime.messages.admin import (CreateRoom, Drain, KickPeer, ListHosts, ListPeers, ListRooms,
                                      RestartRoom, StopRoom)
from ..supervision import HostInfo, PeerInfo, RoomInfo

__all__ = ["Option", "Operation", "OPERATIONS", "BY_NAME", "ARGUMENT_HELP", "operation_of",
           "request_fields"]

#: Fields of every Request that belong to the actor plumbing, not to the operation.
ENVELOPE_FIELDS = ("request_id", "reply_to")


@dataclass(frozen=True)
class Option:
    """A request field the command line takes as ``--flag VALUE`` (the others are positional).

    ``kind`` says how the text becomes the value: ``spec`` (a class SPEC, made absolute so
    actors in other processes find the same file), ``json``, or ``text``.
    """

    flag: str
    default: str
    kind: str = "text"
    metavar: str = "VALUE"
    help: str | None = None


@dataclass(frozen=True)
class Operation:
    """One operation: its name (``membrane-rtc admin NAME``), its request, its answer."""

    name: str
    request: type[Request]
    help: str
    #: What the answer's value is (None: nothing, just done).
    result: Any = None
    #: Fields given as options on the command line, by field name.
    options: dict[str, Option] = field(default_factory=dict)


OPERATIONS: tuple[Operation, ...] = (
    Operation("list", ListRooms, "list rooms: name, state, peers, restarts, pid, class",
              list[RoomInfo]),
    Operation("create", CreateRoom, "create a room", options={
        "room_class": Option("--room-class", DEFAULT_ROOM_CLASS, "spec", "SPEC",
                             "its Room class, module:Class or file.py:Class (default "
                             f"{DEFAULT_ROOM_CLASS})"),
        "options": Option("--room-options", "null", "json", "JSON",
                          "custom options for its on_init, as JSON (default null)")}),
    Operation("stop", StopRoom, "stop a room (not restarted)"),
    Operation("restart", RestartRoom, "restart a room with a fresh on_init"),
    Operation("peers", ListPeers, "list a room's peers", list[PeerInfo]),
    Operation("hosts", ListHosts, "list the room hosts and their rooms", list[HostInfo]),
    Operation("kick", KickPeer, "disconnect a peer"),
    Operation("drain", Drain, "drain the gateways, then stop: new clients get HTTP 503, the "
              "others are closed with 1012 after --drain-timeout"),
)

BY_NAME = {operation.name: operation for operation in OPERATIONS}

#: The help of the operations' positional arguments, by request field.
ARGUMENT_HELP = {
    "name": "the room's name",
    "room": "the room's name",
    "peer_id": "the peer's id (admin peers ROOM lists them)",
}


def operation_of(request: Request) -> Operation:
    """The operation a request belongs to (ValueError for any other request)."""
    for operation in OPERATIONS:
        if type(request) is operation.request:
            return operation
    raise ValueError(f"{type(request).__name__} is not an admin operation")


def request_fields(operation: Operation) -> list[str]:
    """The fields an operation's request carries (its arguments), in order."""
    return [f.name for f in dataclasses.fields(operation.request)
            if f.name not in ENVELOPE_FIELDS]
