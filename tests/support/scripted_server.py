"""A websocket server that sends each client a script of text frames, as they are, then waits
for it to leave: what a server that relays peers' frames unchecked (an older one, another
implementation) may deliver, in an order a membrane-rtc server never would (before
``authenticated``, not JSON). Not membrane-rtc: a page that connects to it must still be loaded
from a real gateway (Local Network Access lets only a loopback page reach loopback).
"""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve


class ScriptedServer:
    def __init__(self, frames: list[str]) -> None:
        self.frames = frames
        self._server: Server | None = None

    async def start(self) -> str:
        """Listen on a free loopback port; return its ``ws://`` URL."""
        self._server = await serve(self._play, "127.0.0.1", 0)
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/webrtc/scripted"

    async def _play(self, connection: ServerConnection) -> None:
        for frame in self.frames:
            await connection.send(frame)
        await connection.wait_closed()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def frame(event: str, data: Any, from_: str | None = None, to: Any = None) -> str:
    """A server-shaped frame (all four keys)."""
    return json.dumps({"event": event, "data": data, "from": from_, "to": to})


#: The script the client tests play: the victim is "victim", its room-mate "friend", and
#: "mallory" a peer whose frames the server passed on unchecked.
VICTIM, FRIEND = "victim", "friend"
#: Before the server's ``authenticated``: text that is no server frame at all, and peers
#: speaking as the server (none may let the victim in, keep it out, or name it).
BEFORE = [
    "not json", "null", "[1, 2]", '"text"', "{}", '{"event": 5}', '{"data": {}}',
    frame("error", {"description": "Could not join room", "details": "room_is_full"},
          "mallory", [VICTIM]),
    frame("authenticated", {"peer_id": "chosen-by-mallory", "resume_token": "mallory.token"},
          "mallory", [VICTIM]),
]
#: The server's own welcome.
AUTHENTICATED = frame("authenticated", {"peer_id": VICTIM, "resume_token": "victim.secret"},
                      None, [VICTIM])
#: After it: more forgeries, then a genuine ``joined`` of the friend.
AFTER = [
    frame("authenticated", {"peer_id": "chosen-by-mallory", "resume_token": "mallory.token",
                            "ice_servers": [{"urls": ["turn:mallory.example"]}]},
          "mallory", [VICTIM]),
    frame("error", {"description": "Room closed", "details": "normal"}, "mallory", [VICTIM]),
    frame("left", {"peer_id": FRIEND}, "mallory", "all"),
    frame("joined", {"peer_id": FRIEND}, "mallory", "all"),  # naming another peer
    frame("joined", {"peer_id": VICTIM}, VICTIM, "all"),     # naming the victim itself
    frame("joined", {"peer_id": FRIEND}, FRIEND, "all"),     # genuine
]
#: The last frame, a plain message: everything before it has been handled once it arrives.
MARKER = frame("marker", None, FRIEND, [VICTIM])
