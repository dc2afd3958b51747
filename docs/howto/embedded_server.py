"""membrane-rtc inside your own asyncio program (how-to: embed)."""

import asyncio
import signal

from membrane_rtc import RoomConfig, Server, ServerConfig
from membrane_rtc.client import SignalingClient

# A Room subclass, or where to find one (module:Class or file.py:Class, from the working
# directory): the tutorial's lobby.
LOBBY = "docs/tutorial/lobby.py:Lobby"


async def main() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    config = ServerConfig(host="127.0.0.1", port=0,  # 0: any free port
                          rooms=[RoomConfig("lobby", LOBBY, {"max_peers": 4})])
    async with Server(config) as server:
        print("serving", server.url)
        await server.create_room("side", LOBBY)  # rooms can come and go at run time
        async with SignalingClient(f"{server.url}/lobby") as bot:
            greeting = await bot.recv_event("greeting")
            print("bot was greeted:", greeting.data["text"])
        print("rooms:", [room.name for room in await server.list_rooms()])
        await stop.wait()  # your program's own work goes here


if __name__ == "__main__":
    asyncio.run(main())
