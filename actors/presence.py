"""A room that tells its peers when one of them drops and when it is back (``peer_away`` /
``peer_back``, from the room), so that their pages can show "reconnecting..." on its tile."""

from typing import Any

from membrane_rtc import AuthData, Message, Room


class PresenceRoom(Room):
    """The default room, plus presence: ``{"event": "peer_away", "data": {"peer_id": ID}}``
    to the others when ID's connection drops, ``peer_back`` when it resumes."""

    @classmethod
    def check_options(cls, options: Any) -> None:
        """It takes none: some given is a mistake (the wrong class, most likely)."""
        if options not in (None, {}):
            raise ValueError(f"PresenceRoom takes no options, got {options!r}")

    def on_init(self, options: Any) -> None:
        self.peers: set[str] = set()

    def on_join(self, auth: AuthData) -> None:
        self.peers.add(auth.peer_id)

    def on_leave(self, peer_id: str) -> None:
        self.peers.discard(peer_id)

    def _tell_the_others(self, event: str, peer_id: str) -> None:
        others = sorted(self.peers - {peer_id})
        if others:
            self.send(Message(event, {"peer_id": peer_id}, to=others))

    def on_disconnect(self, peer_id: str) -> None:
        self._tell_the_others("peer_away", peer_id)

    def on_resume(self, peer_id: str) -> None:
        self._tell_the_others("peer_back", peer_id)
