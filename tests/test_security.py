"""Security properties of the protocol and limits (docs/reference/) not covered elsewhere: unguessable peer ids,
rooms sealed from each other, operator channels on loopback behind a token.

(``from`` cannot be spoofed: test_gateway and the property tests; no peer reaches a peer of
another room, by id or by "all": test_gateway's test_two_rooms_are_isolated; a raising or
hanging callback stalls no other room: test_supervision and test_limits.)
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import websockets

from .conftest import ServerFactory
from .support.net import free_port
from .support.client import Client

PEERS = 200


@pytest.mark.slow  # connects many clients
async def test_peer_ids_are_fresh_random_uuid4s(start_server: ServerFactory) -> None:
    server = await start_server(joins_per_second=0, max_connections_per_ip=0)
    # max_queue=None: these clients never read the 'joined' frames of the others, and a
    # websockets client that stops reading cannot finish its closing handshake quickly.
    clients = await asyncio.gather(*(Client.connect(f"{server.url}/demo", max_queue=None)
                                     for _ in range(PEERS)))
    ids = [client.peer_id for client in clients]
    assert len(set(ids)) == PEERS
    for peer_id in ids:
        parsed = uuid.UUID(peer_id)
        # version 4 = 122 random bits from os.urandom: not derived from time, host or order
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == peer_id
    await asyncio.gather(*(client.close() for client in clients))


async def test_the_admin_channel_is_loopback_only_and_wants_its_token(start_server: ServerFactory) -> None:
    server = await start_server()
    channel = server.admin_channel
    assert channel is not None and channel.server is not None
    assert {sock.getsockname()[0] for sock in channel.server.sockets} == {"127.0.0.1"}
    url = f"ws://127.0.0.1:{channel.port}"
    for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": channel.token}):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, additional_headers=header)
        assert refused.value.response.status_code == 401
    async with websockets.connect(
            url, additional_headers={"Authorization": f"Bearer {channel.token}"}) as admin:
        await admin.send(json.dumps({"op": "list"}))
        answer = json.loads(await asyncio.wait_for(admin.recv(), 5))
    assert answer["ok"] and [room["name"] for room in answer["value"]] == ["demo"]


async def test_metrics_listen_on_loopback_by_default(start_server: ServerFactory) -> None:
    server = await start_server(metrics_port=free_port())
    address = server.metrics.address
    assert address is not None and address[0] == "127.0.0.1"
