"""A room with timers (``Room.call_later``), for the harness and for real servers."""

from typing import Any

from membrane_rtc import AuthData, Message, Room


class Ticker(Room):
    """Sends ``tick`` (with a count) to everyone every ``every`` seconds (option, default 10)
    once someone joined; ``{"boom": true}`` makes the third tick raise; a peer that sends
    ``stop`` cancels the next tick."""

    def on_init(self, options: Any) -> None:
        self.every = float((options or {}).get("every", 10))
        self.boom = bool((options or {}).get("boom"))
        self.count = 0
        self.next_tick: int | None = None

    def on_join(self, auth: AuthData) -> None:
        if self.next_tick is None:
            self.next_tick = self.call_later(self.every, self.tick)

    def tick(self) -> None:
        self.count += 1
        if self.boom and self.count == 3:
            raise RuntimeError("the third tick")
        self.send(Message("tick", self.count, to="all"))
        self.next_tick = self.call_later(self.every, self.tick)

    def on_forward(self, message: Message) -> Message | None:
        if message.event == "stop" and self.next_tick is not None:
            self.cancel_timer(self.next_tick)
            return None
        return message
