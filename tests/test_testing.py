"""membrane_rtc.testing: rooms and peers tested without a server, and the same frames as one."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from actors.capped import CappedRoom
from actors.default import DefaultRoom
from actors.presence import PresenceRoom
from actors.token import TokenPeer
from membrane_rtc import JoinRefused, Message, protocol
from membrane_rtc.testing import PeerRefused, RoomHarness

from .conftest import ServerFactory
from .support.client import Client, refused_status
from .support.faulty_room import FaultyRoom
from .support.keyed_peer import KeyedPeer
from .support.recording import RecordingPeer
from .test_resume import drop

LOBBY = "docs/tutorial/lobby.py:Lobby"


def lobby_class() -> type:
    from membrane_rtc.loading import load_class

    return load_class(LOBBY)


def test_the_tutorial_lobby_greets_and_holds_its_maximum(room_harness) -> None:
    room = room_harness(lobby_class(), {"max_peers": 2}, name="lobby")
    first = room.join()
    assert first.events() == ["authenticated", "greeting"]
    assert first.received[1].data == {"text": "Welcome to lobby! You are the first."}
    second = room.join()
    assert second.received[1].data == {"text": "Welcome to lobby! 1 here before you."}
    assert first.received[-1] == Message("joined", {"peer_id": second.peer_id},
                                         second.peer_id, "all")
    with pytest.raises(JoinRefused):
        room.join()
    second.leave()
    assert first.received[-1] == Message("left", {"peer_id": second.peer_id}, None, "all")
    room.join()  # a place is free again


def test_the_default_room_forwards_everything_with_the_to_rules(room_harness) -> None:
    room = room_harness(DefaultRoom)
    a, b, c = room.join(), room.join(), room.join()
    a.send("offer", {"sdp": "x"}, to=[b.peer_id])
    assert b.received[-1] == Message("offer", {"sdp": "x"}, a.peer_id, [b.peer_id])
    assert c.events() == ["authenticated"]  # c got nothing of it
    a.send("hello", to="all")
    assert [b.received[-1].event, c.received[-1].event] == ["hello", "hello"]
    assert a.received[-1].event == "joined"  # "all" skips the sender
    a.send("offer", to=["ghost"])
    assert a.received[-1].data == {"description": "No such peer", "details": ["ghost"]}
    assert room.forward(Message("notice", 1, None, "all")) == "ok"
    assert all(p.received[-1].event == "notice" for p in (a, b, c))


def test_the_capped_room_refuses_past_its_cap(room_harness) -> None:
    room = room_harness(CappedRoom, {"max_peers": 1})
    first = room.join()
    with pytest.raises(JoinRefused) as refused:
        room.join()
    assert refused.value.reason == "room_is_full"
    assert first.events() == ["authenticated"]  # a refused join is announced to nobody


def test_the_token_peer_lets_in_only_the_right_token() -> None:
    room = RoomHarness(DefaultRoom, peer_class=TokenPeer, peer_options={"token": "s3cret"})
    assert room.join(credentials={"token": "s3cret"}).events() == ["authenticated"]
    with pytest.raises(PeerRefused) as refused:
        room.join(credentials={"token": "guess"})
    assert isinstance(refused.value.error, PermissionError)
    room.terminate()


def test_a_crashing_room_raises_and_its_peers_were_told() -> None:
    room = RoomHarness(FaultyRoom, {"raise_in": "on_forward"})
    a, b = room.join(), room.join()
    with pytest.raises(RuntimeError, match="on_forward failure"):
        a.send("boom", to="all")
    for peer in (a, b):
        assert peer.received[-1].data == {
            "description": "Room closed",
            "details": "room_crashed"}
        assert peer.closed
    with pytest.raises(RuntimeError, match="not running .*crashed"):
        room.join()


def test_a_raising_peer_is_closed_and_only_it() -> None:
    room = RoomHarness(DefaultRoom, peer_class=RecordingPeer)
    a, b = room.join(), room.join()
    b.send("crash", to="all")
    assert b.closed and a.received[-1] == Message("left", {"peer_id": b.peer_id}, None, "all")
    b2 = room.join()
    a.send("secret", to="all")  # RecordingPeer drops it
    a.send("hi", to=[b2.peer_id])
    assert b2.received[-1].event == "hi"


def wire(message: Message) -> dict[str, Any]:
    """A message as the JSON object of its frame."""
    return json.loads(protocol.encode(message))  # type: ignore[no-any-return]


def hello(client: Client) -> dict[str, Any]:
    """The ``authenticated`` frame a test client read (it keeps its parts)."""
    return {"event": "authenticated", "data": {"peer_id": client.peer_id, **client.welcome},
            "from": None, "to": [client.peer_id]}


def named(frames: list[dict[str, Any]], ids: dict[str, str]) -> str:
    """Frames with peer ids replaced by names and resume tokens by a mark: two runs' ids and
    tokens differ, nothing else may."""
    text = re.sub(r'"resume_token": "[^"]+"', '"resume_token": "TOKEN"', json.dumps(frames))
    for peer_id, name in ids.items():
        text = text.replace(peer_id, name)
    return text


async def test_the_harness_gives_the_same_frames_as_a_real_server(
        start_server: ServerFactory) -> None:
    """One script - two join, a third is refused, an offer, an answer, a broadcast, a leave -
    against a real server and against the harness: every frame is the same."""
    options = {"max_peers": 2}
    server = await start_server({"lobby": (LOBBY, options)})
    url = f"{server.url}/lobby"
    alice, bob = await Client.connect(url), await Client.connect(url)
    carol = await Client.connect(url, authenticate=False)
    await alice.send("offer", {"sdp": "a"}, [bob.peer_id])
    await bob.send("answer", {"sdp": "b"}, [alice.peer_id])
    await alice.send("bye", None, "all")

    async def frames(client: Client, count: int) -> list[dict[str, Any]]:
        hello = {"event": "authenticated", "data": {"peer_id": client.peer_id, **client.welcome},
                 "from": None, "to": [client.peer_id]}
        return [hello] + [await client.recv() for _ in range(count)]

    # bob: greeting, the offer, the bye; then he leaves. alice: greeting, bob joined, the
    # answer, bob left.
    real = {"bob": await frames(bob, 3)}
    await bob.close()
    real["alice"] = await frames(alice, 4)
    refused = await carol.recv()

    room = RoomHarness(lobby_class(), options, name="lobby")
    h_alice, h_bob = room.join(), room.join()
    with pytest.raises(JoinRefused):
        room.join()
    h_alice.send("offer", {"sdp": "a"}, [h_bob.peer_id])
    h_bob.send("answer", {"sdp": "b"}, [h_alice.peer_id])
    h_alice.send("bye", None, "all")
    h_bob.leave()
    harness = {"alice": [wire(m) for m in h_alice.received],
               "bob": [wire(m) for m in h_bob.received]}

    real_ids = {alice.peer_id: "alice", bob.peer_id: "bob"}
    harness_ids = {h_alice.peer_id: "alice", h_bob.peer_id: "bob"}
    for name in ("alice", "bob"):
        assert named(real[name], real_ids) == named(harness[name], harness_ids), name
    assert refused["data"] == {"description": "Could not join room", "details": "room_is_full"}


def test_the_how_to_page_listing_runs_as_shown(tmp_path, monkeypatch) -> None:
    """docs/howto/test-a-room.md's first listing, with the tutorial's lobby beside it."""
    from .support.process import REPO

    page = (REPO / "docs" / "howto" / "test-a-room.md").read_text()
    listing = page.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "lobby.py").write_text((REPO / "docs" / "tutorial" / "lobby.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, Any] = {}
    exec(compile(listing, "test-a-room.md", "exec"), namespace)
    namespace["test_the_lobby_greets_and_holds_two"]()


def test_timers_fire_as_the_clock_advances_and_can_be_cancelled() -> None:
    from .support.timer_room import Ticker

    room = RoomHarness(Ticker, {"every": 10})
    a = room.join()
    room.advance(9.9)
    assert a.events() == ["authenticated"]
    room.advance(15)  # t = 24.9: ticks at 10 and 20
    assert [m.data for m in a.received if m.event == "tick"] == [1, 2]
    a.send("stop")  # cancels the tick due at 30
    room.advance(100)
    assert [m.data for m in a.received if m.event == "tick"] == [1, 2]


def test_a_timer_that_raises_crashes_the_room_like_any_callback() -> None:
    from .support.timer_room import Ticker

    room = RoomHarness(Ticker, {"every": 1, "boom": True})
    a = room.join()
    with pytest.raises(RuntimeError, match="the third tick"):
        room.advance(5)
    assert a.events()[-1] == "error" and a.received[-1].data == {
        "description": "Room closed", "details": "room_crashed"}


def test_an_operator_kick_is_a_leave() -> None:
    room = RoomHarness(DefaultRoom)
    a, b = room.join(), room.join()
    room.kick(b.peer_id)
    assert b.closed and a.received[-1] == Message("left", {"peer_id": b.peer_id}, None, "all")
    with pytest.raises(RuntimeError, match="not connected"):
        b.send("still here?")


def test_a_dropped_peer_resumes_or_leaves_when_its_grace_ends(room_harness) -> None:
    room = room_harness(PresenceRoom, resume_grace=20)
    a, b = room.join(), room.join()
    a.drop()
    assert b.received[-1].event == "peer_away" and b.received[-1].data == {"peer_id": a.peer_id}
    b.send("offer", 1, to=[a.peer_id])
    a.resume()
    assert a.events()[-2:] == ["authenticated", "offer"]
    assert a.received[-2].data["resumed"] is True
    assert b.events()[-1] == "peer_back"
    a.drop()
    room.advance(19.9)
    assert not a.closed and "left" not in b.events()
    room.advance(0.2)
    assert a.closed and b.events()[-1] == "left"


def test_without_resuming_a_drop_is_a_leave(room_harness) -> None:
    room = room_harness(PresenceRoom, resume_grace=0)
    a, b = room.join(), room.join()
    assert set(a.received[0].data) == {"peer_id"}  # Membrane's authenticated
    a.drop()
    assert a.closed and b.events()[-1] == "left"


def test_a_resume_presents_credentials_again_and_its_peer_checks_them(room_harness) -> None:
    """The rule of docs/reference/protocol.md, "Resuming after a drop": a new instance of the
    Peer checks the resuming client's credentials; refused, the client stays away and its
    grace goes on; accepted, the old instance ends and the public metadata is the joined one."""
    room = room_harness(PresenceRoom, peer_class=KeyedPeer, peer_options={"key": "k"})
    a = room.join({"key": "k", "user": "ada", "name": "Ada"})
    b = room.join({"key": "k", "user": "bob"})
    a.drop()
    b.send("offer", 1, to=[a.peer_id])
    first = a.peer
    with pytest.raises(PeerRefused) as no_key:
        a.resume({"user": "ada"})
    assert str(no_key.value.error) == "bad key"
    with pytest.raises(PeerRefused) as other:
        a.resume({"key": "k", "user": "mallory"})  # someone else's good key: no takeover
    assert str(other.value.error) == "resumed as another identity"
    assert a.away and a.peer is first and not first.terminated
    assert b.events()[-1] == "peer_away"  # the room saw none of it
    a.resume({"key": "k", "user": "ada", "name": "Ada Lovelace"})
    assert a.events()[-2:] == ["authenticated", "offer"] and a.received[-2].data["resumed"]
    assert a.received[-2].data["metadata"] == {"name": "Ada"}  # as room-mates know her
    assert a.peer is not first and first.terminated and not a.peer.terminated
    assert b.events()[-1] == "peer_back"
    a.drop()
    a.resume()  # the credentials it last connected with, as a real client resends them
    assert a.events()[-1] == "authenticated" and a.received[-1].data["resumed"]

    a.drop()
    room.advance(15)
    with pytest.raises(PeerRefused):
        a.resume({})
    room.advance(4.9)
    assert a.away and "left" not in b.events()
    room.advance(0.2)  # the grace started at the drop, refused resumes or not
    assert a.closed and b.events()[-1] == "left"


async def test_the_harness_resumes_with_credentials_as_a_real_server_does(
        start_server: ServerFactory) -> None:
    """One script - two join, one drops, a room-mate sends it an offer, its resume without
    the key and one with another user's key are refused, one with its own key (and a new
    name) resumes - against a real server and the harness: every frame is the same."""
    server = await start_server({"presence": ("actors.presence:PresenceRoom", None)},
                                peer_class="tests.support.keyed_peer:KeyedPeer",
                                peer_options={"key": "k"})
    url = f"{server.url}/presence"
    alice = await Client.connect(f"{url}?key=k&user=ada&name=Ada")
    bob = await Client.connect(f"{url}?key=k&user=bob")
    real_alice = [hello(alice), await alice.recv_event("joined")]
    await drop(alice)
    real_bob = [hello(bob), await bob.recv_event("peer_away")]
    await bob.send("offer", {"sdp": "b"}, [alice.peer_id])
    token = alice.welcome["resume_token"]
    assert await refused_status(f"{url}?user=ada&resume={token}") == 401
    assert await refused_status(f"{url}?key=k&user=mallory&resume={token}") == 401
    back = await Client.connect(f"{url}?key=k&user=ada&name=Ada+Lovelace&resume={token}")
    assert back.peer_id == alice.peer_id
    real_alice += [hello(back), await back.recv()]
    await back.send("answer", {"sdp": "a"}, [bob.peer_id])
    real_bob += [await bob.recv(), await bob.recv()]
    await back.close(), await bob.close()

    room = RoomHarness(PresenceRoom, name="presence", peer_class=KeyedPeer,
                       peer_options={"key": "k"})
    h_alice = room.join({"key": "k", "user": "ada", "name": "Ada"})
    h_bob = room.join({"key": "k", "user": "bob"})
    h_alice.drop()
    h_bob.send("offer", {"sdp": "b"}, [h_alice.peer_id])
    for credentials in ({"user": "ada"}, {"key": "k", "user": "mallory"}):
        with pytest.raises(PeerRefused):
            h_alice.resume(credentials)
    h_alice.resume({"key": "k", "user": "ada", "name": "Ada Lovelace"})
    h_alice.send("answer", {"sdp": "a"}, [h_bob.peer_id])
    room.terminate()

    real_ids = {alice.peer_id: "alice", bob.peer_id: "bob"}
    harness_ids = {h_alice.peer_id: "alice", h_bob.peer_id: "bob"}
    assert named(real_alice, real_ids) == named([wire(m) for m in h_alice.received],
                                                harness_ids)
    assert named(real_bob, real_ids) == named([wire(m) for m in h_bob.received], harness_ids)
    assert [f["event"] for f in real_bob] == ["authenticated", "peer_away", "peer_back",
                                              "answer"]
