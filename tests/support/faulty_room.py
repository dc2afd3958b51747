"""A room that raises in the callback its options name, to test supervision in any mode."""

from typing import Any

from membrane_rtc import AuthData, Message, Room


class FaultyRoom(Room):
    """Options: ``{"raise_in": "on_init" | "on_join" | "on_leave" | "on_forward"}``; with
    ``on_forward`` only messages whose event is ``"boom"`` raise."""

    def on_init(self, options: Any) -> None:
        self.raise_in = (options or {}).get("raise_in")
        if self.raise_in == "on_init":
            raise RuntimeError("on_init failure")

    def on_join(self, auth: AuthData) -> None:
        if self.raise_in == "on_join" and auth.credentials.get("trigger"):
            raise RuntimeError("on_join failure")

    def on_leave(self, peer_id: str) -> None:
        if self.raise_in == "on_leave":
            raise RuntimeError("on_leave failure")

    def on_forward(self, message: Message) -> Message | None:
        if self.raise_in == "on_forward" and message.event == "boom":
            raise RuntimeError("on_forward failure")
        return message
