"""A resume that loses nothing: ``?resume=TOKEN&received=N`` (docs/reference/protocol.md).

The room numbers the frames of each peer's session and keeps the last ones within
``--resume-queue-bytes``; a resuming client says how many it received and gets every one after
those again, even the ones the server wrote into a connection it still believed open. First
the session core without sockets, then the gateway's parsing, then real servers: one process
(both actor-system modes), a Chromium page, and several ``membrane-rtc serve`` processes
whose gateway is killed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest
from playwright.async_api import BrowserContext

from membrane_rtc import Room, Server
from membrane_rtc.client import SignalingClient
from membrane_rtc.gateway import Gateway
from membrane_rtc.gateway.admission import MAX_RECEIVED
from membrane_rtc.members import RECEIVED_TOO_MANY, Member, Members
from membrane_rtc.outcomes import Accept, Close, Frame, Refuse
from membrane_rtc.peer import Peer
from membrane_rtc.protocol import Message, decode_server_frame
from membrane_rtc.room import AuthData
from membrane_rtc.room_state import RoomState
from membrane_rtc.sessions import SessionSettings
from membrane_rtc.testing import RoomHarness

from .conftest import ServerFactory
from .support.browser import WAIT_MS, browser  # noqa: F401 (fixture)
from .support.client import Client, refused_status
from .support.procfs import wait_until_no_process_in
from .support.proxy import CuttingProxy
from .support.waiting import until
from .test_seam import FakeRuntime, gateway  # noqa: F401 (fixture)
from .test_scaleout import Deployment, deployment, listening_pid  # noqa: F401 (fixture)

# -- the session core, no sockets ---------------------------------------------------------------


def offers(messages: list[Message]) -> list[Any]:
    return [m.data for m in messages if m.event == "offer"]


def test_a_resume_with_received_gets_every_frame_after_it_in_order() -> None:
    """Frames written before the drop that never arrived come again, then those kept while
    away, then what follows: every offer exactly once, in order."""
    room = RoomHarness(Room)
    a, b = room.join(), room.join()
    for n in range(5):
        b.send("offer", n, to=[a.peer_id])
    a.drop(lost=3)  # 2, 3 and 4 went into a connection the server still believed open
    assert offers(a.received) == [0, 1]
    b.send("offer", 5, to=[a.peer_id])  # kept while away
    a.resume(received=a.counted)
    b.send("offer", 6, to=[a.peer_id])
    assert offers(a.received) == list(range(7))
    assert a.received[-6].event == "authenticated" and a.received[-6].data["resumed"] is True
    assert a.counted == room.members.members[a.peer_id].sent.count  # the client agrees
    assert "left" not in b.events()


def test_without_received_a_resume_is_as_before() -> None:
    """An older client that does not say: only what was kept since the drop."""
    room = RoomHarness(Room)
    a, b = room.join(), room.join()
    for n in range(3):
        b.send("offer", n, to=[a.peer_id])
    a.drop(lost=2)
    b.send("offer", 3, to=[a.peer_id])
    a.resume()
    assert offers(a.received) == [0, 3]


def test_the_counting_starts_again_with_a_new_session_not_with_a_resume() -> None:
    room = RoomHarness(Room)
    a, b = room.join(), room.join()
    assert a.counted == 2  # its authenticated, then joined
    a.drop()
    a.resume(received=a.counted)
    assert a.counted == 2  # the resume's own authenticated is no frame of the session
    b.send("offer", 0, to=[a.peer_id])
    assert a.counted == room.members.members[a.peer_id].sent.count == 3


def test_more_received_than_sent_is_refused_and_changes_nothing() -> None:
    """400: the client is wrong about its session; the peer stays away, its grace goes on,
    its token stays good for a right resume."""
    room = RoomHarness(Room)
    a, b = room.join(), room.join()
    b.send("offer", 0, to=[a.peer_id])
    a.drop()
    with pytest.raises(ValueError, match=RECEIVED_TOO_MANY):
        a.resume(received=a.counted + 1)
    assert a.away and room.members.members[a.peer_id].away is not None
    a.resume(received=a.counted)
    assert not a.away and offers(a.received) == [0] and "left" not in b.events()


def test_frames_after_received_that_are_gone_end_the_session_as_an_overflow() -> None:
    """What the client missed is no longer kept: as when an away peer's frames pass the
    bound, the peer leaves (its room-mates see ``left``) and the client joins afresh."""
    room = RoomHarness(Room, resume_queue_bytes=1000)
    a, b = room.join(), room.join()
    old = a.peer_id
    for n in range(10):
        b.send("offer", "x" * 200, to=[a.peer_id])  # ~2,500 bytes: the first ones make room
    a.drop(lost=8)
    a.resume(received=a.counted)
    assert a.peer_id != old and not a.closed and not a.away
    assert a.received[-1].event == "authenticated" and a.received[-1].data["resumed"] is False
    assert a.counted == 1
    assert b.events()[-2:] == ["left", "joined"]
    assert b.received[-2].data == {"peer_id": old}


def test_the_kept_frames_stay_within_the_bound_and_an_idle_peer_keeps_little() -> None:
    bound = 2000
    room = RoomHarness(Room, resume_queue_bytes=bound)
    a, b, idle = room.join(), room.join(), room.join()
    for n in range(500):
        b.send("offer", "x" * 100, to=[a.peer_id])  # ~70 KB: 35 times the bound
    kept = room.members.members[a.peer_id].sent
    assert kept.count == 503  # authenticated, two joined, 500 offers
    assert kept.frames is not None
    assert 0 < kept.size <= bound and kept.size == sum(map(len, kept.frames))
    assert kept.count - kept.first + 1 < 20  # the last ~11 frames
    assert sum(1 for frame in kept.frames if frame) < 20  # and no other is held on to
    quiet = room.members.members[idle.peer_id].sent
    assert quiet.count == 1 and quiet.frames is None and quiet.size == 0  # nothing kept


def test_without_resuming_no_frame_is_kept() -> None:
    """``--resume-grace 0``: a drop is a leave, nobody can ask for frames again, so none is
    kept (they are still counted)."""
    room = RoomHarness(Room, resume_grace=0)
    a, b = room.join(), room.join()
    for _ in range(20):
        b.send("offer", "x" * 100, to=[a.peer_id])
    kept = room.members.members[a.peer_id].sent
    assert kept.count == 22 and kept.size == 0  # authenticated, b's joined, 20 offers
    assert not any(kept.frames or [])


def test_a_half_open_connection_closes_and_its_lost_frames_come_again() -> None:
    """The server never learned of the drop (no reset, no missed ping yet): the frames it
    wrote into the old connection are sent again on the new one, after which the old one
    closes. The core directly: connections are plain names here."""
    state: RoomState[Member[str]] = RoomState(Room(), "r")
    members: Members[str] = Members(state, SessionSettings())
    members.start(None)
    join_a = members.join("a1", AuthData("A", {}), Peer, None)
    members.join("b1", AuthData("B", {}), Peer, None)
    [hello] = [e.frame for e in join_a.effects if isinstance(e, Frame)]
    token = decode_server_frame(hello).data["resume_token"]
    sent = [e.frame for n in range(4) for e in members.forward(
        Message("offer", n, "B", ["A"])).effects if isinstance(e, Frame) and e.conn == "a1"]
    # "a1" got its authenticated, "joined" (of B) and offers 0 and 1; 2 and 3 were lost.
    back = members.connect("a2", AuthData("fresh-id", {}), Peer, None, token, received=4)
    close, accept, hello_again = back.effects[:3]
    assert isinstance(close, Close) and close.conn == "a1"
    assert isinstance(accept, Accept) and accept.conn == "a2" and accept.resumed
    assert isinstance(hello_again, Frame) and hello_again.conn == "a2"
    again = [e.frame for e in back.effects[3:] if isinstance(e, Frame)]
    assert again == sent[2:]  # the same bytes, in order


def test_a_half_open_peer_whose_missed_frames_are_gone_leaves_and_its_client_joins() -> None:
    state: RoomState[Member[str]] = RoomState(Room(), "r")
    members: Members[str] = Members(state, SessionSettings(resume_queue_bytes=500))
    members.start(None)
    join_a = members.join("a1", AuthData("A", {}), Peer, None)
    members.join("b1", AuthData("B", {}), Peer, None)
    [hello] = [e.frame for e in join_a.effects if isinstance(e, Frame)]
    token = decode_server_frame(hello).data["resume_token"]
    for n in range(10):
        members.forward(Message("offer", "x" * 100, "B", ["A"]))
    back = members.connect("a2", AuthData("N", {}), Peer, None, token, received=2)
    close = back.effects[0]
    assert isinstance(close, Close) and close.conn == "a1"
    [accept] = [e for e in back.effects if isinstance(e, Accept)]
    assert (accept.conn, accept.peer_id, accept.resumed) == ("a2", "N", False)
    assert set(members.members) == {"B", "N"}
    left = [decode_server_frame(e.frame) for e in back.effects
            if isinstance(e, Frame) and e.conn == "b1"]
    assert [(m.event, m.data["peer_id"]) for m in left] == [("left", "A"), ("joined", "N")]


def test_a_token_for_no_member_ignores_received() -> None:
    """``received`` is only ever read for the holder of the member's current token."""
    state: RoomState[Member[str]] = RoomState(Room(), "r")
    members: Members[str] = Members(state, SessionSettings())
    members.start(None)
    members.join("a1", AuthData("A", {}), Peer, None)
    joined = members.connect("x1", AuthData("X", {}), Peer, None, "A.forged", received=10 ** 9)
    assert [e for e in joined.effects if isinstance(e, Refuse)] == []
    assert "X" in members.members  # admitted afresh, as any unknown token


# -- the gateway: it parses received, and passes it through -------------------------------------


@pytest.mark.parametrize(("query", "received"), [
    ("resume=t&received=0", 0), ("resume=t&received=17", 17),
    (f"resume=t&received={MAX_RECEIVED}", MAX_RECEIVED), ("resume=t", None), ("", None)])
async def test_the_gateway_passes_received_on(
        gateway: tuple[Gateway, FakeRuntime],  # noqa: F811
        query: str, received: int | None) -> None:
    server, runtime = gateway
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/webrtc/lobby?x=1&{query}")
    assert runtime.received_counts == [received]
    assert runtime.auths[0].credentials == {"x": "1"}  # neither resume nor received
    await client.close()


@pytest.mark.parametrize(("query", "why"), [
    ("resume=t&received=", "received is not a count"),
    ("resume=t&received=abc", "received is not a count"),
    ("resume=t&received=-1", "received is not a count"),
    ("resume=t&received=%2B1", "received is not a count"),
    ("resume=t&received=1.0", "received is not a count"),
    ("resume=t&received=%201", "received is not a count"),
    ("resume=t&received=%D9%A1", "received is not a count"),  # an Arabic-Indic one
    ("resume=t&received=0x10", "received is not a count"),
    ("resume=t&received=1_000", "received is not a count"),
    (f"resume=t&received={MAX_RECEIVED + 1}", "received is not a count"),
    ("resume=t&received=" + "9" * 5000, "received is not a count"),
    ("resume=t&received=1&received=2", "received given more than once"),
    ("received=3", "received without resume")])
async def test_a_malformed_received_is_a_bad_request(
        gateway: tuple[Gateway, FakeRuntime], caplog: pytest.LogCaptureFixture,  # noqa: F811
        query: str, why: str) -> None:
    caplog.set_level(logging.INFO, logger="membrane_rtc.gateway")
    server, runtime = gateway
    url = f"ws://127.0.0.1:{server.port}/webrtc/lobby?{query}"
    assert await refused_status(url) == 400
    assert runtime.auths == []  # the runtime never heard of it
    [line] = [r.getMessage() for r in caplog.records if "peer_refused" in r.getMessage()]
    assert why in line and "\n" not in line and "resume=t" not in line


# -- a real server: a connection cut while a room-mate sends -------------------------------------


async def sync(sender: Client) -> None:
    """Wait until the room routed everything ``sender`` sent so far (and the gateway wrote it
    out): a message to itself comes back through the room, behind them."""
    await sender.send("sync", None, [sender.peer_id])
    while (await sender.recv())["event"] != "sync":
        pass


@asynccontextmanager
async def alice_through_a_proxy(server: Server, query: str = "") -> AsyncIterator[
        tuple[CuttingProxy, SignalingClient, Client]]:
    """Alice (the Python client) in ``demo`` through a proxy that can cut her connection,
    Bob straight to the server; Alice has heard Bob join. The proxy stops after."""
    proxy = CuttingProxy(server.port)
    port = await proxy.start()
    try:
        alice = SignalingClient(f"ws://127.0.0.1:{port}/webrtc/demo{query}")
        await alice.connect()
        bob = await Client.connect(f"{server.url}/demo")
        await alice.recv_event("joined")
        yield proxy, alice, bob
    finally:
        await proxy.stop()


async def read_offers(client: SignalingClient, until_n: int) -> list[int]:
    """Every offer ``client`` receives up to the one numbered ``until_n``."""
    got: list[int] = []
    while not got or got[-1] < until_n:
        message = await client.recv()
        if message.event == "offer":
            got.append(message.data)
    return got


async def test_a_cut_connection_loses_no_frame_the_room_mate_sent(
        start_server_each_mode: ServerFactory) -> None:
    """The Python client's connection is cut without a close frame while its room-mate
    sends: offers go into the socket the server still holds (half-open) before the client
    comes back; it resumes with what it counted and gets every offer exactly once, in order.
    Then a drop the server does notice (a reset): kept frames and lost ones, the same."""
    server = await start_server_each_mode()
    async with alice_through_a_proxy(server, "?tag=1") as (proxy, alice, bob):
        me = alice.peer_id
        for n in range(10):
            await bob.send("offer", n, [me])
        got = await read_offers(alice, 4)
        assert proxy.vanish() == 1  # alice's side drops; the server hears nothing
        for n in range(10, 40):
            await bob.send("offer", n, [me])
        await sync(bob)  # 5..39 were written into the half-open connection

        async def keep_sending() -> None:  # while alice resumes
            for n in range(40, 80):
                await bob.send("offer", n, [me])
        sending = asyncio.create_task(keep_sending())
        got += await read_offers(alice, 79)
        await sending
        assert got == list(range(80)) and (alice.peer_id, alice.resumes) == (me, 1)

        assert proxy.cut() == 1  # now a reset: the server knows at once
        await until(lambda: _away(server, me))
        for n in range(80, 90):
            await bob.send("offer", n, [me])  # kept while away
        assert alice._connection is not None
        alice._connection.transport.abort()  # and alice learns of it
        assert await read_offers(alice, 89) == list(range(80, 90)) and alice.resumes == 2
        await alice.send("answer", "after", [bob.peer_id])
        assert (await bob.recv_event("answer"))["data"] == "after"  # bob saw no left
        await alice.close(), await bob.close()


async def test_the_python_client_counts_neither_pong_nor_the_gateways_answers(
        start_server: ServerFactory) -> None:
    """``pong`` and the gateway's ``Invalid JSON`` / ``Invalid message`` never passed the
    room: counted, they would make the client say too many, and lose frames."""
    server = await start_server()
    async with alice_through_a_proxy(server) as (proxy, alice, bob):
        assert alice._connection is not None
        for text in ("ping", "not json", '{"event": "joined"}', "ping"):
            await alice._connection.send(text)
        for description in ("Invalid JSON", "Invalid message"):
            assert (await alice.recv_event("error")).data["description"] == description
        await bob.send("offer", 0, [alice.peer_id])
        assert (await alice.recv_event("offer")).data == 0
        assert alice.received == 3  # authenticated, joined, offer 0
        proxy.admitting.clear()
        assert proxy.vanish() == 1
        for n in range(1, 5):
            await bob.send("offer", n, [alice.peer_id])
        await sync(bob)
        proxy.admitting.set()
        assert await read_offers(alice, 4) == [1, 2, 3, 4] and alice.resumes == 1
        await alice.close(), await bob.close()


async def test_the_python_client_counts_a_new_session_from_1(
        start_server: ServerFactory) -> None:
    """Too late to resume (what it missed is no longer kept): admitted afresh, the client's
    count starts again with the new session's authenticated."""
    server = await start_server(resume_queue_bytes=1000)
    async with alice_through_a_proxy(server) as (proxy, alice, bob):
        me = alice.peer_id
        proxy.admitting.clear()
        assert proxy.vanish() == 1
        for n in range(10):
            await bob.send("offer", "x" * 200, [me])  # into the half-open socket, past 1000
        await sync(bob)
        proxy.admitting.set()
        hello = asyncio.create_task(alice.recv())
        assert (await bob.recv_event("left"))["data"]["peer_id"] == me
        joined = await bob.recv_event("joined")
        await bob.send("hello", None, "all")
        assert (await hello).event == "hello"
        assert alice.peer_id == joined["data"]["peer_id"] != me and alice.resumes == 0
        assert alice.received == 2  # the new session's authenticated, then hello
        await alice.close(), await bob.close()


async def _away(server: Server, peer_id: str | None, room: str = "demo") -> bool:
    return any(p.peer_id == peer_id and p.away for p in await server.list_peers(room))


async def test_a_resume_past_what_was_sent_is_400_and_one_too_late_joins_afresh(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(resume_queue_bytes=1000)
    url = f"{server.url}/demo"
    a, b = await Client.connect(url), await Client.connect(url)
    await a.recv_event("joined")
    token = a.welcome["resume_token"]
    a.connection.transport.abort()
    await until(lambda: _away(server, a.peer_id))
    # authenticated and joined: 2 frames. More is a client's mistake: 400, nothing changes.
    assert await refused_status(f"{url}?resume={token}&received=3") == 400
    for n in range(4):
        await b.send("offer", "x" * 100, [a.peer_id])  # kept: ~900 bytes since the drop
    back = await Client.connect(f"{url}?resume={token}&received=2", authenticate=False)
    assert (await back.authenticated())["resumed"] is True and back.peer_id == a.peer_id
    assert [(await back.recv_event("offer"))["data"] for _ in range(4)] == ["x" * 100] * 4
    # Live again: more than the bound goes by; frame 3 on is then no longer kept.
    for n in range(10):
        await b.send("offer", "y" * 150, [a.peer_id])
    for _ in range(10):
        await back.recv_event("offer")
    token = back.welcome["resume_token"]
    back.connection.transport.abort()
    await until(lambda: _away(server, a.peer_id))
    fresh = await Client.connect(f"{url}?resume={token}&received=2", authenticate=False)
    assert (await fresh.authenticated())["resumed"] is False and fresh.peer_id != a.peer_id
    assert (await b.recv_event("left"))["data"]["peer_id"] == a.peer_id  # as an overflow
    assert (await b.recv_event("joined"))["data"]["peer_id"] == fresh.peer_id
    await fresh.close(), await b.close()


async def test_a_peer_sent_far_more_than_the_bound_keeps_the_bound_in_each_mode(
        start_server_each_mode: ServerFactory) -> None:
    """Sent 20 times the bound, a peer keeps the frames that fit in it, and no older: a
    resume that asks for the last 8 gets them, one that asks for the last 10 (past the bound)
    finds them gone."""
    server = await start_server_each_mode(resume_queue_bytes=10_000)
    url = f"{server.url}/demo"
    a, b = await Client.connect(url), await Client.connect(url)
    await a.recv_event("joined")
    for n in range(200):
        await b.send("offer", f"{n:04}" + "x" * 1000, [a.peer_id])  # ~1,100 bytes a frame
    for n in range(200):
        assert (await a.recv_event("offer"))["data"].startswith(f"{n:04}")
    count = 202  # authenticated, joined, 200 offers
    # Half-open: the server still holds a's connection; the resume closes it.
    back = await Client.connect(f"{url}?resume={a.welcome['resume_token']}&received={count - 8}",
                                authenticate=False)
    assert (await back.authenticated())["resumed"] is True
    assert [(await back.recv_event("offer"))["data"][:4] for _ in range(8)] == \
        [f"{n:04}" for n in range(192, 200)]
    await nothing_more(back)  # nothing older than 192 came
    again = await Client.connect(
        f"{url}?resume={back.welcome['resume_token']}&received={count - 10}",
        authenticate=False)
    assert (await again.authenticated())["resumed"] is False  # frame 193 is gone: afresh
    assert (await b.recv_event("left"))["data"]["peer_id"] == a.peer_id
    await again.close(), await b.close()


async def nothing_more(client: Client) -> None:
    """No frame waits for ``client`` (the answer to a ping sent now comes first)."""
    await client.send_text("ping")
    assert await client.recv_text() == "pong"


# -- several hosts: the peer's gateway is killed while its room-mate sends -----------------------


@pytest.mark.slow  # three serve processes
async def test_a_peer_of_a_killed_gateway_resumes_through_another_with_every_frame(
        deployment: Deployment) -> None:  # noqa: F811
    """A leader with a gateway, a room host, a second gateway (each a ``membrane-rtc serve``
    process). Alice is on the second gateway, Bob on the leader's; the second gateway's
    process is SIGKILLed while Bob sends. Until the supervisor takes that gateway for lost,
    the room goes on writing to it; Alice resumes through the leader's gateway with her
    token and her count, and gets every offer exactly once, in order."""
    leader = await deployment.start("leader", "leader", "gateway")
    await deployment.start("hostB", "rooms", ready="serving as")
    await deployment.admin("create", "call")
    await until(lambda: deployment.room_running_on("call", "hostB"), timeout=30)
    gateway_d = await deployment.start("gatewayD", "gateway")
    alice = SignalingClient(f"{gateway_d.url}/call", timeout=30)
    await alice.connect()
    bob = await Client.connect(f"{leader.url}/call")
    await alice.recv_event("joined", timeout=10)
    me = alice.peer_id
    for n in range(10):
        await bob.send("offer", n, [me])
    got = await read_offers(alice, 4)

    gateway_d_actors = os.getpgid(listening_pid(deployment.ports["gatewayD"]))
    os.kill(gateway_d.pid, signal.SIGKILL)  # its actor system follows it
    await wait_until_no_process_in(gateway_d_actors, timeout=10)
    for n in range(10, 30):
        await bob.send("offer", n, [me])
    await sync(bob)  # the room wrote 5..29 to the dead gateway

    async def keep_sending() -> None:  # while alice resumes
        for n in range(30, 60):
            await bob.send("offer", n, [me])
    sending = asyncio.create_task(keep_sending())
    alice.url = f"{leader.url}/call"  # her gateway is gone: another one
    got += await read_offers(alice, 59)
    await sending
    assert got == list(range(60)) and (alice.peer_id, alice.resumes) == (me, 1)
    await alice.send("answer", "through the leader", [bob.peer_id])
    assert (await bob.recv_event("answer", timeout=10))["data"] == "through the leader"
    await alice.close(), await bob.close()


# -- client.js, in Chromium ----------------------------------------------------------------------

#: A SignalingClient of /client.js through the proxy, recording the offers it gets and the
#: count it had when its connection dropped.
JOIN = """async (port) => {
  const { SignalingClient } = await import("/client.js");
  const client = new SignalingClient(`ws://127.0.0.1:${port}/webrtc/demo`, { keepalive: 0 });
  Object.assign(window, { client, got: [], resumes: 0, countAtDrop: null });
  client.addEventListener("message", (e) => {
    if (e.detail.event === "offer") window.got.push(e.detail.data);
  });
  client.addEventListener("reconnecting", () => { window.countAtDrop ??= client.received; });
  client.addEventListener("resumed", () => { window.resumes += 1; });
  return await client.connect();
}"""


@pytest.mark.slow  # drives chromium
async def test_client_js_counts_and_resumes_with_received_losing_nothing(
        start_server: ServerFactory, browser: BrowserContext) -> None:  # noqa: F811
    """A page's socket drops while its room-mate sends; the offers written into the
    server's half-open side come again after the page resumes with ``received=N``."""
    server = await start_server()
    proxy = CuttingProxy(server.port)
    port = await proxy.start()
    try:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{server.port}/client.js")
        me = await page.evaluate(JOIN, port)
        bob = await Client.connect(f"{server.url}/demo")
        for n in range(10):
            await bob.send("offer", n, [me])
        await page.wait_for_function("() => window.got.length === 10", timeout=WAIT_MS)
        proxy.admitting.clear()  # the page's network stays down while bob sends
        assert proxy.vanish() == 1
        await page.wait_for_function("() => window.countAtDrop !== null", timeout=WAIT_MS)
        for n in range(10, 30):
            await bob.send("offer", n, [me])
        await sync(bob)  # 10..29 went into the server's half-open connection
        proxy.admitting.set()
        await page.wait_for_function("() => window.got.length >= 30", timeout=WAIT_MS)
        assert await page.evaluate("window.got") == list(range(30))
        state = await page.evaluate("""() => ({
            resumes: window.resumes, peerId: window.client.peerId, atDrop: window.countAtDrop,
            sent: new URL(window.client.socket.url).searchParams.get("received")})""")
        # authenticated, bob's joined, 10 offers: what the page counted and said.
        assert state == {"resumes": 1, "peerId": me, "atDrop": 12, "sent": "12"}
        await bob.close()
    finally:
        await proxy.stop()
