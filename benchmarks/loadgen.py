"""Signaling load generator, run in a process of its own: ``python -m benchmarks.loadgen``.

Scenarios (bounded in count and time, loopback only):

- ``forward``: P pairs join a room; in each pair A sends offer-sized messages to B with K in
  flight, B answers each one to A; A measures the round trip. Reports forwarded messages/s
  (two per round trip) and round-trip percentiles.
- ``paced``: P pairs, A sends B offers at a fixed total rate; B reports one-way latency.
- ``join``: N peers connect one after another; reports joins/s and connect-to-authenticated
  latency percentiles.
- ``idle``: N peers connect and stay until told to stop (stdin closes); reports when all are in.
- ``churn``: peers join and leave one room at a fixed rate (two room events each: what
  webhooks report) until the time is up; reports how many cycles were done.
- ``resume``: R rounds in a room that announces drops (``actors.presence:PresenceRoom``): A's
  connection is cut (no close frame); once B hears ``peer_away``, B sends A F messages; then
  A reconnects with its resume token. Reports the time from reconnecting to the last missed
  message, and how many of them never came.

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

import websockets


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(samples)
    return {
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 3),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "max_ms": round(1000 * ordered[-1], 3),
    }


#: "membrane" (membrane-rtc and the bare relay) or "peerjs" (PeerJS server's own protocol:
#: OFFER/ANSWER/CANDIDATE with ``dst``). Set from the command line.
PROTOCOL = "membrane"


async def join(url: str) -> tuple[Any, str]:
    if PROTOCOL == "peerjs":
        me = str(uuid.uuid4())
        url = f"{url}?key=peerjs&id={me}&token={uuid.uuid4().hex[:8]}"
    # max_queue=None: peers that never read (join, idle) must not stall their own close.
    connection = await websockets.connect(url, max_size=None, compression=None, max_queue=None)
    hello = json.loads(await asyncio.wait_for(connection.recv(), 10))
    if PROTOCOL == "peerjs":
        if hello.get("type") != "OPEN":
            raise RuntimeError(f"not admitted: {hello}")
        return connection, me
    if hello.get("event") != "authenticated":
        raise RuntimeError(f"not admitted: {hello}")
    return connection, hello["data"]["peer_id"]


async def next_event(connection: Any, event: str, timeout: float = 10) -> Any:
    """Skip frames until one with ``event``; return its data."""
    while True:
        message = json.loads(await asyncio.wait_for(connection.recv(), timeout))
        if message["event"] == event:
            return message["data"]


async def churn(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Join and leave at ``rate`` per second (paced, one at a time)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    cycles = 0
    while loop.time() - started < seconds:
        connection, _ = await join(url)
        await connection.close()
        cycles += 1
        wait = started + cycles / rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
    elapsed = loop.time() - started
    return {"scenario": "churn", "cycles": cycles, "cycles_per_s": round(cycles / elapsed, 1)}


async def resume(url: str, rounds: int, frames: int, size: int) -> dict[str, Any]:
    padding = "x" * max(0, size - 60)
    times: list[float] = []
    lost = 0
    resumed = 0
    for _ in range(rounds):
        a = await websockets.connect(url, compression=None, max_queue=None)
        hello = json.loads(await asyncio.wait_for(a.recv(), 10))["data"]
        b, _ = await join(url)
        a.transport.abort()  # the network goes
        await next_event(b, "peer_away")
        for n in range(frames):
            await b.send(frame("offer", {"n": n, "pad": padding}, hello["peer_id"]))
        started = time.perf_counter()  # the network is back
        back = await websockets.connect(f"{url}?resume={hello['resume_token']}",
                                        compression=None, max_queue=None)
        again = await next_event(back, "authenticated")
        resumed += again["peer_id"] == hello["peer_id"] and again["resumed"]
        got = 0
        try:
            while got < frames:
                data = await next_event(back, "offer", timeout=5)
                got += data["n"] == got
        except asyncio.TimeoutError:
            pass
        times.append(time.perf_counter() - started)
        lost += frames - got
        await back.close()
        await b.close()
    return {"scenario": "resume", "rounds": rounds, "frames_per_drop": frames,
            "resumed": resumed, "lost": lost, **percentiles(times)}


def frame(event: str, data: Any, to: str) -> str:
    """One message to one peer, in the target's protocol."""
    if PROTOCOL == "peerjs":
        return json.dumps({"type": event.upper(), "dst": to, "payload": data})
    return json.dumps({"event": event, "to": [to], "data": data})


def parse(text: str) -> tuple[str, str | None, Any]:
    """(event, sender, data) of a received frame, in either protocol."""
    message = json.loads(text)
    if PROTOCOL == "peerjs":
        return message.get("type", "").lower(), message.get("src"), message.get("payload")
    return message["event"], message.get("from"), message.get("data")


async def forward(url: str, pairs: int, inflight: int, size: int, seconds: float,
                  max_messages: int) -> dict[str, Any]:
    """A -> B offer, B -> A answer, K in flight per pair, for ``seconds`` (or a count)."""
    padding = "x" * max(0, size - 60)
    round_trips: list[float] = []
    connections = []
    for _ in range(pairs):
        a, a_id = await join(url)
        b, b_id = await join(url)
        connections.append((a, a_id, b, b_id))
    await asyncio.sleep(0.2)  # let join notices arrive before draining them below

    async def drain(connection: Any) -> None:
        while True:
            try:
                event, _, _ = parse(await asyncio.wait_for(connection.recv(), 0.05))
            except asyncio.TimeoutError:
                return
            if event not in ("joined", "left"):
                raise RuntimeError(f"unexpected frame {event}")

    for a, _, b, _ in connections:
        await drain(a)
        await drain(b)
    per_pair = max(1, max_messages // pairs)
    deadline = time.perf_counter() + seconds

    async def answerer(b: Any, a_id: str) -> None:
        async for text in b:
            event, _, data = parse(text)
            if event == "candidate":  # the offerer's way of saying "stop"
                return
            await b.send(frame("answer", data, a_id))

    async def offerer(a: Any, b_id: str) -> int:
        sent = done = 0
        starts: dict[int, float] = {}

        async def send_one() -> None:
            nonlocal sent
            starts[sent] = time.perf_counter()
            await a.send(frame("offer", {"n": sent, "sdp": padding}, b_id))
            sent += 1

        for _ in range(min(inflight, per_pair)):
            await send_one()
        while done < sent:
            _, _, data = parse(await asyncio.wait_for(a.recv(), 30))
            n = data["n"]
            round_trips.append(time.perf_counter() - starts.pop(n))
            done += 1
            if sent < per_pair and time.perf_counter() < deadline:
                await send_one()
        await a.send(frame("candidate", {"stop": True}, b_id))
        return done

    started = time.perf_counter()
    answering = [asyncio.create_task(answerer(b, a_id)) for a, a_id, b, _ in connections]
    done = await asyncio.gather(*(offerer(a, b_id) for a, _, _, b_id in connections))
    elapsed = time.perf_counter() - started
    await asyncio.gather(*answering)
    for a, _, b, _ in connections:
        await a.close()
        await b.close()
    total = 2 * sum(done)
    return {"scenario": "forward", "pairs": pairs, "inflight": inflight, "size": size,
            "forwarded": total, "seconds": round(elapsed, 3),
            "messages_per_s": round(total / elapsed, 1), **percentiles(round_trips)}


async def paced(url: str, pairs: int, rate: float, size: int, seconds: float) -> dict[str, Any]:
    """Send at a fixed aggregate ``rate`` (messages/s) A -> B; B measures one-way latency
    (send to receive, same process, same clock)."""
    padding = "x" * max(0, size - 60)
    latencies: list[float] = []
    connections = [(await join(url), await join(url)) for _ in range(pairs)]
    count = int(rate * seconds / pairs)
    interval = pairs / rate

    async def receiver(b: Any) -> None:
        got = 0
        while got < count:
            event, _, data = parse(await asyncio.wait_for(b.recv(), 30))
            if event == "offer":
                latencies.append(time.perf_counter() - data["t"])
                got += 1

    async def sender(a: Any, b_id: str, offset: float) -> None:
        start = time.perf_counter() + offset
        for n in range(count):
            delay = start + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await a.send(frame("offer", {"t": time.perf_counter(), "sdp": padding}, b_id))

    started = time.perf_counter()
    await asyncio.gather(*(receiver(b) for (_, (b, _)) in connections),
                         *(sender(a, b_id, i * interval / pairs)
                           for i, ((a, _), (_, b_id)) in enumerate(connections)))
    elapsed = time.perf_counter() - started
    for (a, _), (b, _) in connections:
        await a.close()
        await b.close()
    return {"scenario": "paced", "pairs": pairs, "target_rate": rate,
            "messages_per_s": round(len(latencies) / elapsed, 1), **percentiles(latencies)}


async def join_storm(url: str, peers: int, room_size: int = 0) -> dict[str, Any]:
    """Peers join one after another (and all leave at the end); with ``room_size``, into
    rooms of that many (``{room}`` in the URL: 0, 1, ...), else all into one."""
    latencies = []
    connections = []
    started = time.perf_counter()
    for n in range(peers):
        t0 = time.perf_counter()
        connection, _ = await join(url.replace("{room}", str(n // room_size if room_size else 0)))
        latencies.append(time.perf_counter() - t0)
        connections.append(connection)
    elapsed = time.perf_counter() - started
    for connection in connections:
        await connection.close()
    return {"scenario": "join", "peers": peers, "room_size": room_size,
            "seconds": round(elapsed, 3),
            "joins_per_s": round(peers / elapsed, 1), **percentiles(latencies)}


#: Idle peers connect this many at a time (thousands of them, one by one, would take minutes).
IDLE_JOINS_AT_ONCE = 50


async def idle(url: str, peers: int, rooms: int) -> dict[str, Any]:
    """Hold ``peers`` idle connections until stdin closes, spread over ``rooms`` rooms when the
    URL has a ``{room}`` (every join is announced to the room: one room of 10,000 would
    measure 50 million "joined" frames, not idle peers)."""
    connections = []
    started = time.perf_counter()
    for first in range(0, peers, IDLE_JOINS_AT_ONCE):
        batch = min(IDLE_JOINS_AT_ONCE, peers - first)
        urls = [url.replace("{room}", str((first + n) % rooms)) for n in range(batch)]
        connections += [c for c, _ in await asyncio.gather(*(join(u) for u in urls))]
    print(json.dumps({"scenario": "idle", "peers": peers, "ready": True,
                      "seconds": round(time.perf_counter() - started, 3)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for connection in connections:
        await connection.close()
    return {"scenario": "idle", "peers": peers, "closed": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["forward", "paced", "join", "idle", "resume",
                                             "churn"])
    parser.add_argument("--url", required=True, help="room URL, e.g. ws://127.0.0.1:8080/webrtc/demo")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--inflight", type=int, default=4)
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-messages", type=int, default=200_000)
    parser.add_argument("--peers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=1000.0, help="paced: messages/s in all")
    parser.add_argument("--rooms", type=int, default=1, help="idle: rooms to spread over ({room} in --url)")
    parser.add_argument("--room-size", type=int, default=0,
                        help="join: peers per room ({room} in --url; default: one room)")
    parser.add_argument("--rounds", type=int, default=50, help="resume: drops, one by one")
    parser.add_argument("--frames", type=int, default=20,
                        help="resume: messages sent to the dropped peer while it is away")
    parser.add_argument("--protocol", choices=["membrane", "peerjs"], default="membrane")
    args = parser.parse_args()
    global PROTOCOL
    PROTOCOL = args.protocol
    if not args.url.startswith(("ws://127.", "ws://localhost")):
        parser.error("benchmarks only talk to loopback")
    if args.scenario == "forward":
        result = forward(args.url, args.pairs, args.inflight, args.size, args.seconds,
                         args.max_messages)
    elif args.scenario == "paced":
        result = paced(args.url, args.pairs, args.rate, args.size, args.seconds)
    elif args.scenario == "join":
        result = join_storm(args.url, args.peers, args.room_size)
    elif args.scenario == "churn":
        result = churn(args.url, args.rate, args.seconds)
    elif args.scenario == "resume":
        result = resume(args.url, args.rounds, args.frames, args.size)
    else:
        result = idle(args.url, args.peers, args.rooms)
    print(json.dumps(asyncio.run(result)), flush=True)


if __name__ == "__main__":
    main()
