"""Connect to the lobby from Python and print what the room says (the tutorial's last step)."""

import asyncio
import sys

from membrane_rtc.client import SignalingClient


async def main(url: str) -> None:
    async with SignalingClient(url) as client:
        print("my peer id:", client.peer_id)
        greeting = await client.recv_event("greeting", timeout=5)
        print("the room says:", greeting.data["text"])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/webrtc/lobby"))
