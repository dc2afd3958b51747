"""Resuming after a drop, over real sockets, in both actor-system modes.

A drop is a TCP connection that ends without a close frame (``transport.abort()``: what a
network change looks like to the server). A client leaving on purpose sends a close frame and
leaves at once, as before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import pytest

from membrane_rtc import Server, ServerConfig
from membrane_rtc.config_checks import ConfigError

from .conftest import ServerFactory
from .support.client import Client, refused_status
from .support.recording import RECORD
from .support.waiting import until


async def drop(client: Client) -> None:
    """Cut the client's connection without a close frame, as a lost network does."""
    transport = client.connection.transport
    transport.abort()
    await client.connection.wait_closed()


async def away(server: Server, room: str, peer_id: str, state: bool = True) -> None:
    """Wait until the room holds ``peer_id`` as away (or, ``state`` False, as connected)."""
    async def holds() -> bool:
        return any(p.peer_id == peer_id and p.away == state
                   for p in await server.list_peers(room))
    await until(holds)


async def resume(url: str, token: str) -> Client:
    client = await Client.connect(f"{url}?resume={token}", authenticate=False)
    await client.authenticated()
    return client


async def two_peers(server: Server) -> tuple[str, Client, Client]:
    """The demo room's URL and two clients in it (``a`` has read that ``b`` joined)."""
    url = f"{server.url}/demo"
    a, b = await Client.connect(url), await Client.connect(url)
    await a.recv_event("joined")
    return url, a, b


async def nothing_pending(client: Client) -> None:
    """The next thing the client receives is the answer to a ping sent now: no frame (no
    ``left``, no ``joined``) is waiting before it."""
    await client.send_text("ping")
    assert await client.recv_text() == "pong"


async def test_a_dropped_peer_resumes_with_its_id_and_what_it_missed(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    url = f"{server.url}/demo"
    a, b = await Client.connect(url), await Client.connect(url)
    assert (await a.recv_event("joined"))["data"] == {"peer_id": b.peer_id}
    token = a.welcome["resume_token"]
    assert a.welcome["resumed"] is False and len(token) > 40
    await drop(a)
    await away(server, "demo", a.peer_id or "")
    for n in range(3):
        await b.send("offer", {"n": n}, [a.peer_id])
    await b.send("note", "to all", "all")
    back = await resume(url, token)
    assert back.peer_id == a.peer_id and back.welcome["resumed"] is True
    assert back.welcome["resume_token"] != token
    missed = [await back.recv() for _ in range(4)]
    assert [(f["event"], f["data"], f["from"]) for f in missed] == [
        ("offer", {"n": 0}, b.peer_id), ("offer", {"n": 1}, b.peer_id),
        ("offer", {"n": 2}, b.peer_id), ("note", "to all", b.peer_id)]
    await nothing_pending(b)  # b saw no left and no joined
    await back.send("answer", "hi", [b.peer_id])
    assert (await b.recv_event("answer"))["from"] == a.peer_id
    await away(server, "demo", a.peer_id or "", state=False)

    # The token was spent: using it again admits a new peer, whom b sees join.
    again = await resume(url, token)
    assert again.peer_id != a.peer_id and again.welcome["resumed"] is False
    assert (await b.recv_event("joined"))["data"]["peer_id"] == again.peer_id
    for client in (back, b, again):
        await client.close()


async def test_a_peer_that_does_not_come_back_leaves_when_its_grace_ends(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(resume_grace=0.5)
    url, a, b = await two_peers(server)
    await drop(a)
    assert (await b.recv_event("left"))["data"]["peer_id"] == a.peer_id
    late = await resume(url, a.welcome["resume_token"])  # expired: admitted afresh
    assert late.peer_id != a.peer_id and late.welcome["resumed"] is False
    assert (await b.recv_event("joined"))["data"]["peer_id"] == late.peer_id
    forged = await resume(url, f"{b.peer_id}.{'A' * 32}")  # b's id, not b's token
    assert forged.peer_id not in (b.peer_id, a.peer_id) and forged.welcome["resumed"] is False
    await late.close(), await forged.close(), await b.close()


async def test_a_client_that_closes_leaves_at_once(start_server: ServerFactory) -> None:
    server = await start_server()
    url, a, b = await two_peers(server)
    await b.close()  # a close frame: on purpose, no grace
    assert (await a.recv_event("left"))["data"]["peer_id"] == b.peer_id
    await a.close()


async def test_a_queue_past_its_bound_ends_the_grace(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(resume_queue_bytes=1000)
    url, a, b = await two_peers(server)
    await drop(a)
    await away(server, "demo", a.peer_id or "")
    await b.send("offer", "x" * 600, [a.peer_id])  # kept
    await nothing_pending(b)
    await b.send("offer", "x" * 600, [a.peer_id])  # past 1000 bytes: a leaves
    assert (await b.recv_event("left"))["data"]["peer_id"] == a.peer_id
    fresh = await resume(url, a.welcome["resume_token"])
    assert fresh.peer_id != a.peer_id
    await fresh.close(), await b.close()


async def test_grace_zero_is_membranes_behaviour(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(resume_grace=0)
    url = f"{server.url}/demo"
    a, b = await Client.connect(url), await Client.connect(url)
    assert a.welcome == {} and b.welcome == {}  # authenticated is Membrane's {"peer_id"}
    await a.recv_event("joined")
    await drop(a)
    assert (await b.recv_event("left"))["data"]["peer_id"] == a.peer_id
    c = await resume(url, f"{a.peer_id}.anything")
    assert c.peer_id != a.peer_id
    await c.close(), await b.close()


async def test_a_resume_closes_the_old_half_open_connection(
        start_server_each_mode: ServerFactory) -> None:
    """After a network change the server may still hold the old socket: the resume wins."""
    server = await start_server_each_mode()
    url, a, b = await two_peers(server)
    back = await resume(url, a.welcome["resume_token"])
    assert back.peer_id == a.peer_id
    assert await a.closed() == 1000
    assert a.connection.close_reason == "resumed on another connection"
    await b.send("offer", 1, [a.peer_id])
    assert (await back.recv_event("offer"))["data"] == 1
    await nothing_pending(b)
    await back.close(), await b.close()


async def test_the_room_hears_of_the_drop_and_the_return(start_server: ServerFactory) -> None:
    server = await start_server({"rec": ("tests.support.recording:RecordingRoom", None)})
    url = f"{server.url}/rec"
    a = await Client.connect(url)
    await drop(a)
    back = await resume(url, a.welcome["resume_token"])
    room = "room:rec"
    calls = await RECORD.until(lambda c: (room, "on_resume", a.peer_id) in c)
    names = [c[1] for c in calls if c[0] == room and c[1] != "on_forward"]
    assert names == ["on_init", "on_join", "on_disconnect", "on_resume"]
    await back.close()
    await RECORD.until(lambda c: (room, "on_leave", a.peer_id) in c)


async def test_public_metadata_reaches_room_mates(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(peer_class="tests.support.named_peer:NamedPeer")
    url = f"{server.url}/demo"
    ada = await Client.connect(f"{url}?name=Ada")
    assert ada.welcome["metadata"] == {"name": "Ada"}
    bob = await Client.connect(f"{url}?name=Bob")
    assert (await ada.recv_event("joined"))["data"] == {"peer_id": bob.peer_id,
                                                        "metadata": {"name": "Bob"}}
    anonymous = await Client.connect(url)  # no metadata: Membrane's joined
    assert (await ada.recv_event("joined"))["data"] == {"peer_id": anonymous.peer_id}
    assert await refused_status(f"{url}?name=Eve&pad=5000") == 401  # past the size bound
    for client in (ada, bob, anonymous):
        await client.close()


def _turn(settings: dict[str, Any]) -> dict[str, Any]:
    return {"turn_secret": "s3cret", "turn_urls": ["turn:127.0.0.1:3478?transport=udp"],
            "stun_urls": ["stun:127.0.0.1:3478"], "turn_ttl": 600, **settings}


async def test_ice_servers_are_handed_out_and_renewed_on_resume(
        start_server: ServerFactory) -> None:
    server = await start_server(**_turn({}))
    url = f"{server.url}/demo"
    before = int(time.time())
    a = await Client.connect(url)
    turn, stun = a.welcome["ice_servers"]
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
    expiry, _, peer = turn["username"].partition(":")
    assert peer == a.peer_id and before + 600 <= int(expiry) <= int(time.time()) + 600
    expected = hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(turn["credential"]) == expected
    await drop(a)
    await away(server, "demo", a.peer_id or "")
    back = await resume(url, a.welcome["resume_token"])
    assert back.welcome["ice_servers"][0]["username"].endswith(f":{a.peer_id}")
    await back.close()


@pytest.mark.parametrize("settings, flag", [
    ({"turn_secret": "s"}, "turn_secret"),
    ({"turn_urls": ["turn:x"]}, "turn_secret"),
    ({"turn_secret": "s", "turn_urls": ["http://x"]}, "turn_urls"),
    ({"stun_urls": ["turn:x"]}, "stun_urls"),
    ({"resume_grace": -1}, "resume_grace"),
    ({"resume_queue_bytes": 0}, "resume_queue_bytes"),
])
def test_bad_network_settings_are_refused(settings: dict[str, Any], flag: str) -> None:
    with pytest.raises(ConfigError) as error:
        ServerConfig(**settings).validate()
    assert error.value.field == flag
