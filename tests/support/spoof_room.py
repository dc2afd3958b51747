"""A buggy room, to show that the shipped clients hold out against one. Never write a room
like this: it lets peers speak as the server, and name themselves.

- Relay: a peer's ``{"event": "relay", "data": {"event": E, "data": D}, "to": T}`` goes out as
  event ``E`` with data ``D``, from that peer, to ``T``. The server refuses a client frame named
  ``authenticated``, ``joined``, ``left`` or ``error``; this room makes one anyway.
- Nicknames: a peer that joins with ``?nick=NAME`` is shown to the others as NAME instead of
  its peer id (in ``from``, in ``joined``/``left``, and as an addressee): a name the peer chose,
  markup included, reaches the other clients as a peer id, in frames that pass their checks.
"""

from __future__ import annotations

from typing import Any

from membrane_rtc import ALL, AuthData, Message, Room


class SpoofRoom(Room):
    def on_init(self, options: Any) -> None:
        self.members: set[str] = set()
        self.nicks: dict[str, str] = {}  # peer id -> nick
        self.ids: dict[str, str] = {}    # nick -> peer id

    def on_join(self, auth: AuthData) -> None:
        self.members.add(auth.peer_id)
        if nick := auth.credentials.get("nick"):
            self.nicks[auth.peer_id] = nick
            self.ids[nick] = auth.peer_id

    def on_leave(self, peer_id: str) -> None:
        # Its nick stays known: the room's "left" for it passes on_forward after this.
        self.members.discard(peer_id)

    def on_forward(self, message: Message) -> Message | None:
        if message.event in ("joined", "left"):  # the room's own: peers cannot send these
            message.data = {**message.data, "peer_id": self._shown(message.data["peer_id"])}
        if message.event == "relay" and isinstance(message.data, dict):
            message = Message(str(message.data.get("event")), message.data.get("data"),
                              message.from_, message.to)
        sender = message.from_
        if sender is None:
            return message
        message.from_ = self._shown(sender)
        if message.to == ALL:  # "all but the sender" goes by id, which from no longer is
            message.to = [p for p in self.members if p != sender]
        elif isinstance(message.to, list):
            message.to = [self.ids.get(p, p) for p in message.to]
        return message

    def _shown(self, peer_id: str) -> str:
        return self.nicks.get(peer_id, peer_id)
