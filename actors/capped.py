"""A room with a cap on its peers: ``--room-options '{"max_peers": 2}'``."""

from typing import Any

from membrane_rtc import AuthData, JoinRefused, Room


class CappedRoom(Room):
    """Refuses a join with reason ``"room_is_full"`` once ``max_peers`` peers are in."""

    max_peers = 2

    def on_init(self, options: Any) -> None:
        self.max_peers = int((options or {}).get("max_peers", self.max_peers))
        self.peers: set[str] = set()

    def on_join(self, auth: AuthData) -> None:
        if len(self.peers) >= self.max_peers:
            raise JoinRefused("room_is_full")
        self.peers.add(auth.peer_id)

    def on_leave(self, peer_id: str) -> None:
        self.peers.discard(peer_id)
