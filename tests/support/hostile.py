"""Rooms and peers for the runtime's hostile-input tests (tests/test_hostile_runtime.py)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from membrane_rtc import Message, Peer, PeerRequest, Room

#: How long SlowRoom's on_forward takes (seconds): a room busy enough that a flood outruns it.
FORWARD_TIME = 0.005


class SlowRoom(Room):
    """Forwards as the default room does, taking FORWARD_TIME per message. A message whose
    event is ``poison`` comes out with data the encoder cannot serialise; one whose event is
    ``exit`` raises SystemExit (what ``sys.exit()`` in a room's code does)."""

    def on_forward(self, message: Message) -> Message | None:
        if message.event == "poison":
            message.data = object()
            return message
        if message.event == "exit":
            sys.exit(3)
        time.sleep(FORWARD_TIME)
        return message


class UnpicklablePeer(Peer):
    """``?unpicklable=1`` gives the connection metadata that pickle cannot take: the gateway's
    ConnectPeer then cannot cross to the actors' processes (multi-process mode)."""

    @classmethod
    def parse_request(cls, request: PeerRequest) -> tuple[dict[str, str], Any, str]:
        credentials, metadata, room = super().parse_request(request)
        if credentials.get("unpicklable"):
            metadata = {"lock": threading.Lock()}
        return credentials, metadata, room
