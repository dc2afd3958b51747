"""The gateway against a fake runtime, in-process: the seam of membrane_rtc/connections.py.

No actor system here: the runtime is a plain object that answers as a test tells it to, the
way websockets tests its I/O adapters over its sans-I/O core.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import pytest

from membrane_rtc import ServerConfig, protocol
from membrane_rtc.gateway import Gateway
from membrane_rtc.gateway.backpressure import MAX_BACKLOG, MAX_TOTAL_BACKLOG
from membrane_rtc.protocol import Message
from membrane_rtc.room import AuthData

from .support.client import Client, http_get, refused_status
from .support.waiting import until


class FakeRuntime:
    """Refuses rooms named ``closed`` (404) and ``secret`` (401); admits the rest, greeting
    with ``authenticated`` and echoing every message back to its sender."""

    def __init__(self) -> None:
        self.gateway: Gateway | None = None
        self.peers: dict[int, str] = {}
        self.received: list[tuple[int, Message]] = []
        self.disconnected_ids: list[int] = []
        self.resumable: list[bool] = []
        self.auths: list[AuthData] = []
        self.resume_tokens: list[str | None] = []
        self.received_counts: list[int | None] = []
        self.gone = asyncio.Event()
        self.detached = False
        self.is_ready = True
        self.is_alive = True
        #: What each connection's room has waiting, as the test sets it.
        self.backlogs: dict[int, int] = {}

    def connect(self, conn_id: int, room_name: str, auth: AuthData,
                resume_token: str | None = None, received: int | None = None) -> None:
        assert self.gateway is not None
        self.auths.append(auth)
        self.resume_tokens.append(resume_token)
        self.received_counts.append(received)
        if room_name in ("closed", "secret"):
            self.gateway.refuse(conn_id, 404 if room_name == "closed" else 401, room_name)
            return
        peer_id = "resumed-peer" if resume_token else auth.peer_id
        self.peers[conn_id] = peer_id
        self.gateway.accept(conn_id, peer_id, None, resumed=resume_token is not None)
        self.gateway.deliver([(conn_id, protocol.encode(protocol.authenticated(peer_id)))])

    def receive(self, conn_id: int, message: Message) -> None:
        assert self.gateway is not None
        self.received.append((conn_id, message))
        if message.event == "bye":
            self.gateway.close(conn_id, 4000, "asked to")
        else:
            self.gateway.deliver([(conn_id, protocol.encode(message))])

    def disconnected(self, conn_id: int, resumable: bool = False) -> None:
        self.disconnected_ids.append(conn_id)
        self.resumable.append(resumable)
        self.gone.set()

    def backlog(self, conn_id: int | None = None) -> int:
        if conn_id is None:
            return sum(self.backlogs.values())
        return self.backlogs.get(conn_id, 0)

    def alive(self) -> bool:
        return self.is_alive

    async def ready(self) -> bool:
        return self.is_ready

    async def detach(self) -> None:
        self.detached = True


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, FakeRuntime]]:
    runtime = FakeRuntime()
    gateway = Gateway(runtime, ServerConfig(port=0))
    runtime.gateway = gateway
    await gateway.start()
    try:
        yield gateway, runtime
    finally:
        await gateway.stop()
    assert runtime.detached


async def test_the_runtime_refuses_before_the_upgrade(gateway: tuple[Gateway, FakeRuntime]) -> None:
    server, runtime = gateway
    url = f"ws://127.0.0.1:{server.port}/webrtc"
    assert await refused_status(f"{url}/closed") == 404
    assert await refused_status(f"{url}/secret") == 401
    assert runtime.peers == {} and server.connections == {}
    assert len(runtime.disconnected_ids) == 2  # each refused connection said once


async def test_frames_go_through_the_seam_both_ways(gateway: tuple[Gateway, FakeRuntime]) -> None:
    server, runtime = gateway
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/lobby")
    [(conn_id, peer_id)] = runtime.peers.items()
    assert peer_id == client.peer_id
    await client.send("offer", {"sdp": "x"}, "all", **{"from": "someone else"})
    echo = await client.recv_event("offer")
    assert echo == {"event": "offer", "data": {"sdp": "x"}, "from": peer_id, "to": "all"}
    await client.send_text("not json")  # answered by the gateway itself, never the runtime
    assert (await client.recv_event("error"))["data"]["description"] == "Invalid JSON"
    assert [m.event for _, m in runtime.received] == ["offer"]
    await client.send("bye")
    assert await client.closed() == 4000
    await asyncio.wait_for(runtime.gone.wait(), 5)
    assert runtime.disconnected_ids == [conn_id]


async def test_a_client_that_leaves_is_disconnected_exactly_once(
        gateway: tuple[Gateway, FakeRuntime]) -> None:
    server, runtime = gateway
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/lobby")
    [conn_id] = runtime.peers
    await client.close()
    await asyncio.wait_for(runtime.gone.wait(), 5)
    server.close(conn_id, 1000, "late")  # a runtime's late word for a gone connection: ignored
    server.deliver([(conn_id, b"{}")])
    assert runtime.disconnected_ids == [conn_id] and server.connections == {}


async def test_a_dropped_connection_may_resume_a_closed_one_may_not(
        gateway: tuple[Gateway, FakeRuntime], caplog: pytest.LogCaptureFixture) -> None:
    """The runtime learns whether the client left (close frame) or dropped (no close); the
    log line says which code, as a number."""
    caplog.set_level(logging.INFO, logger="membrane_rtc.gateway")
    server, runtime = gateway
    url = f"ws://127.0.0.1:{server.port}/webrtc/lobby"
    leaving = await Client.connect(url)
    await leaving.close()
    await asyncio.wait_for(runtime.gone.wait(), 5)
    runtime.gone.clear()
    dropping = await Client.connect(url)
    dropping.connection.transport.abort()  # the network is gone: no close frame
    await asyncio.wait_for(runtime.gone.wait(), 5)
    assert runtime.resumable == [False, True]
    codes = [r.getMessage().split("code=")[1].split()[0] for r in caplog.records
             if "peer_disconnected" in r.getMessage()]
    assert codes == ["1000", "1006"]


async def test_a_resume_token_goes_to_the_runtime_and_nowhere_else(
        gateway: tuple[Gateway, FakeRuntime]) -> None:
    """``?resume=`` is the runtime's, not a credential for the Peer; a resumed connection
    speaks as the peer id the runtime gives it."""
    server, runtime = gateway
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/lobby?resume=tok&x=1",
                                  authenticate=False)
    assert (await client.recv_event("authenticated"))["data"]["peer_id"] == "resumed-peer"
    assert runtime.resume_tokens == ["tok"] and runtime.auths[0].credentials == {"x": "1"}
    await client.send("offer", None, "all")
    assert (await client.recv_event("offer"))["from"] == "resumed-peer"
    assert server.metrics.resumed._value.get() == 1
    await client.close()


async def test_health_and_readiness_and_a_drain(gateway: tuple[Gateway, FakeRuntime]) -> None:
    """/healthz: the process serves; /readyz: the runtime says it can reach the rooms, and no
    drain is under way. A drain refuses new clients and closes the rest with 1012."""
    server, runtime = gateway
    base = f"http://127.0.0.1:{server.port}"
    assert await http_get(f"{base}/healthz") == (200, "ok\n")
    runtime.is_alive = False  # the actor system died: restart this process
    assert await http_get(f"{base}/healthz") == (503, "actor system gone\n")
    runtime.is_alive = True
    assert await http_get(f"{base}/readyz") == (200, "ready\n")
    runtime.is_ready = False
    assert await http_get(f"{base}/readyz") == (503, "not ready\n")
    runtime.is_ready = True
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/lobby")
    drain = asyncio.ensure_future(server.drain_and_close(timeout=0.2))

    async def draining() -> bool:
        return server.draining
    await until(draining)
    assert await http_get(f"{base}/readyz") == (503, "draining\n")
    assert await refused_status(f"ws://127.0.0.1:{server.port}/webrtc/lobby") == 503
    assert await client.closed() == 1012
    await asyncio.wait_for(drain, 5)
    assert server.drained.is_set() and runtime.resumable[-1] is True  # it may resume elsewhere


async def test_only_the_clients_of_a_room_that_is_behind_are_read_more_slowly(
        gateway: tuple[Gateway, FakeRuntime]) -> None:
    """Backpressure per room: a client whose room has more than MAX_BACKLOG messages waiting
    is not read from until its room is down to half of it; another room's client is read on."""
    server, runtime = gateway
    flooder = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/busy")
    other = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/calm")
    busy_conn = next(conn for conn, peer in runtime.peers.items() if peer == flooder.peer_id)
    runtime.backlogs[busy_conn] = MAX_BACKLOG + 1
    await flooder.send("tips-it", None, "all")  # read, then its room is over the bound
    assert (await flooder.recv_event("tips-it"))["event"] == "tips-it"
    await flooder.send("held", None, "all")
    await other.send("calm", None, "all")  # read at once: its room is not behind
    assert (await other.recv_event("calm"))["event"] == "calm"
    assert "held" not in [message.event for _, message in runtime.received]
    runtime.backlogs[busy_conn] = MAX_BACKLOG // 2  # caught up: read again
    assert (await flooder.recv_event("held"))["event"] == "held"
    runtime.backlogs[busy_conn] = MAX_TOTAL_BACKLOG + 1  # all rooms over theirs: any sender
    await other.send("tips-it-too", None, "all")
    assert (await other.recv_event("tips-it-too"))["event"] == "tips-it-too"
    await other.send("held-too", None, "all")
    runtime.backlogs[busy_conn] = 0
    assert (await other.recv_event("held-too"))["event"] == "held-too"
    await flooder.close()
    await other.close()


async def test_a_client_that_stops_answering_pings_is_cut_off_and_may_resume(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The keepalive: a client whose network went silent (it reads nothing, so it answers no
    ping) is closed with 1011 after two ping periods, and may resume (it dropped)."""
    monkeypatch.setattr("membrane_rtc.gateway.keepalive.PING_INTERVAL", 0.1)
    runtime = FakeRuntime()
    server = Gateway(runtime, ServerConfig(port=0))
    runtime.gateway = server
    await server.start()
    try:
        talker = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/lobby")
        silent = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/lobby")
        silent.connection.transport.pause_reading()  # hears nothing, answers nothing
        await asyncio.wait_for(runtime.gone.wait(), 5)
        assert runtime.resumable == [True]
        assert talker.connection.close_code is None  # it answered every ping: still here
        await talker.close()
    finally:
        await server.stop()
