"""A room with a cap on its peers: ``--room-options '{"max_peers": 2}'``."""

from typing import Any

from membrane_rtc import AuthData, JoinRefused, Room


class CappedRoom(Room):
    """Refuses a join with reason ``"room_is_full"`` once ``max_peers`` peers are in."""

    max_peers = 2

    @classmethod
    def check_options(cls, options: Any) -> None:
        """``null`` or ``{"max_peers": N}``, N a whole number of at least 1."""
        if options is None:
            return
        if not isinstance(options, dict) or set(options) - {"max_peers"}:
            raise ValueError(f'CappedRoom takes {{"max_peers": N}}, got {options!r}')
        peers = options.get("max_peers", cls.max_peers)
        if isinstance(peers, bool) or not isinstance(peers, int) or peers < 1:
            raise ValueError(f"CappedRoom: max_peers must be a whole number of at least 1, "
                             f"not {peers!r}")

    def on_init(self, options: Any) -> None:
        self.max_peers = int((options or {}).get("max_peers", self.max_peers))
        self.peers: set[str] = set()

    def on_join(self, auth: AuthData) -> None:
        if len(self.peers) >= self.max_peers:
            raise JoinRefused("room_is_full")
        self.peers.add(auth.peer_id)

    def on_leave(self, peer_id: str) -> None:
        self.peers.discard(peer_id)
