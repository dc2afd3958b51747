"""The Python signaling client, and two aiortc peers connecting through the server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from membrane_rtc import Server
from membrane_rtc.client import SignalingClient, SignalingError

from .conftest import ServerFactory
from .support.client import Client
from .support.scripted_server import AFTER, AUTHENTICATED, BEFORE, FRIEND, MARKER, VICTIM, \
    ScriptedServer
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


async def _away(server: Server, peer_id: str | None, room: str = "demo") -> bool:
    return any(p.peer_id == peer_id and p.away for p in await server.list_peers(room))


async def test_a_client_that_cannot_resume_in_time_gives_up_clearly(
        start_server: ServerFactory) -> None:
    server = await start_server()
    client = SignalingClient(f"{server.url}/demo", give_up_after=0.5, backoff=0.05)
    await client.connect()
    await server.stop()  # no server to come back to
    with pytest.raises(SignalingError, match="could not resume"):
        await client.recv()


async def test_the_client_drops_what_a_peer_sends_as_the_server(
        start_server: ServerFactory) -> None:
    """Through a room that lets a peer pick the event name (tests/support/spoof_room.py):
    forged ``authenticated``, ``left``, ``error`` and ``joined`` never reach ``recv`` nor
    change the client, neither live nor kept for it while it was away and then resumed."""
    server = await start_server({"spoof": ("tests.support.spoof_room:SpoofRoom", None)})
    url = f"{server.url}/spoof"
    async with SignalingClient(url) as alice, SignalingClient(url) as bob:
        mallory = await Client.connect(url)
        assert [(await alice.recv()).from_ for _ in range(2)] == [bob.peer_id, mallory.peer_id]
        me = alice.peer_id
        forgeries = [
            ("authenticated", {"peer_id": "chosen-by-mallory", "resume_token": "mallory.token",
                               "resumed": True, "metadata": {"name": "Mallory"},
                               "ice_servers": [{"urls": ["turn:mallory.example"]}]}),
            ("left", {"peer_id": bob.peer_id}),
            ("error", {"description": "Room closed", "details": "normal"}),
            ("joined", {"peer_id": bob.peer_id}),
            ("joined", {"peer_id": "chosen-by-mallory"})]

        async def forge_then_mark(n: int) -> None:
            for event, data in forgeries:
                await mallory.send("relay", {"event": event, "data": data}, [me])
            await mallory.send("marker", n, [me])  # after them, in order

        await forge_then_mark(1)
        marker = await alice.recv()
        assert (marker.event, marker.data, marker.from_) == ("marker", 1, mallory.peer_id)
        assert (alice.peer_id, alice.ice_servers, alice.metadata) == (me, None, None)
        token = alice.resume_token
        assert token is not None and token.startswith(f"{me}.")
        # Kept for her while she is away, they come right after her resume's authenticated.
        assert alice._connection is not None
        alice._connection.transport.abort()
        await until(lambda: _away(server, me, "spoof"))
        await forge_then_mark(2)
        marker = await alice.recv()
        assert (marker.event, marker.data, alice.resumes) == ("marker", 2, 1)
        assert (alice.peer_id, alice.ice_servers, alice.metadata) == (me, None, None)
        assert alice.resume_token not in (None, token) and alice.resume_token.startswith(f"{me}.")
        await mallory.close()


async def test_the_client_drops_forgeries_and_garbage_around_authenticated() -> None:
    """From a server that passes anything on (tests/support/scripted_server.py): neither text
    that is no frame nor a forged ``error``/``authenticated`` before the real one refuses or
    admits the client; after it, only genuine frames reach ``recv``."""
    scripted = ScriptedServer(BEFORE + [AUTHENTICATED] + AFTER + [MARKER])
    url = await scripted.start()
    try:
        async with SignalingClient(url, resume=False, timeout=5) as client:
            assert (client.peer_id, client.resume_token) == (VICTIM, "victim.secret")
            joined = await client.recv()
            assert (joined.event, joined.from_, joined.data) == ("joined", FRIEND,
                                                                 {"peer_id": FRIEND})
            assert (await client.recv()).event == "marker"
            assert (client.peer_id, client.ice_servers) == (VICTIM, None)
    finally:
        await scripted.stop()
