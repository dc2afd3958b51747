"""docs/reference/protocol.md row by row, over real websocket connections to an in-process server."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from membrane_rtc import Message, ServerError

from .conftest import ServerFactory
from .support.client import Client, refused_status
from .support.recording import RECORD

RECORDING_ROOM = "tests.support.recording:RecordingRoom"
RECORDING_PEER = "tests.support.recording:RecordingPeer"


async def marker_arrives_next(receiver: Client, sender: Client) -> None:
    """Prove ``receiver`` got nothing else: a marker sent now must be its very next frame."""
    await sender.send("marker", None, [receiver.peer_id])
    frame = await receiver.recv()
    assert frame["event"] == "marker", f"unexpected frame before the marker: {frame}"


# --- before the upgrade -----------------------------------------------------------------------

async def test_path_outside_the_prefix_is_400(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    base = f"ws://127.0.0.1:{server.port}"
    assert await refused_status(f"{base}/elsewhere/demo") == 400
    assert await refused_status(f"{base}/webrtc/") == 400
    assert await refused_status(f"{base}/webrtc/demo/extra") == 400


async def test_unknown_room_is_404(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    assert await refused_status(f"{server.url}/nowhere") == 404


async def test_room_name_is_url_decoded(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode({"my room": ("actors.default:DefaultRoom", None)})
    client = await Client.connect(f"{server.url}/my%20room")
    assert [peer.peer_id for peer in await server.list_peers("my room")] == [client.peer_id]
    await client.close()


async def test_on_init_raising_is_401_and_a_good_token_gets_in(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(peer_class="actors.token:TokenPeer",
                                peer_options={"token": "s3cret"})
    assert await refused_status(f"{server.url}/demo?token=wrong") == 401
    assert await refused_status(f"{server.url}/demo") == 401
    client = await Client.connect(f"{server.url}/demo?token=s3cret")
    await client.close()


async def test_parse_request_raising_is_400(start_server_each_mode: ServerFactory, tmp_path) -> None:
    source = tmp_path / "strict_peer.py"
    source.write_text(
        "from membrane_rtc import Peer\n"
        "class StrictPeer(Peer):\n"
        "    @classmethod\n"
        "    def parse_request(cls, request):\n"
        "        creds, meta, room = super().parse_request(request)\n"
        "        if 'user' not in creds:\n"
        "            raise ValueError('who are you?')\n"
        "        return creds, meta, room\n")
    server = await start_server_each_mode(peer_class=f"{source}:StrictPeer")
    assert await refused_status(f"{server.url}/demo") == 400
    client = await Client.connect(f"{server.url}/demo?user=ann")
    await client.close()


# --- joining and leaving ----------------------------------------------------------------------

async def test_join_authenticates_and_tells_the_others_and_leave_tells_them_too(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    assert await alice.recv() == {"event": "joined", "data": {"peer_id": bob.peer_id},
                                  "from": bob.peer_id, "to": "all"}
    assert alice.peer_id != bob.peer_id
    await bob.close()
    assert await alice.recv() == {"event": "left", "data": {"peer_id": bob.peer_id},
                                  "from": None, "to": "all"}


async def test_refused_join_gets_the_reason_then_the_socket_closes(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode({"duo": ("actors.capped:CappedRoom", {"max_peers": 2})})
    first = await Client.connect(f"{server.url}/duo")
    second = await Client.connect(f"{server.url}/duo")
    await first.recv_event("joined")
    third = await Client.connect(f"{server.url}/duo", authenticate=False)
    frame = await third.recv()
    assert frame["event"] == "error"
    assert frame["data"] == {"description": "Could not join room", "details": "room_is_full"}
    assert await third.closed() == 1000
    # The refused peer never joined: nobody hears of it, and the room goes on.
    await marker_arrives_next(first, second)
    await second.close()
    await first.recv_event("left")
    fourth = await Client.connect(f"{server.url}/duo")
    await first.recv_event("joined")
    await fourth.close()


# --- client frames ----------------------------------------------------------------------------

async def test_text_ping_gets_text_pong(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    client = await Client.connect(f"{server.url}/demo")
    await client.send_text("ping")
    assert await client.recv_text() == "pong"


async def test_not_json_is_invalid_json_with_the_raw_text(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    client = await Client.connect(f"{server.url}/demo")
    await client.send_text("{not json")
    frame = await client.recv()
    assert frame == {"event": "error",
                     "data": {"description": "Invalid JSON", "details": "{not json"},
                     "from": None, "to": [client.peer_id]}


@pytest.mark.parametrize("text", ['["offer"]', '{"data": 1}', '{"event": 7}',
                                  '{"event": "e", "to": "bob"}', '{"event": "e", "to": [3]}'])
async def test_json_that_is_no_message_is_invalid_message(start_server_each_mode: ServerFactory,
                                                          text: str) -> None:
    server = await start_server_each_mode()
    client = await Client.connect(f"{server.url}/demo")
    await client.send_text(text)
    frame = await client.recv()
    assert frame["event"] == "error" and frame["data"]["description"] == "Invalid message"


async def test_from_is_always_the_sender(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    await alice.recv_event("joined")
    await bob.send("offer", {"sdp": "v=0"}, [alice.peer_id], **{"from": alice.peer_id})
    frame = await alice.recv_event("offer")
    assert frame == {"event": "offer", "data": {"sdp": "v=0"}, "from": bob.peer_id,
                     "to": [alice.peer_id]}


async def test_all_skips_the_sender(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    clients = [await Client.connect(f"{server.url}/demo") for _ in range(3)]
    for i, client in enumerate(clients):  # drain the joined notices
        for _ in range(len(clients) - 1 - i):
            await client.recv_event("joined")
    await clients[0].send("hello", 1, "all")
    for other in clients[1:]:
        assert (await other.recv_event("hello"))["from"] == clients[0].peer_id
    await marker_arrives_next(clients[0], clients[1])


async def test_a_list_with_a_stranger_reaches_nobody_and_the_sender_is_told(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    await alice.recv_event("joined")
    await bob.send("offer", 1, [alice.peer_id, "not-a-peer"])
    frame = await bob.recv_event("error")
    assert frame["data"] == {"description": "No such peer", "details": ["not-a-peer"]}
    await marker_arrives_next(alice, bob)


async def test_messages_between_a_pair_keep_their_order(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    await alice.recv_event("joined")
    for n in range(300):
        await bob.send("candidate", n, [alice.peer_id])
    assert [(await alice.recv())["data"] for _ in range(300)] == list(range(300))


async def test_oversized_frame_closes_with_1009_and_nobody_else_notices(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(max_message_bytes=1024)
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    mallory = await Client.connect(f"{server.url}/demo", max_size=None)
    await alice.recv_event("joined")
    await alice.recv_event("joined")
    await bob.recv_event("joined")
    await mallory.send("big", "x" * 2000, "all")
    assert await mallory.closed() == 1009
    assert (await alice.recv_event("left"))["data"]["peer_id"] == mallory.peer_id
    assert (await bob.recv_event("left"))["data"]["peer_id"] == mallory.peer_id
    await bob.send("fine", "y" * 900, [alice.peer_id])
    assert (await alice.recv_event("fine"))["data"] == "y" * 900


async def test_binary_frames_are_ignored(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    client = await Client.connect(f"{server.url}/demo")
    await client.connection.send(b"\x00\x01binary")
    await client.send_text("ping")
    assert await client.recv_text() == "pong"  # no error came first, still connected


async def test_idle_peer_is_closed_and_leaves(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(idle_timeout=0.5)
    alice = await Client.connect(f"{server.url}/demo", ping_interval=None)
    bob = await Client.connect(f"{server.url}/demo", ping_interval=None)
    await alice.recv_event("joined")
    assert await bob.closed(timeout=5) == 1000
    # alice was idle just as long: both go, each within the bound.
    assert await alice.closed(timeout=5) == 1000


async def test_activity_keeps_a_peer_and_on_init_can_set_its_idle_timeout(
        start_server: ServerFactory) -> None:
    server = await start_server(peer_class=RECORDING_PEER, idle_timeout=0.8)
    lazy = await Client.connect(f"{server.url}/demo?idle=0.3", ping_interval=None)
    busy = await Client.connect(f"{server.url}/demo", ping_interval=None)
    await lazy.recv_event("joined")
    loop = asyncio.get_running_loop()
    started = loop.time()
    others = []
    while loop.time() - started < 1.6:  # twice the server's idle timeout, paced by pongs
        await busy.send_text("ping")
        while (text := await busy.recv_text()) != "pong":
            others.append(json.loads(text))
        await asyncio.sleep(0.1)
    assert lazy.connection.close_code == 1000  # closed after its own 0.3 s
    assert [(f["event"], f["data"]["peer_id"]) for f in others] == [("left", lazy.peer_id)]


# --- rooms and callbacks ----------------------------------------------------------------------

async def test_two_rooms_are_isolated(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode({"one": ("actors.default:DefaultRoom", None),
                                 "two": ("actors.default:DefaultRoom", None)})
    a1 = await Client.connect(f"{server.url}/one")
    b1 = await Client.connect(f"{server.url}/one")
    a2 = await Client.connect(f"{server.url}/two")
    await a1.recv_event("joined")
    await a1.send("hello", None, "all")
    await b1.recv_event("hello")
    await a1.send("psst", None, [a2.peer_id])
    assert (await a1.recv_event("error"))["data"]["details"] == [a2.peer_id]
    b2 = await Client.connect(f"{server.url}/two")
    frame = await a2.recv()  # the first thing a2 ever sees is b2 joining its own room
    assert frame["event"] == "joined" and frame["from"] == b2.peer_id


async def test_callbacks_run_in_order_with_their_arguments(start_server: ServerFactory) -> None:
    server = await start_server({"rec": (RECORDING_ROOM, {"limit": 5})},
                                peer_class=RECORDING_PEER, peer_options={"realm": "test"})
    alice = await Client.connect(f"{server.url}/rec?user=alice",
                                 additional_headers={"X-Trace": "t1"})
    bob = await Client.connect(f"{server.url}/rec?user=bob")
    await alice.recv_event("joined")
    await bob.send("offer", {"sdp": "v=0"}, [alice.peer_id])
    await alice.recv_event("offer")
    await bob.close()
    await alice.recv_event("left")
    await server.stop_room("rec")
    assert (await alice.recv_event("error"))["data"] == {"description": "Room closed",
                                                         "details": "normal"}
    assert await alice.closed() == 1000
    assert await refused_status(f"{server.url}/rec") == 404  # stopped on purpose: not restarted
    calls = await RECORD.until(lambda calls: ("room:rec", "on_terminate") in calls)
    room_calls = [c[1:] for c in calls if c[0] == "room:rec"]
    # alice is still in when the room stops: a stopped room runs on_terminate, no more leaves.
    assert [c[0] for c in room_calls] == [
        "on_init", "on_join", "on_forward", "on_join", "on_forward", "on_forward",
        "on_leave", "on_forward", "on_terminate"]
    assert room_calls[0] == ("on_init", {"limit": 5})
    alice_auth = room_calls[1][1]
    assert alice_auth.peer_id == alice.peer_id
    assert alice_auth.credentials == {"user": "alice"}
    assert alice_auth.metadata["headers"]["x-trace"] == "t1"
    assert alice_auth.metadata["remote_address"][0] == "127.0.0.1"
    assert room_calls[2][1] == Message("joined", {"peer_id": alice.peer_id}, alice.peer_id, "all")
    assert room_calls[5][1] == Message("offer", {"sdp": "v=0"}, bob.peer_id, [alice.peer_id])
    assert room_calls[6] == ("on_leave", bob.peer_id)
    assert room_calls[7][1] == Message("left", {"peer_id": bob.peer_id}, None, "all")
    peer_calls = [c[1:] for c in calls if c[0] == "peer"]
    init = peer_calls[0]
    assert init[0] == "on_init" and init[1].room == "rec" and init[3] == {"realm": "test"}
    assert ("on_receive", Message("offer", {"sdp": "v=0"}, bob.peer_id, [alice.peer_id]),
            init[1].__class__(bob.peer_id, "rec")) in peer_calls
    terminated = [c[1].peer_id for c in peer_calls if c[0] == "on_terminate"]
    assert bob.peer_id in terminated


async def test_peer_on_receive_may_drop_and_a_crashing_peer_only_closes_itself(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode(peer_class=RECORDING_PEER)
    pid = (await server.list_rooms())[0].pid
    alice = await Client.connect(f"{server.url}/demo")
    bob = await Client.connect(f"{server.url}/demo")
    await alice.recv_event("joined")
    await bob.send("secret", 1, "all")
    await marker_arrives_next(alice, bob)
    await bob.send("crash", 1, "all")
    assert await bob.closed() == 1011
    assert (await alice.recv_event("left"))["data"]["peer_id"] == bob.peer_id
    carol = await Client.connect(f"{server.url}/demo")
    await alice.recv_event("joined")
    await carol.send("still", "here", [alice.peer_id])
    assert (await alice.recv_event("still"))["data"] == "here"
    [room] = await server.list_rooms()
    assert (room.pid, room.restarts) == (pid, 0)  # the room never went down


async def test_room_on_forward_may_change_a_message(start_server: ServerFactory) -> None:
    server = await start_server({"rec": (RECORDING_ROOM, {"tag": "offer", "drop": "spam"})})
    alice = await Client.connect(f"{server.url}/rec")
    bob = await Client.connect(f"{server.url}/rec")
    await alice.recv_event("joined")
    await bob.send("spam", {}, "all")
    await bob.send("offer", {"sdp": "x"}, "all")
    assert (await alice.recv())["data"] == {"sdp": "x", "tagged": True}


async def test_crashing_room_closes_its_peers_and_comes_back(start_server: ServerFactory) -> None:
    server = await start_server({"fragile": (RECORDING_ROOM, {"crash_on": "boom"}),
                                 "calm": ("actors.default:DefaultRoom", None)})
    alice = await Client.connect(f"{server.url}/fragile")
    bob = await Client.connect(f"{server.url}/fragile")
    calm1 = await Client.connect(f"{server.url}/calm")
    calm2 = await Client.connect(f"{server.url}/calm")
    await alice.recv_event("joined")
    await calm1.recv_event("joined")
    await bob.send("boom", None, "all")
    for client in (alice, bob):
        frame = await client.recv_event("error")
        assert frame["data"]["description"] == "Room closed"
        assert frame["data"]["details"] == "room_crashed"  # the exception stays in the log
        assert await client.closed() == 1000
    await RECORD.until(lambda calls: [c[1] for c in calls if c[0] == "room:fragile"].count(
        "on_init") == 2)
    rooms = {room.name: room for room in await server.list_rooms()}
    assert rooms["fragile"].restarts == 1 and rooms["fragile"].state == "running"
    again = await Client.connect(f"{server.url}/fragile")
    await again.close()
    await calm2.send("unaffected", 1, [calm1.peer_id])
    assert (await calm1.recv_event("unaffected"))["data"] == 1


async def test_forward_message_from_python(start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    alice = await Client.connect(f"{server.url}/demo")
    assert await server.forward_message("demo", Message("notice", "hi", None, "all")) == "ok"
    assert await alice.recv() == {"event": "notice", "data": "hi", "from": None, "to": "all"}
    status = await server.forward_message("demo", Message("notice", 1, None, ["ghost"]))
    assert status == "no_such_peer"
    bob = await Client.connect(f"{server.url}/demo")
    await alice.recv_event("joined")
    await marker_arrives_next(alice, bob)
    with pytest.raises(ServerError, match="no such room"):
        await server.forward_message("nowhere", Message("x", None, None, "all"))
    # A room that crashes forwarding it raises too: the answer says only where messages went.
    await server.create_room("faulty", "tests.support.faulty_room:FaultyRoom",
                             {"raise_in": "on_forward"})
    with pytest.raises(ServerError, match="room faulty crashed forwarding the message"):
        await server.forward_message("faulty", Message("boom", None, None, "all"))


async def test_every_row_also_holds_with_a_plain_websockets_client(
        start_server_each_mode: ServerFactory) -> None:
    """Without our helper: the raw frames a Membrane client would see, row by row of the
    protocol reference's client-frames table."""
    server = await start_server_each_mode()
    async with websockets.connect(f"{server.url}/demo") as ws:

        async def answer() -> dict[str, object]:
            text = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(text, str)
            return json.loads(text)  # type: ignore[no-any-return]

        hello = await answer()
        me = hello["data"]["peer_id"]  # type: ignore[index]
        assert hello == {"event": "authenticated", "data": {  # Membrane's, plus resuming
            "peer_id": me, "resume_token": hello["data"]["resume_token"],  # type: ignore[index]
            "resumed": False}, "from": None, "to": [me]}
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "pong"
        await ws.send(b"\x00binary")  # ignored: the next answer is the next row's
        await ws.send('{"event": "note", "data": 1, "to": [%s], "from": "forged"}'
                      % json.dumps(me))
        assert await answer() == {"event": "note", "data": 1, "from": me, "to": [me]}
        await ws.send("{not json")
        assert await answer() == {"event": "error", "data": {
            "description": "Invalid JSON", "details": "{not json"}, "from": None, "to": [me]}
        await ws.send('{"event": 5}')
        assert await answer() == {"event": "error", "data": {
            "description": "Invalid message", "details": None}, "from": None, "to": [me]}
        await ws.send('{"event": "offer", "to": ["ghost"]}')
        assert await answer() == {"event": "error", "data": {
            "description": "No such peer", "details": ["ghost"]}, "from": None, "to": [me]}


async def test_order_holds_for_every_pair_under_concurrent_load(
        start_server_each_mode: ServerFactory) -> None:
    server = await start_server_each_mode()
    pairs = []
    for _ in range(8):
        sender = await Client.connect(f"{server.url}/demo", max_queue=None)
        receiver = await Client.connect(f"{server.url}/demo", max_queue=None)
        pairs.append((sender, receiver))

    async def run(sender: Client, receiver: Client) -> list[int]:
        for n in range(250):
            await sender.send("candidate", n, [receiver.peer_id])
        received = []
        while len(received) < 250:
            frame = await receiver.recv(timeout=20)
            if frame["event"] == "candidate":
                assert frame["from"] == sender.peer_id
                received.append(frame["data"])
        return received

    results = await asyncio.wait_for(asyncio.gather(*(run(s, r) for s, r in pairs)), 60)
    assert all(received == list(range(250)) for received in results)


async def test_room_timers_fire_on_a_real_server(start_server_each_mode: ServerFactory) -> None:
    """Room.call_later on Thespian's wakeups, in both modes: ticks arrive, a raising timer
    crashes the room, which comes back."""
    server = await start_server_each_mode({
        "ticks": ("tests.support.timer_room:Ticker", {"every": 0.1}),
        "boom": ("tests.support.timer_room:Ticker", {"every": 0.1, "boom": True})})
    client = await Client.connect(f"{server.url}/ticks")
    assert [(await client.recv_event("tick"))["data"] for _ in range(3)] == [1, 2, 3]
    doomed = await Client.connect(f"{server.url}/boom")
    assert [(await doomed.recv_event("tick"))["data"] for _ in range(2)] == [1, 2]
    frame = await doomed.recv_event("error")
    assert frame["data"] == {"description": "Room closed", "details": "room_crashed"}
