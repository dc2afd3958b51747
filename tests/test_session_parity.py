"""The harness/server parity of the session core (membrane_rtc/members.py).

Every scenario of a room's membership and sessions - join, refusal, resume (with
``received`` too), grace expiry, leave, crash - runs step by step on both drivers of
``Members``: the room actor behind a real server (in each actor-system mode) and
``RoomHarness``. After every step, each client has received the same new frames from both,
and each step ended the same way (joined, refused with 401 or 400, refused by the room,
crashed)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest

from membrane_rtc import JoinRefused, Server, protocol
from membrane_rtc.testing import PeerRefused, RoomHarness, TestPeer

from .conftest import ServerFactory
from .support.client import Client, refused_status
from .support.keyed_peer import KeyedPeer
from .support.session_room import SessionRoom
from .test_resume import away, drop, nothing_pending

ROOM, PEER, KEY = "tests.support.session_room:SessionRoom", \
    "tests.support.keyed_peer:KeyedPeer", {"key": "k"}
MAX_PEERS = 3
Step = tuple[Any, ...]

JOIN = [("join", "a", KEY), ("join", "b", {**KEY, "name": "Bob"}),
        ("send", "a", "offer", {"sdp": "x"}, ["b"]), ("send", "b", "hello", None, "all")]
REFUSAL = [("join", "a", KEY), ("join", "x", {"key": "wrong"}), ("join", "b", KEY),
           ("join", "c", KEY), ("join", "d", KEY), ("send", "a", "offer", 1, ["b"]),
           ("send", "a", "offer", 2, ["d"])]
ADA = {**KEY, "user": "ada", "name": "Ada"}
RESUME = [("join", "a", ADA), ("join", "b", {**KEY, "user": "bob"}), ("drop", "a"),
          ("send", "b", "offer", {"sdp": "b"}, ["a"]), ("send", "b", "note", 1, "all"),
          ("resume", "a", {"user": "ada"}), ("resume", "a", {**KEY, "user": "mallory"}),
          ("resume", "a", {**ADA, "name": "Ada Lovelace"}),
          ("send", "a", "answer", {"sdp": "a"}, ["b"]), ("drop", "a"), ("resume", "a", ADA),
          ("send", "b", "bye", None, ["a"])]
GRACE = [("join", "a", KEY), ("join", "b", KEY), ("join", "c", KEY), ("drop", "a"),
         ("send", "b", "offer", 1, ["a"]), ("grace",), ("join", "d", KEY),
         ("send", "b", "offer", 2, ["a"])]
LEAVE = [("join", "a", KEY), ("join", "b", KEY), ("join", "c", KEY), ("leave", "b"),
         ("send", "a", "hello", None, "all"), ("join", "d", KEY), ("leave", "a")]
CRASH = [("join", "a", KEY), ("join", "b", KEY), ("join", "c", KEY), ("drop", "c"),
         ("send", "a", "hi", None, "all"), ("crash", "a")]
#: A resume that says how many frames it received (?received=N): a's are authenticated,
#: joined, offer 1, then offer 2 while away; 5 is more than were sent (400).
RECEIVED = [("join", "a", ADA), ("join", "b", KEY), ("send", "b", "offer", 1, ["a"]),
            ("drop", "a"), ("send", "b", "offer", 2, ["a"]), ("resume", "a", ADA, 5),
            ("resume", "a", ADA, 2), ("send", "b", "offer", 3, ["a"])]
SCENARIOS = {"join": (JOIN, 20.0), "refusal": (REFUSAL, 20.0), "resume": (RESUME, 20.0),
             "grace expiry": (GRACE, 1.0), "leave": (LEAVE, 20.0), "crash": (CRASH, 20.0),
             "received": (RECEIVED, 20.0)}


def wire(frame: Any) -> dict[str, Any]:
    return json.loads(protocol.encode(frame))  # type: ignore[no-any-return]


class HarnessDriver:
    """The scenario on a ``RoomHarness``: its clients' ids are their names."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.room = RoomHarness(SessionRoom, name="s", peer_class=KeyedPeer,
                                peer_options=KEY, max_peers=MAX_PEERS, resume_grace=grace)
        self.clients: dict[str, TestPeer] = {}
        self.read: dict[str, int] = {}

    def do(self, step: Step) -> str:
        kind, name, *rest = step + ("",) if len(step) == 1 else step
        try:
            if kind == "join":
                self.clients[name] = self.room.join(dict(rest[0]), peer_id=name)
            elif kind == "resume":
                self.clients[name].resume(dict(rest[0]), received=(rest[1:] or [None])[0])
            elif kind == "send":
                self.clients[name].send(*rest)
            elif kind == "drop":
                self.clients[name].drop()
            elif kind == "leave":
                self.clients[name].leave()
            elif kind == "grace":
                self.room.advance(self.grace)
            elif kind == "crash":
                self.clients[name].send("boom", None, "all")
        except PeerRefused:
            return "unauthorized"
        except ValueError:
            return "bad request"
        except JoinRefused as refusal:
            return f"could not join: {refusal.reason}"
        except RuntimeError as exc:
            return f"crashed: {exc}"
        return "ok"

    def new_frames(self, name: str) -> list[dict[str, Any]]:
        received = self.clients[name].received
        frames, self.read[name] = received[self.read.get(name, 0):], len(received)
        return [wire(m) for m in frames]


class ServerDriver:
    """The same scenario over real sockets; each step does what the harness's outcome of it
    says the server must do (connect expecting 401, or the room's refusal, ...)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.url = f"{server.url}/s"
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, str] = {}
        self.names: dict[str, str] = {}  # server peer id -> name
        self.unread: dict[str, list[dict[str, Any]]] = {}
        self.connected: set[str] = set()

    def _hello(self, name: str, client: Client) -> None:
        """Keep what ``Client.connect`` read: the ``authenticated`` frame."""
        assert client.peer_id is not None
        self.clients[name], self.names[client.peer_id] = client, name
        self.tokens[name] = client.welcome.get("resume_token", "")
        self.unread[name] = [{"event": "authenticated", "from": None, "to": [client.peer_id],
                              "data": {"peer_id": client.peer_id, **client.welcome}}]
        self.connected.add(name)

    async def _connect(self, name: str, query: dict[str, str], expected: str) -> str:
        url = f"{self.url}?{urlencode(query)}"
        if expected in ("unauthorized", "bad request"):
            assert await refused_status(url) == (401 if expected == "unauthorized" else 400)
        elif expected.startswith("could not join"):
            refused = await Client.connect(url, authenticate=False)
            frame = await refused.recv()
            assert frame["data"]["description"] == "Could not join room"
            await refused.closed()
            return f"could not join: {frame['data']['details']}"
        else:
            self._hello(name, await Client.connect(url))
        return expected

    async def do(self, step: Step, expected: str) -> str:
        kind, name, *rest = step + ("",) if len(step) == 1 else step
        if kind == "join":
            return await self._connect(name, rest[0], expected)
        if kind == "resume":
            received = {"received": str(rest[1])} if len(rest) > 1 else {}
            return await self._connect(
                name, {**rest[0], "resume": self.tokens[name], **received}, expected)
        client = self.clients[name] if name else None
        if client is None:
            return expected  # the grace: the room's own timer ends it (its frames read below)
        if kind == "send":
            event, data, to = rest
            ids = {n: i for i, n in self.names.items()}
            await client.send(event, data, to if to == "all" else [ids.get(n, n) for n in to])
        elif kind == "drop":
            await drop(client)
            self.connected.discard(name)
            await away(self.server, "s", client.peer_id or "")
        elif kind == "leave":
            await client.close()
            self.connected.discard(name)
        elif kind == "crash":
            await client.send("boom", None, "all")
            self.connected.clear()
            return expected  # the room's error is logged, its clients told (read below)
        return expected

    async def new_frames(self, name: str, count: int) -> list[dict[str, Any]]:
        """The next ``count`` frames of ``name``'s client, as the harness's (ids as names)."""
        frames = self.unread.pop(name, [])
        while len(frames) < count:
            frames.append(await self.clients[name].recv(timeout=10))
        text = json.dumps(frames)
        for peer_id, peer_name in self.names.items():
            text = text.replace(peer_id, peer_name)
        return tokenless(json.loads(text))


def tokenless(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Frames with resume tokens as a mark and addressee lists sorted: two runs' tokens
    differ, and so do their peer ids' order (a room may sort them)."""
    text = re.sub(r'"resume_token": "[^"]+"', '"resume_token": "TOKEN"', json.dumps(frames))
    frames = json.loads(text)
    for frame in frames:
        if isinstance(frame["to"], list):
            frame["to"] = sorted(frame["to"])
    return frames


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_scenario_of_the_session_core_is_the_same_on_both_drivers(
        scenario: str, start_server_each_mode: ServerFactory) -> None:
    steps, grace = SCENARIOS[scenario]
    server = ServerDriver(await start_server_each_mode(
        {"s": (ROOM, None)}, peer_class=PEER, peer_options=KEY, max_peers_per_room=MAX_PEERS,
        resume_grace=grace))
    harness = HarnessDriver(grace)
    outcomes = []
    for step in steps:
        expected = harness.do(step)
        assert await server.do(step, expected) == expected, step
        outcomes.append(expected)
        for name in harness.clients:
            frames = tokenless(harness.new_frames(name))
            assert await server.new_frames(name, len(frames)) == frames, (step, name)
    for name in server.connected:  # and nothing more came for anyone
        await nothing_pending(server.clients[name])
    for name in server.connected:
        await server.clients[name].close()
    # Each scenario does what it says (a scenario that stopped exercising its case fails).
    expected_outcomes: dict[str, list[str]] = {
        "refusal": ["unauthorized", "could not join: room_is_full"],
        "resume": ["unauthorized", "unauthorized"], "crash": ["crashed: boom"],
        "received": ["bad request"]}
    for outcome in expected_outcomes.get(scenario, []):
        assert outcome in outcomes, outcomes
    harness.room.terminate()
