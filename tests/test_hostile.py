"""Attacks on the gateway, each run against a real ``membrane-rtc serve``: one client must not
hurt the server, its rooms or other clients (docs/reference/protocol.md, "Connecting" and
"Client frames"; docs/reference/configuration.md, "Limits").

The runtime's side of the same attacks (floods, a room that cannot encode, a dead actor
system) is in test_hostile_runtime.py; a peer speaking as the server, in
test_client_spoofing.py; another local user, in test_local_user.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from .support.client import WAIT, Client, http_get, refusal, refused_status
from .support.net import free_port
from .support.process import ServeProcess, run_cli

pytestmark = pytest.mark.slow  # hostile clients against servers run as subprocesses

MODES = ["embedded", "multiproc"]
#: A half-sent websocket request: no blank line ends it.
HALF_REQUEST = b"GET /webrtc/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


def mode_args(mode: str) -> list[str]:
    return ["--actor-system", mode] + (["--admin-port", str(free_port())]
                                       if mode == "multiproc" else [])


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    """Start ``membrane-rtc serve ARGS`` (on a free port); every one is stopped after."""
    started: list[ServeProcess] = []

    async def start(*args: str) -> ServeProcess:
        server = await ServeProcess.start("--port", "0", *args)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def pair(server: ServeProcess) -> tuple[Client, Client]:
    """Two peers of room demo, the first told the second joined."""
    first = await Client.connect(f"{server.url}/demo")
    second = await Client.connect(f"{server.url}/demo")
    await first.recv_event("joined")
    return first, second


def address(url: str) -> tuple[str, int]:
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    return host, int(port)


async def raw_request(url: str, request: bytes) -> bytes:
    """Send raw bytes as a request; return the first line of the answer (b"" if none)."""
    reader, writer = await asyncio.open_connection(*address(url))
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), WAIT)
        return answer.split(b"\r\n", 1)[0]
    finally:
        writer.close()


async def marker_after(client: Client, sender: Client, until: str = "marker") -> list[dict[str, Any]]:
    """Everything ``client`` receives until ``sender``'s marker reaches it (bounded)."""
    await sender.send(until, to=[client.peer_id])
    frames = []
    while (frame := await client.recv())["event"] != until:
        frames.append(frame)
    return frames


# -- 1. a frame nested a thousand deep -------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
async def test_deep_nesting_is_refused_and_the_server_serves_on(serve: Any, mode: str) -> None:
    server = await serve(*mode_args(mode))
    attacker, victim = await pair(server)
    for depth in (33, 600, 5000):
        await attacker.send_text('{"event":"x","to":"all","data":' + "[" * depth + "]" * depth
                                 + "}")
        error = await attacker.recv_event("error")
        assert error["data"] == {"description": "Invalid message", "details": None}
    # Nothing of it reached the room-mate, and the room still forwards; the server is whole.
    assert await marker_after(victim, attacker) == []
    await attacker.send("ok", [[[["fine"]]]], to=[victim.peer_id])
    assert (await victim.recv_event("ok"))["data"] == [[[["fine"]]]]
    base = server.url.rsplit("/", 1)[0].replace("ws://", "http://")
    assert (await http_get(f"{base}/healthz"))[0] == 200
    assert (await http_get(f"{base}/readyz"))[0] == 200
    await Client.connect(f"{server.url}/demo")  # new clients still get in


# -- 2. a flood of messages from one peer ----------------------------------------------------

async def test_a_peer_past_its_message_rate_is_slowed_then_closed_with_1008(serve: Any) -> None:
    server = await serve("--peer-messages-per-second", "20", "--peer-message-burst", "20")
    peer, mate = await pair(server)
    # A burst, and a little over it: throttled (read more slowly), not closed; nothing lost.
    for n in range(25):
        await peer.send("candidate", n, to=[mate.peer_id])
    assert [(await mate.recv_event("candidate"))["data"] for _ in range(25)] == list(range(25))
    # A flood: closed with 1008 once it goes a whole burst past the throttle.
    flooder = await Client.connect(f"{server.url}/demo")
    frame = json.dumps({"event": "spam", "to": None})  # to nobody: only the room sees it
    try:
        for _ in range(2000):
            await flooder.send_text(frame)
    except websockets.ConnectionClosed:
        pass  # the close frame came while it still sent
    assert await flooder.closed() == 1008
    assert flooder.connection.close_reason == "message rate exceeded"
    await server.log_line("peer_message_rate_exceeded")
    # The others carry on.
    await mate.send("answer", "still here", to=[peer.peer_id])
    frames = [await peer.recv() for _ in range(3)]
    assert {"event": "answer", "data": "still here", "from": mate.peer_id,
            "to": [peer.peer_id]} in frames


# -- 5. half-open handshakes -----------------------------------------------------------------

async def test_half_sent_requests_are_closed_and_count_toward_the_connection_limit(
        serve: Any) -> None:
    server = await serve("--handshake-timeout", "1", "--max-connections", "10",
                         "--max-connections-per-ip", "0")
    host, port = address(server.url)
    loop = asyncio.get_running_loop()
    half: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for _ in range(10):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(HALF_REQUEST)
        half.append((reader, writer))
    await asyncio.gather(*(writer.drain() for _, writer in half))
    # They hold every place: a complete client is turned away while they are there ...
    assert await refused_status(f"{server.url}/demo") == 503
    # ... and each is closed by the server within the handshake timeout (EOF, no answer).
    started = loop.time()
    answers = await asyncio.gather(*(asyncio.wait_for(reader.read(), 3 * WAIT)
                                     for reader, _ in half))
    assert answers == [b""] * 10 and loop.time() - started < 3 * WAIT
    for _, writer in half:
        writer.close()
    await Client.connect(f"{server.url}/demo")  # the places are free again


# -- 6. per-address caps, and the address behind a proxy --------------------------------------

async def test_one_address_holds_at_most_its_share_of_connections(serve: Any) -> None:
    server = await serve("--max-connections-per-ip", "4", "--joins-per-second", "0")
    clients = [await Client.connect(f"{server.url}/demo", max_queue=None) for _ in range(4)]
    refused = await refusal(f"{server.url}/demo")
    assert refused.response.status_code == 429
    # Sockets that have not even sent a request count too, and are answered at once.
    host, port = address(server.url)
    await clients.pop().close()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(HALF_REQUEST)
    assert (await raw_request(server.url, HALF_REQUEST)).startswith(b"HTTP/1.1 429")
    writer.close()
    await server.log_line("too many connections from this address")


async def test_behind_a_trusted_proxy_each_client_has_its_own_share(serve: Any) -> None:
    server = await serve("--trusted-proxy", "127.0.0.1/32", "--max-connections-per-ip", "2",
                         "--joins-per-second", "0")
    url = f"{server.url}/demo"

    def via_proxy(chain: str) -> dict[str, Any]:
        return {"additional_headers": {"X-Forwarded-For": chain}, "max_queue": None}

    first = [await Client.connect(url, **via_proxy("203.0.113.7")) for _ in range(2)]
    assert await refused_status(url, **via_proxy("203.0.113.7")) == 429
    # A client cannot pick its own address: what it writes left of the proxy's hop is its
    # own word; the rightmost untrusted hop is what counts.
    assert await refused_status(url, **via_proxy("198.51.100.1, 203.0.113.7")) == 429
    await Client.connect(url, **via_proxy("203.0.113.8"))  # another client: its own share
    assert len(first) == 2
    await server.log_line("remote='203.0.113.7'")
    # The Forwarded header (RFC 7239) works the same, IPv6 keyed by its /64.
    v6 = {"additional_headers": {"Forwarded": 'for="[2001:db8:1:2::1]:4711"'},
          "max_queue": None}
    await Client.connect(url, **v6)
    await Client.connect(url, additional_headers={"Forwarded": 'for="[2001:db8:1:2::99]"'})
    assert await refused_status(url, additional_headers={
        "Forwarded": "for=\"[2001:db8:1:2:ffff::5]\""}) == 429


async def test_without_a_trusted_proxy_forwarded_headers_are_ignored(serve: Any) -> None:
    server = await serve("--max-connections-per-ip", "2", "--joins-per-second", "0")
    url = f"{server.url}/demo"
    for n in range(2):
        await Client.connect(url, additional_headers={"X-Forwarded-For": f"203.0.113.{n}"},
                             max_queue=None)
    assert await refused_status(url, additional_headers={
        "X-Forwarded-For": "203.0.113.99"}) == 429


# -- 7. one frame multiplied -----------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
async def test_an_addressee_named_many_times_gets_the_frame_once(serve: Any, mode: str) -> None:
    server = await serve(*mode_args(mode))
    sender, victim = await pair(server)
    await sender.send("offer", "x" * 1000, to=[victim.peer_id] * 500)
    frames = await marker_after(victim, sender)
    assert [frame["event"] for frame in frames] == ["offer"]
    assert frames[0]["to"] == [victim.peer_id]
    await sender.send("offer", to=[f"peer-{n}" for n in range(1001)])
    assert (await sender.recv_event("error"))["data"]["description"] == "Invalid message"


# -- 8. admission order ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
async def test_a_request_that_cannot_be_upgraded_never_joins(serve: Any, mode: str) -> None:
    server = await serve(*mode_args(mode))
    member = await Client.connect(f"{server.url}/demo")
    no_key = (b"GET /webrtc/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert (await raw_request(server.url, no_key)).startswith(b"HTTP/1.1 400")
    # The next thing the member hears of is a real newcomer, not a phantom.
    newcomer = await Client.connect(f"{server.url}/demo")
    assert (await member.recv_event("joined"))["data"]["peer_id"] == newcomer.peer_id
    await server.log_line("not a websocket handshake")


@pytest.mark.parametrize("mode", MODES)
async def test_refused_clients_leave_no_room_created_on_demand(serve: Any, mode: str) -> None:
    args = [*mode_args(mode), "--auto-create", "--peer-class", "actors.token:TokenPeer",
            "--peer-options", '{"token": "s3cret"}', "--joins-per-second", "0"]
    server = await serve(*args)
    port = ["--port", server.url.split(":")[2].split("/")[0]]
    for n in range(40):
        assert await refused_status(f"{server.url}/attack{n}?token=wrong") == 401
    # Every room made for a refused client is gone at once; the names are free.
    status, out, err = await run_cli("admin", "list", "--json", *port, *admin(args))
    assert status == 0, err
    assert [room["name"] for room in json.loads(out)] == ["demo"]
    # A welcome client still creates its room, which stays.
    welcome = await Client.connect(f"{server.url}/attack1?token=s3cret")
    status, out, _ = await run_cli("admin", "list", "--json", *port, *admin(args))
    assert sorted(room["name"] for room in json.loads(out)) == ["attack1", "demo"]
    await welcome.close()


def admin(args: list[str]) -> list[str]:
    """The ``--admin-port`` flag a multi-process server was started with, for ``admin``."""
    return args[args.index("--admin-port"):][:2] if "--admin-port" in args else []


# -- 10. malformed requests ------------------------------------------------------------------

MALFORMED = {
    "two Upgrade headers": b"GET /webrtc/demo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                           b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           b"Sec-WebSocket-Version: 13\r\n\r\n",
    "two Origin headers": b"GET /webrtc/demo HTTP/1.1\r\nHost: x\r\nOrigin: http://a\r\n"
                          b"Origin: http://b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n",
    "target //[x": b"GET //[x HTTP/1.1\r\nHost: x\r\n\r\n",
    "a raw space in the target": b"GET /webrtc/de mo HTTP/1.1\r\nHost: x\r\n\r\n",
    "an absolute target": b"GET http://x/webrtc/demo HTTP/1.1\r\nHost: x\r\n\r\n",
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
}


async def test_malformed_requests_get_400_and_one_log_line_each(serve: Any) -> None:
    server = await serve("--joins-per-second", "0")
    for name, request in MALFORMED.items():
        assert (await raw_request(server.url, request)).startswith(b"HTTP/1.1 400"), name
    await Client.connect(f"{server.url}/demo")  # the server serves on
    lines = [line for line in server.stderr if "status=400" in line]
    assert len(lines) == len(MALFORMED), lines
    assert not [line for line in server.stderr if "Traceback" in line or "ERROR" in line]


async def test_a_request_with_oversized_headers_gets_431_and_one_log_line(serve: Any) -> None:
    """A Forwarded or X-Forwarded-For of thousands of hops cannot make the server walk them:
    headers past websockets' 8 KiB line limit are answered before anyone reads them."""
    server = await serve("--trusted-proxy", "127.0.0.1/32")
    hops = ", ".join(f"203.0.{n // 256}.{n % 256}" for n in range(3000))
    request = (b"GET /webrtc/demo HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: " + hops.encode()
               + b"\r\n\r\n")
    assert (await raw_request(server.url, request)).startswith(b"HTTP/1.1 431")
    await server.log_line("status=431")
    await Client.connect(f"{server.url}/demo")  # the server serves on
