"""A room and a peer whose callbacks hang on request, to test the callback time limit."""

import time
from typing import Any

from membrane_rtc import AuthData, Message, Peer, PeerContext, Room


def hang(how: str) -> None:
    """``spin``: busy in Python code; ``sleep``: blocked inside C (time.sleep). Bounded at 60 s
    so that a broken watchdog fails the test instead of hanging the suite."""
    deadline = time.monotonic() + 60
    if how == "sleep":
        time.sleep(60)
    while time.monotonic() < deadline:
        pass


class HangingRoom(Room):
    """``on_forward`` of a message whose event is ``spin`` or ``sleep`` hangs that way; with
    options ``{"terminate": "spin"}`` (or ``"sleep"``), ``on_terminate`` hangs."""

    def on_init(self, options: Any) -> None:
        self.hang_in_terminate = (options or {}).get("terminate")

    def on_terminate(self) -> None:
        if self.hang_in_terminate:
            hang(self.hang_in_terminate)

    def on_forward(self, message: Message) -> Message | None:
        if message.event in ("spin", "sleep"):
            hang(message.event)
        return message


class HangingPeer(Peer):
    """``on_init`` hangs (spins) when the client passes ``?hang=1``; ``on_receive`` hangs
    (spins) on a message whose event is ``spin``."""

    def on_init(self, context: PeerContext, auth: AuthData, options: Any) -> None:
        if auth.credentials.get("hang"):
            hang("spin")

    def on_receive(self, message: Message, context: PeerContext) -> Message | None:
        if message.event == "spin":
            hang("spin")
        return message
