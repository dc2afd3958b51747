"""A 20-peer room where everyone signals everyone: each message arrives once, in order."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from .conftest import ServerFactory
from .support.client import Client

pytestmark = pytest.mark.slow  # a 20-peer full mesh in both modes

PEERS = 20
CANDIDATES = 3


async def test_full_mesh_of_offers_answers_and_candidates(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    clients = []
    for i in range(PEERS):
        clients.append(await Client.connect(f"{server.url}/demo"))
    for i, client in enumerate(clients):
        for later in clients[i + 1:]:
            assert (await client.recv_event("joined"))["from"] == later.peer_id
    ids = [c.peer_id for c in clients]
    sdp = "v=0\r\n" + "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n" * 8

    async def run(me: Client) -> dict[str, list[tuple[str, int]]]:
        others = [p for p in ids if p != me.peer_id]
        for other in others:
            await me.send("offer", {"seq": 0, "sdp": sdp}, [other])
            for n in range(1, CANDIDATES + 1):
                await me.send("candidate", {"seq": n, "candidate": f"c{n}"}, [other])
        seen: dict[str, list[tuple[str, int]]] = defaultdict(list)
        expected = len(others) * (CANDIDATES + 2)  # offer + candidates in, one answer each out
        for _ in range(expected):
            frame = await me.recv(timeout=20)
            assert frame["to"] == [me.peer_id]
            seen[frame["from"]].append((frame["event"], frame["data"]["seq"]))
            if frame["event"] == "offer":
                await me.send("answer", {"seq": 0, "sdp": sdp}, [frame["from"]])
        return seen

    results = await asyncio.wait_for(asyncio.gather(*(run(c) for c in clients)), 60)
    for me, seen in zip(clients, results):
        assert set(seen) == set(ids) - {me.peer_id}
        for sender, frames in seen.items():
            incoming = [f for f in frames if f[0] != "answer"]
            assert incoming == [("offer", 0)] + [("candidate", n)
                                                 for n in range(1, CANDIDATES + 1)]
            assert frames.count(("answer", 0)) == 1
    # Nothing more is on the way: the next frames everyone gets are the 19 goodbyes.
    for client in clients:
        await client.send("bye", {"seq": -1}, "all")
    for client in clients:
        froms = [(await client.recv_event("bye"))["from"] for _ in range(PEERS - 1)]
        assert sorted(froms) == sorted(set(ids) - {client.peer_id})
