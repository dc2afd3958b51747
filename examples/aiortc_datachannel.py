"""Two aiortc peers connect through a membrane-rtc room and exchange a data-channel message.

    membrane-rtc serve --room demo          # in one terminal
    python examples/aiortc_datachannel.py   # in another: prints what the answerer received

Alice joins first; when she hears that Bob joined, she offers to him with a data channel; Bob
answers; aiortc puts its ICE candidates in the SDP, so offer and answer are all the signaling.
"""

from __future__ import annotations

import asyncio
import sys

from aiortc import RTCPeerConnection, RTCSessionDescription

from membrane_rtc.client import SignalingClient


async def alice(url: str, joined: asyncio.Event, text: str) -> None:
    async with SignalingClient(url) as client:
        joined.set()
        bob = (await client.recv_event("joined", timeout=30)).from_
        assert bob is not None  # a peer's "joined" is from that peer
        pc = RTCPeerConnection()
        channel = pc.createDataChannel("chat")
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await pc.setLocalDescription(await pc.createOffer())
        await client.send("offer", {"sdp": pc.localDescription.sdp, "type": "offer"}, [bob])
        answer = await client.recv_event("answer", timeout=30)
        await pc.setRemoteDescription(RTCSessionDescription(**answer.data))
        await asyncio.wait_for(opened.wait(), 30)
        channel.send(text)
        await client.recv_event("done", timeout=30)  # Bob got it: now we may hang up
        await pc.close()


async def bob(url: str) -> str:
    async with SignalingClient(url) as client:
        offer = await client.recv_event("offer", timeout=30)
        caller = offer.from_
        assert caller is not None  # the server sets "from" on what peers send
        pc = RTCPeerConnection()
        received: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def keep(message: str) -> None:
            if not received.done():
                received.set_result(message)

        @pc.on("datachannel")
        def on_datachannel(channel) -> None:  # type: ignore[no-untyped-def]
            channel.on("message", keep)

        await pc.setRemoteDescription(RTCSessionDescription(**offer.data))
        await pc.setLocalDescription(await pc.createAnswer())
        await client.send("answer", {"sdp": pc.localDescription.sdp, "type": "answer"},
                          [caller])
        message = await asyncio.wait_for(received, 30)
        await client.send("done", None, [caller])
        await pc.close()
        return message


async def run(url: str, text: str = "hello from alice") -> str:
    """Run both peers against the room at ``url``; return what Bob received."""
    alice_joined = asyncio.Event()
    alice_task = asyncio.create_task(alice(url, alice_joined, text))
    joined = asyncio.create_task(alice_joined.wait())
    # Bob joins once Alice is in (so that she hears him join), or not at all if she failed.
    await asyncio.wait({alice_task, joined}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    joined.cancel()
    if alice_task.done():
        alice_task.result()  # raises what went wrong
        raise RuntimeError("alice ended before bob joined")
    received = await bob(url)
    await asyncio.wait_for(alice_task, 30)
    return received


if __name__ == "__main__":
    print(asyncio.run(run(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8080/webrtc/demo")))
