"""The presence room, plus a crash on demand: a ``"boom"`` message raises in ``on_forward``.
For the parity test of the session core (tests/test_session_parity.py)."""

from __future__ import annotations

from actors.presence import PresenceRoom
from membrane_rtc import Message


class SessionRoom(PresenceRoom):
    def on_forward(self, message: Message) -> Message | None:
        if message.event == "boom":
            raise RuntimeError("boom")
        return message
