"""Live-socket fuzzing: 100,000 random and malformed frames against a running server while two
well-behaved peers keep talking. The server stays up, every bad frame gets the answer of
docs/reference/protocol.md, in order, and the good peers lose nothing.

Answers come down two paths, each in order: the gateway answers a frame's form at once
(``pong``, "Invalid JSON", "Invalid message"); the room answers what it routes (the message
itself, "No such peer"). An answer of the first kind may overtake one of the second.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import string
from dataclasses import dataclass
from typing import Any

import pytest

from membrane_rtc.protocol import MAX_ADDRESSEES, MAX_DEPTH, SERVER_EVENTS

from .support.client import Client
from .support.net import free_port
from .support.process import ServeProcess

pytestmark = pytest.mark.slow  # fuzzes live servers for a fixed time

FUZZ_CONNECTIONS = 4
FRAMES_PER_CONNECTION = 25_000  # 100,000 in all
OVERSIZED_CONNECTIONS = 20
IN_FLIGHT = 500  # frames a fuzzer sends ahead of the answers it has read
GOOD_MESSAGES_MAX = 100_000  # each way between the two good peers, at most
MAX_BYTES = 16 * 1024  # the server's frame limit in this test
DEADLINE = 200.0  # seconds for the whole run: bounded even if the server stalls

#: Characters random text is made of: ASCII, controls, accents, CJK, emoji (no surrogates:
#: a text frame must be valid UTF-8).
ALPHABET = string.printable + "\x00\x01\x1f\x7f" + "éüßЖ中文字🙂🚀\u2028\ufeff"
NOT_JSON_START = "~!@#%^&*(<>?|;=`"


@dataclass(frozen=True)
class Expect:
    """The answer a frame must get; ``kind`` is "error", "pong", "echo" or "nothing"."""

    kind: str
    description: str | None = None
    details: Any = None
    event: str | None = None
    data: Any = None

    @property
    def from_gateway(self) -> bool:
        """Answered by the gateway itself (else by the room, after it)."""
        return self.kind == "pong" or self.description in ("Invalid JSON", "Invalid message")


def answered_by_gateway(answer: str) -> bool:
    return answer == "pong" or answer.startswith(
        ('{"event":"error","data":{"description":"Invalid JSON"',
         '{"event":"error","data":{"description":"Invalid message"'))


def random_text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(size))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(7 if depth < 3 else 4)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([rng.randint(-2**63, 2**63 - 1), rng.uniform(-1e300, 1e300)])
    if choice == 3:
        return random_text(rng, rng.randrange(12))
    if choice == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng, rng.randrange(6)): random_json(rng, depth + 1)
            for _ in range(rng.randrange(4))}


def fuzz_frame(rng: random.Random, own_id: str) -> tuple[str | bytes, Expect]:
    """One bad (or tricky) frame and the answer docs/reference/protocol.md gives it."""
    invalid_message = Expect("error", "Invalid message")
    kind = rng.randrange(11)
    if kind == 0:  # a message cut short
        whole = json.dumps({"event": "offer", "data": random_json(rng), "to": [own_id]})
        text = whole[:rng.randrange(len(whole))]
        return text, Expect("error", "Invalid JSON", text)
    if kind == 1:  # garbage that cannot be JSON
        text = rng.choice(NOT_JSON_START) + random_text(rng, rng.randrange(200))
        return text, Expect("error", "Invalid JSON", text)
    if kind == 2:  # JSON, but not an object
        value = random_json(rng)
        while isinstance(value, dict):
            value = random_json(rng)
        return json.dumps(value), invalid_message
    if kind == 3:  # an object without a string event
        value = {"data": random_json(rng)}
        if rng.random() < 0.7:
            value["event"] = rng.choice([None, 0, 1.5, [], {}, ["offer"], True])
        return json.dumps(value), invalid_message
    if kind == 4:  # a bad "to"
        to = rng.choice([0, "bob", "ALL", [1], [None], {"a": 1}, True, [own_id, 7]])
        return json.dumps({"event": "offer", "to": to}), invalid_message
    if kind == 5:  # a stranger as addressee
        stranger = random_text(rng, rng.randrange(1, 40))
        return json.dumps({"event": "offer", "to": [stranger]}), \
            Expect("error", "No such peer", [stranger])
    if kind == 6:
        return "ping", Expect("pong")
    if kind == 7:  # binary: ignored
        return rng.randbytes(rng.randrange(1, 300)), Expect("nothing")
    if kind == 8:  # an attack: the server's own events, deep nesting, addressees by the 1,000
        attack = rng.randrange(3)
        if attack == 0:
            event = rng.choice(sorted(SERVER_EVENTS))
            return json.dumps({"event": event, "data": {"peer_id": "x"}, "to": "all"}), \
                invalid_message
        if attack == 1:
            depth = rng.randrange(MAX_DEPTH, 3000)  # the frame itself is one level more
            return ('{"event":"offer","to":"all","data":' + "[" * depth + "]" * depth + "}",
                    invalid_message)
        # (short ids: a thousand peer ids would pass the frame size limit first)
        return json.dumps({"event": "offer", "to": ["x"] * (MAX_ADDRESSEES + 1)}), \
            invalid_message
    # A good message to itself, with odd data and a spoofed "from": it comes back as sent,
    # from itself.
    event, data = random_text(rng, rng.randrange(20)), random_json(rng)
    frame = json.dumps({"event": event, "data": data, "to": [own_id], "from": "spoofed",
                        "extra": random_json(rng)})
    return frame, Expect("echo", event=event, data=data)


def check(answer: str, expect: Expect, own_id: str) -> None:
    if expect.kind == "pong":
        assert answer == "pong"
        return
    frame = json.loads(answer)
    assert set(frame) == {"event", "data", "from", "to"}, frame
    if expect.kind == "echo":
        ok = frame == {"event": expect.event, "data": expect.data, "from": own_id,
                       "to": [own_id]}
    else:
        ok = frame == {"event": "error", "from": None, "to": [own_id],
                       "data": {"description": expect.description, "details": expect.details}}
    # (a plain message: pytest's rewriting of deeply nested values can itself fail)
    assert ok, f"got {answer[:300]!r}, expected {expect!r:.300}"


async def fuzz(url: str, seed: int) -> int:
    """Send FRAMES_PER_CONNECTION frames, check every answer in order; return frames sent."""
    rng = random.Random(seed)
    client = await Client.connect(url, max_size=None)
    own_id = client.peer_id
    assert own_id is not None
    # What each path still owes, in order: [room's answers, gateway's answers].
    expected = (collections.deque[Expect](), collections.deque[Expect]())
    room = asyncio.Semaphore(IN_FLIGHT)
    finished = asyncio.Event()

    async def send() -> None:
        for _ in range(FRAMES_PER_CONNECTION):
            frame, expect = fuzz_frame(rng, own_id)
            if expect.kind != "nothing":
                await room.acquire()
                expected[expect.from_gateway].append(expect)
            await client.connection.send(frame)
        # A last ping, expected before "finished" is set: the receiver cannot end early.
        await room.acquire()
        expected[True].append(Expect("pong"))
        finished.set()
        await client.connection.send("ping")

    async def receive() -> None:
        while True:
            answer = await client.connection.recv()
            assert isinstance(answer, str)
            if answer.startswith('{"event":"joined"') or answer.startswith('{"event":"left"'):
                continue  # others joining and leaving the room
            path = expected[answered_by_gateway(answer)]
            assert path, f"an answer nobody expected: {answer[:300]}"
            check(answer, path.popleft(), own_id)
            room.release()
            if finished.is_set() and not any(expected):
                return

    sender = asyncio.create_task(send())
    await asyncio.gather(sender, receive())
    await client.close()
    return FRAMES_PER_CONNECTION


async def oversized(url: str, count: int) -> int:
    """Connections that each send one frame over the limit: each is closed with 1009."""
    for _ in range(count):
        client = await Client.connect(url)
        await client.connection.send("x" * (MAX_BYTES + 1))
        assert await client.closed() == 1009
    return count


async def good_pair(url: str, fuzzing_done: asyncio.Event) -> int:
    """Two peers exchange numbered messages both ways for as long as the fuzzing lasts; each
    gets every one of the other's, in order, once. Returns how many went each way."""
    a = await Client.connect(url)
    b = await Client.connect(url)

    async def talk(me: Client, other: Client) -> int:
        async def send() -> int:
            n = 0
            while not fuzzing_done.is_set() and n < GOOD_MESSAGES_MAX:
                await me.send("candidate", {"n": n, "sdp": "a=candidate " + "x" * 200},
                              to=[other.peer_id])
                n += 1
                if n % 10 == 0:
                    await asyncio.sleep(0.005)  # a steady trickle all through the fuzzing
            await me.send("bye", {"sent": n}, to=[other.peer_id])
            return n

        sender = asyncio.create_task(send())
        got = 0
        while True:
            frame = await me.recv(timeout=60)
            if frame["event"] in ("joined", "left"):
                continue
            assert frame["from"] == other.peer_id, frame
            if frame["event"] == "bye":
                assert frame["data"]["sent"] == got, "lost messages"
                break
            assert frame["event"] == "candidate" and frame["data"]["n"] == got, \
                "lost or reordered"
            got += 1
        return await sender

    sent = await asyncio.gather(talk(a, b), talk(b, a))
    return min(sent)


@pytest.mark.timeout(DEADLINE + 30)
@pytest.mark.parametrize("mode", ["embedded", "multiproc"])
async def test_100k_bad_frames_hurt_nobody(mode: str) -> None:
    # The fuzzers send far past any real client's message rate: that limit is off here (its
    # own test is in test_hostile.py); every other limit is on.
    server = await ServeProcess.start(
        "--port", "0", "--max-message-bytes", str(MAX_BYTES), "--actor-system", mode,
        *(["--admin-port", str(free_port())] if mode == "multiproc" else []),
        "--join-burst", "100", "--log-level", "WARNING", "--peer-messages-per-second", "0")
    try:
        url = f"{server.url}/demo"
        async with asyncio.timeout(DEADLINE):
            fuzzing_done = asyncio.Event()
            good = asyncio.create_task(good_pair(url, fuzzing_done))
            sent = await asyncio.gather(
                *(fuzz(url, seed) for seed in range(FUZZ_CONNECTIONS)),
                oversized(url, OVERSIZED_CONNECTIONS))
            fuzzing_done.set()
            exchanged = await good
        assert sum(sent) >= 100_000
        assert exchanged > 100  # they did talk all along
        assert server.process.returncode is None  # still up
        # and still serving newcomers
        a, b = await Client.connect(url), await Client.connect(url)
        await a.send("offer", "after", to=[b.peer_id])
        assert (await b.recv_event("offer"))["data"] == "after"
    finally:
        await server.stop()


def test_the_fuzz_frames_are_what_they_claim() -> None:
    """The generator's expectations hold against the decoder itself (no sockets)."""
    from membrane_rtc.protocol import InvalidJSON, InvalidMessage, decode_client_frame

    rng = random.Random(7)
    for _ in range(5000):
        frame, expect = fuzz_frame(rng, "me")
        if expect.kind in ("nothing", "pong"):
            continue
        try:
            decode_client_frame(frame, "me")
        except InvalidJSON:
            assert expect.description == "Invalid JSON"
        except InvalidMessage:
            assert expect.description == "Invalid message"
        else:
            assert expect.kind == "echo" or expect.description == "No such peer"
