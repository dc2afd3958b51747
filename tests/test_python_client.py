"""The Python signaling client, and two aiortc peers connecting through the server."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from membrane_rtc.client import SignalingClient, SignalingError

from .conftest import ServerFactory

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
