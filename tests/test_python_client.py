"""The Python signaling client, and two aiortc peers connecting through the server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from membrane_rtc import Server
from membrane_rtc.client import SignalingClient, SignalingError

from .conftest import ServerFactory
from .support.waiting import until

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aiortc_datachannel.py"


async def test_client_joins_exchanges_and_is_refused_clearly(start_server: ServerFactory) -> None:
    server = await start_server({"duo": ("actors.capped:CappedRoom", {"max_peers": 2})})
    async with SignalingClient(f"{server.url}/duo") as alice, \
            SignalingClient(f"{server.url}/duo") as bob:
        assert (await alice.recv_event("joined")).from_ == bob.peer_id
        await bob.send("offer", {"sdp": "v=0"}, [alice.peer_id])
        offer = await alice.recv_event("offer")
        assert (offer.from_, offer.data, offer.to) == (bob.peer_id, {"sdp": "v=0"}, [alice.peer_id])
        with pytest.raises(SignalingError) as full:
            await SignalingClient(f"{server.url}/duo").connect()
        assert (full.value.description, full.value.details) == ("Could not join room",
                                                                "room_is_full")
    with pytest.raises(SignalingError, match="HTTP 404"):
        await SignalingClient(f"{server.url}/nowhere").connect()


async def test_two_aiortc_peers_exchange_a_data_channel_message(
        start_server_each_mode: ServerFactory) -> None:
    spec = importlib.util.spec_from_file_location("aiortc_datachannel", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    server = await start_server_each_mode()
    assert await example.run(f"{server.url}/demo", "hello through membrane-rtc") == \
        "hello through membrane-rtc"


async def test_a_dropped_client_resumes_as_the_same_peer(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    url = f"{server.url}/demo?tag=1"
    async with SignalingClient(url) as alice, SignalingClient(url) as bob:
        await alice.recv_event("joined")
        me, token = alice.peer_id, alice.resume_token
        assert alice._connection is not None
        alice._connection.transport.abort()  # the network goes: no close frame
        await until(lambda: _away(server, me))  # the server noticed (a frame sent before
        await bob.send("offer", {"n": 1}, [me])  # that would go down the dead socket)
        offer = await alice.recv_event("offer")  # recv resumes, then reads what she missed
        assert (alice.peer_id, alice.resumes, offer.data) == (me, 1, {"n": 1})
        assert alice.resume_token not in (None, token)
        await alice.send("answer", None, [bob.peer_id])
        assert (await bob.recv()).event == "answer"  # bob saw no left and no joined


async def _away(server: Server, peer_id: str | None) -> bool:
    return any(p.peer_id == peer_id and p.away for p in await server.list_peers("demo"))


async def test_a_client_that_cannot_resume_in_time_gives_up_clearly(
        start_server: ServerFactory) -> None:
    server = await start_server()
    client = SignalingClient(f"{server.url}/demo", give_up_after=0.5, backoff=0.05)
    await client.connect()
    await server.stop()  # no server to come back to
    with pytest.raises(SignalingError, match="could not resume"):
        await client.recv()
