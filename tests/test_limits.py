"""Every limit of docs/reference/configuration.md: its clear answer, and nobody else disturbed."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import websockets

from membrane_rtc import ServerError

from .conftest import ServerFactory
from .support.client import WAIT, Client, refusal, refused_status
from .support.waiting import expect_room_closed, until

HANGING = "tests.support.hanging:HangingRoom"
DEFAULT = "actors.default:DefaultRoom"


async def talk(a: Client, b: Client, event: str = "offer") -> None:
    """``a`` sends ``b`` a message and ``b`` gets it: the room serves."""
    await a.send(event, {"sdp": "x"}, to=[b.peer_id])
    frame = await b.recv()
    while frame["event"] in ("joined", "left"):  # others coming and going meanwhile
        frame = await b.recv()
    assert frame["event"] == event and frame["from"] == a.peer_id, frame


async def test_max_peers_per_room_refuses_the_next_join(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(max_peers_per_room=2)
    a = await Client.connect(f"{server.url}/demo")
    b = await Client.connect(f"{server.url}/demo")
    third = await Client.connect(f"{server.url}/demo", authenticate=False)
    frame = await third.recv_event("error")
    assert frame["data"] == {"description": "Could not join room", "details": "room_is_full"}
    assert await third.closed() == 1000
    await a.recv_event("joined")
    await talk(a, b)  # the members did not notice


async def test_max_rooms_refuses_one_more_until_one_is_stopped(start_server: ServerFactory) -> None:
    server = await start_server(max_rooms=2)
    await server.create_room("second", DEFAULT)
    with pytest.raises(ServerError, match="limit of 2 rooms"):
        await server.create_room("third", DEFAULT)
    assert [r.name for r in await server.list_rooms()] == ["demo", "second"]
    await server.stop_room("second")
    await server.create_room("third", DEFAULT)


async def test_max_connections_answers_503_and_frees_with_a_close(start_server: ServerFactory) -> None:
    server = await start_server(max_connections=2)
    a = await Client.connect(f"{server.url}/demo")
    b = await Client.connect(f"{server.url}/demo")
    assert await refused_status(f"{server.url}/demo") == 503
    await talk(a, b)
    await a.close()
    assert server.gateway is not None
    await until(lambda: _true(len(server.gateway.connections) < 2))  # type: ignore[union-attr]
    c = await Client.connect(f"{server.url}/demo")
    await talk(c, b)


async def _true(value: bool) -> bool:
    return value


async def test_join_rate_per_address_answers_429_with_retry_after(start_server: ServerFactory) -> None:
    server = await start_server(joins_per_second=0.5, join_burst=3)
    clients = [await Client.connect(f"{server.url}/demo") for _ in range(3)]
    refused = await refusal(f"{server.url}/demo")
    assert refused.response.status_code == 429
    assert int(refused.response.headers["Retry-After"]) >= 1
    # Another client address is not affected (127.0.0.2 is loopback too).
    other = await Client.connect(f"{server.url}/demo", local_addr=("127.0.0.2", 0))
    await talk(other, clients[0])


async def test_allowed_origins_refuse_others_with_403(start_server: ServerFactory) -> None:
    server = await start_server(allowed_origins=["https://good.example"])
    refused = await refusal(f"{server.url}/demo", origin="https://evil.example")
    assert refused.response.status_code == 403
    good = await Client.connect(f"{server.url}/demo", origin="https://good.example")
    no_origin = await Client.connect(f"{server.url}/demo")  # not a browser
    await talk(good, no_origin)


#: A room whose callbacks hang on request, next to an ordinary one.
HANGING_AND_OTHER = {"hangs": (HANGING, None), "other": (DEFAULT, None)}


async def hung_and_a_pair(server: Any) -> tuple[Client, Client, Client]:
    """A client in the hanging room, and two that talk in the other one."""
    hung = await Client.connect(f"{server.url}/hangs")
    a = await Client.connect(f"{server.url}/other")
    b = await Client.connect(f"{server.url}/other")
    await a.recv_event("joined")
    return hung, a, b


async def test_a_busy_python_callback_is_stopped_by_the_time_limit(start_server: ServerFactory) -> None:
    """Embedded: every room shares one thread, so the limit is what keeps the others going."""
    server = await start_server(HANGING_AND_OTHER, callback_timeout=0.5)
    hung, a, b = await hung_and_a_pair(server)
    await hung.send("spin", to="all")
    await expect_room_closed(hung, "room_crashed")
    await talk(a, b)
    await until(lambda: _room_running_again(server, "hangs"))
    again = await Client.connect(f"{server.url}/hangs")
    await again.send("ping-ish", to=[again.peer_id])
    assert (await again.recv_event("ping-ish"))["from"] == again.peer_id


async def _room_running_again(server: Any, name: str) -> bool:
    return any(r.name == name and r.state == "running" and r.restarts == 1
               for r in await server.list_rooms())


async def test_a_callback_blocked_in_c_ends_its_room_process(start_multiproc_server: ServerFactory) -> None:
    """Multi-process: a callback stuck in time.sleep cannot be interrupted, so the watchdog
    ends that room's process; the supervisor restarts it and other rooms go on meanwhile."""
    server = await start_multiproc_server(HANGING_AND_OTHER, callback_timeout=0.5)
    hung, a, b = await hung_and_a_pair(server)
    await hung.send("sleep", to="all")
    for round_ in range(5):  # the other room serves while the hung one is stuck
        await talk(a, b, f"offer-{round_}")
    frame = await hung.recv_event("error", timeout=15)
    assert frame["data"]["description"] == "Room closed"
    await until(lambda: _room_running_again(server, "hangs"), timeout=15)
    await talk(b, a)


async def test_a_hanging_peer_on_init_is_refused_not_stuck(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(peer_class="tests.support.hanging:HangingPeer",
                                          callback_timeout=0.5)
    assert await refused_status(f"{server.url}/demo?hang=1") == 401
    a = await Client.connect(f"{server.url}/demo")
    b = await Client.connect(f"{server.url}/demo")
    await a.recv_event("joined")
    await talk(a, b)


async def test_a_hanging_peer_on_receive_ends_only_that_peer(
        start_server_each_mode: ServerFactory) -> None:
    """Peers run in their room's process: a hung ``Peer`` callback is cut by the time limit
    and ends that peer (1011), not its room nor its room-mates."""
    server = await start_server_each_mode(peer_class="tests.support.hanging:HangingPeer",
                                          callback_timeout=0.5)
    pid = (await server.list_rooms())[0].pid
    a = await Client.connect(f"{server.url}/demo")
    b = await Client.connect(f"{server.url}/demo")
    hung = await Client.connect(f"{server.url}/demo")
    await a.recv_event("joined")
    await a.recv_event("joined")
    await hung.send("spin", to="all")
    assert await hung.closed() == 1011
    assert (await a.recv_event("left"))["data"]["peer_id"] == hung.peer_id
    await talk(a, b)

    async def two_left() -> bool:  # the room reports its occupancy one message later
        [room] = await server.list_rooms()
        return room.peers == 2

    await until(two_left)
    [room] = await server.list_rooms()
    assert (room.pid, room.restarts) == (pid, 0)


async def test_limits_have_cli_flags() -> None:
    from membrane_rtc.ops.cli import build_parser, config_from_args

    args = build_parser().parse_args([
        "serve", "--max-peers-per-room", "3", "--max-rooms", "4", "--max-connections", "5",
        "--joins-per-second", "6", "--join-burst", "7", "--max-outbound-bytes", "8",
        "--allowed-origin", "https://a.example", "--allowed-origin", "https://b.example",
        "--callback-timeout", "9", "--idle-timeout", "10", "--max-message-bytes", "11"])
    config = config_from_args(args)
    assert (config.max_peers_per_room, config.max_rooms, config.max_connections,
            config.joins_per_second, config.join_burst, config.max_outbound_bytes,
            config.allowed_origins, config.callback_timeout, config.idle_timeout,
            config.max_message_bytes) == (3, 4, 5, 6.0, 7, 8,
                                          ["https://a.example", "https://b.example"],
                                          9.0, 10.0, 11)


def _small_receive_buffer_socket() -> socket.socket:
    """A client socket whose kernel buffer holds little: it falls behind sooner."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


FLOOD_FRAMES = 8000
FLOOD_FRAME = 4096  # 32 MB aimed at a client that never reads (the fixed costs of a
# run, a few MB, must stay small beside it)


async def flood_a_reader_that_never_reads(*serve_args: str) -> tuple[int, int | None]:
    """Serve with ``serve_args``, aim ``FLOOD_FRAMES`` frames at a client that never reads;
    return (server RSS growth in KiB at its peak, close code the client got or None)."""
    from .support.process import ServeProcess

    # The sender floods far past any real client: the per-peer message rate is not tested here.
    server = await ServeProcess.start("--port", "0", "--peer-messages-per-second", "0",
                                      *serve_args)
    try:
        sender = await Client.connect(f"{server.url}/demo")
        slow = await websockets.connect(f"{server.url}/demo", max_queue=1,
                                        sock=_connected(server.url))
        slow_id = (await Client(slow).recv_event("authenticated"))["data"]["peer_id"]
        assert (await sender.recv_event("joined"))["data"]["peer_id"] == slow_id
        baseline = peak = rss_kib(server.pid)
        payload = "x" * FLOOD_FRAME
        # The offers go to "all" (the slow reader is the sender's only room-mate): once it is
        # cut, they reach nobody and earn the sender no "No such peer" to read. The sender
        # reads all along and stops once the slow reader has left, as a real client would.
        gone = asyncio.Event()

        async def read_until_done() -> None:
            while (frame := await sender.recv(timeout=30))["event"] != "done":
                if frame["event"] == "left" and frame["data"]["peer_id"] == slow_id:
                    gone.set()

        reader = asyncio.create_task(read_until_done())
        for sent in range(1, FLOOD_FRAMES + 1):
            if gone.is_set():
                break
            await sender.send("offer", payload, to="all")
            if sent % 100 == 0:
                peak = max(peak, rss_kib(server.pid))
        await sender.send("done", to=[sender.peer_id])  # all handled once this comes back
        await reader
        left = gone.is_set()
        peak = max(peak, rss_kib(server.pid))
        if not left:
            slow.transport.abort()  # the control run: the server kept everything for it
            return peak - baseline, None
        # Cut off: what the client finally reads ends with the server's close frame.
        with pytest.raises(websockets.ConnectionClosedError):
            async with asyncio.timeout(WAIT):
                async for _ in slow:
                    pass
        assert slow.close_reason == "slow reader"
        await server.log_line("slow_reader_closed")
        return peak - baseline, slow.close_code
    finally:
        await server.stop()


@pytest.mark.slow  # fills a client's buffers
async def test_a_slow_reader_is_cut_off_with_1008_and_memory_stays_flat() -> None:
    """Side by side: with no limit the server buffers the whole flood for a client that never
    reads; with the limit the client is closed with 1008, its room sees it leave, and the
    server's memory does not grow with the flood."""
    unlimited, code = await flood_a_reader_that_never_reads("--max-outbound-bytes", "0")
    assert code is None and unlimited > 4 * 1024, unlimited  # the measure sees buffering
    limited, code = await flood_a_reader_that_never_reads("--max-outbound-bytes", "262144")
    assert code == 1008
    assert limited < unlimited / 4, f"RSS growth (KiB): {limited} limited, {unlimited} unlimited"


def _connected(url: str) -> socket.socket:
    host, port = url.split("//")[1].split("/")[0].split(":")
    sock = _small_receive_buffer_socket()
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock
