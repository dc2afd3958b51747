"""A moderated room (how-to: moderate): a guest list, a cap, and messages checked in transit."""

from membrane_rtc import AuthData, JoinRefused, Message, Room

SIGNALING = {"offer", "answer", "candidate"}


class ModeratedRoom(Room):
    def on_init(self, options):
        options = options or {}
        self.guests = set(options.get("guests", []))  # empty: anyone may come
        self.max_peers = options.get("max_peers", 8)
        self.peers = set()

    def on_join(self, auth: AuthData):
        user = auth.credentials.get("user", "")
        if self.guests and user not in self.guests:
            raise JoinRefused("not_on_the_guest_list")
        if len(self.peers) >= self.max_peers:
            raise JoinRefused("room_is_full")
        self.peers.add(auth.peer_id)

    def on_leave(self, peer_id):
        self.peers.discard(peer_id)

    def on_forward(self, message: Message):
        if message.from_ is None or message.event == "joined":
            return message  # the room's own: joined/left and what self.send sends

        if message.event not in SIGNALING:
            self.send(Message("error", {"description": "Not allowed",
                                        "details": message.event}, to=[message.from_]))
            return None  # dropped: nobody else sees it
        if message.event != "candidate" and message.to == "all":
            return Message(message.event, message.data, message.from_, None)  # not broadcast
        return message
