"""The tutorial's room: a lobby that greets whoever comes in and holds a few people at most."""

from membrane_rtc import AuthData, JoinRefused, Message, Room


class Lobby(Room):
    def on_init(self, options):
        options = options or {}
        self.max_peers = options.get("max_peers", 3)
        self.peers = []

    def on_join(self, auth: AuthData):
        if len(self.peers) >= self.max_peers:
            raise JoinRefused("room_is_full")
        if self.peers:
            text = f"Welcome to {self.name}! {len(self.peers)} here before you."
        else:
            text = f"Welcome to {self.name}! You are the first."
        self.send(Message("greeting", {"text": text}, to=[auth.peer_id]))
        self.peers.append(auth.peer_id)

    def on_leave(self, peer_id):
        self.peers.remove(peer_id)
