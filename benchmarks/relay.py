"""A bare websockets relay speaking membrane-rtc's JSON protocol, with no framework at all.

The Python limit to measure against: rooms are dicts, forwarding is a loop, no actors, no
callbacks. ``python -m benchmarks.relay PORT`` serves ws://127.0.0.1:PORT/webrtc/<room>.
"""

import asyncio
import json
import sys
import uuid

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

rooms: dict[str, dict[str, object]] = {}


async def handle(socket) -> None:  # type: ignore[no-untyped-def]
    room = rooms.setdefault(socket.request.path.rsplit("/", 1)[-1], {})
    me = str(uuid.uuid4())
    await socket.send(json.dumps({"event": "authenticated", "data": {"peer_id": me},
                                  "from": None, "to": [me]}))
    room[me] = socket
    try:
        async for text in socket:
            message = json.loads(text)
            message["from"] = me
            to = message.get("to")
            targets = [p for p in room if p != me] if to == "all" else (to or [])
            frame = json.dumps(message)
            for peer in targets:
                if peer in room:
                    await room[peer].send(frame)  # type: ignore[attr-defined]
    except ConnectionClosed:
        pass  # load generators drop their sockets at the end: no traceback for each
    finally:
        del room[me]


async def main(port: int) -> None:
    async with serve(handle, "127.0.0.1", port, compression=None, max_size=65536):
        print(f"relay serving ws://127.0.0.1:{port}/webrtc/<room>", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
