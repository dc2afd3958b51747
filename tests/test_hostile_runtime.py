"""One client must not hurt the runtime: a flood, a message that cannot be sent or encoded, an
actor system that died - each against a real ``membrane-rtc serve`` where it can be."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect as connect_sync

from membrane_rtc import Message, Server

from .conftest import ServerFactory, record_actor_group
from .support.client import Client, http_get, refused_status
from .support.hostile import FORWARD_TIME
from .support.net import free_port
from .support.process import ServeProcess, run_cli
from .support.procfs import live_processes_in_group, wait_until_no_process_in
from .support.waiting import expect_room_closed
from .test_observability import scrape, value

pytestmark = pytest.mark.slow  # floods for seconds, multi-process actor systems

MODES = ["embedded", "multiproc"]
SLOW_ROOM = "tests.support.hostile:SlowRoom"
#: How long the flood lasts (seconds), and what it must not do to the server meanwhile.
FLOOD_SECONDS = 15.0
FLOOD_FRAME_BYTES = 2000
MAX_RSS_GROWTH_KIB = 150 * 1024
MAX_ROUND_TRIP = 1.0
PING_EVERY = 0.1


async def serve(mode: str, *args: str) -> ServeProcess:
    """``membrane-rtc serve`` in ``mode`` on free loopback ports."""
    ports = ("--admin-port", str(free_port())) if mode == "multiproc" else ()
    return await ServeProcess.start("--port", "0", "--actor-system", mode, *ports, *args)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


class Flooder(threading.Thread):
    """A client that sends FLOOD_FRAME_BYTES frames to its room as fast as the server takes
    them, on a thread of its own (so that the test's event loop measures undisturbed)."""

    def __init__(self, url: str) -> None:
        super().__init__(name="flooder", daemon=True)
        self.url = url
        self.connection: ClientConnection | None = None
        self.joined = threading.Event()
        self.stopping = threading.Event()
        self.sent = 0

    def run(self) -> None:
        frame = json.dumps({"event": "flood", "data": "x" * FLOOD_FRAME_BYTES, "to": "all"})
        try:
            with connect_sync(self.url, open_timeout=5) as self.connection:
                assert json.loads(self.connection.recv(timeout=5))["event"] == "authenticated"
                self.joined.set()
                while not self.stopping.is_set():
                    self.connection.send(frame)
                    self.sent += 1
        except Exception:
            pass  # stopped: the socket was shut under a blocked send

    def stop(self) -> None:
        self.stopping.set()
        if self.connection is not None:
            try:
                self.connection.socket.shutdown(socket.SHUT_RDWR)  # ends a blocked send
            except OSError:
                pass
        self.join(10)
        assert not self.is_alive()


@dataclass
class FloodReport:
    rss_growth_kib: int = 0
    round_trips: list[float] = field(default_factory=list)
    flood_frames: int = 0


async def flood_one_room_and_watch_another(server: ServeProcess) -> FloodReport:
    """Flood room ``flood`` for FLOOD_SECONDS while a client of room ``quiet`` sends itself a
    message every PING_EVERY and waits for it; sample the server's RSS meanwhile."""
    report = FloodReport()
    pinger = await Client.connect(f"{server.url}/quiet")
    flooder = Flooder(f"{server.url}/flood")
    baseline = peak = rss_kib(server.pid)
    loop = asyncio.get_running_loop()
    flooder.start()
    try:
        assert await asyncio.to_thread(flooder.joined.wait, 10)
        end = loop.time() + FLOOD_SECONDS
        while (now := loop.time()) < end:
            await pinger.send("ping", now, [pinger.peer_id])
            frame = await pinger.recv_event("ping", timeout=10)
            report.round_trips.append(loop.time() - frame["data"])
            peak = max(peak, rss_kib(server.pid))
            await asyncio.sleep(max(0.0, now + PING_EVERY - loop.time()))
    finally:
        flooder.stop()
    report.rss_growth_kib = peak - baseline
    report.flood_frames = flooder.sent
    await pinger.close()
    return report


@pytest.mark.parametrize("mode", MODES)
async def test_a_flood_into_one_room_neither_grows_the_server_nor_delays_another_room(
        mode: str) -> None:
    """A client sends 2 KB frames as fast as it can into a room that takes 5 ms each, with
    no per-peer rate limit: the gateway reads from it only as fast as its room keeps up, so
    the server's memory stays put and another room's messages do not wait behind the flood."""
    server = await serve(mode, "--room", "flood", "--room", "quiet", "--room-class", SLOW_ROOM,
                         "--peer-messages-per-second", "0")
    try:
        report = await flood_one_room_and_watch_another(server)
    finally:
        await server.stop()
    print(f"\n{mode}: RSS growth {report.rss_growth_kib / 1024:.1f} MiB, round trip max "
          f"{max(report.round_trips):.3f} s over {len(report.round_trips)} pings, "
          f"{report.flood_frames} flood frames sent")
    assert report.flood_frames > FLOOD_SECONDS / FORWARD_TIME  # it did outrun its room
    assert report.rss_growth_kib < MAX_RSS_GROWTH_KIB
    assert max(report.round_trips) < MAX_ROUND_TRIP


def _port(server: ServeProcess) -> str:
    return server.url.split(":")[2].split("/")[0]


async def rooms(server: ServeProcess) -> dict[str, dict[str, Any]]:
    """``membrane-rtc admin list``: the registry, by room name."""
    status, out, err = await run_cli("admin", "--port", _port(server), "--json", "list")
    assert status == 0, err
    return {room["name"]: room for room in json.loads(out)}


async def until_running_again(server: ServeProcess, name: str, restarts: int) -> None:
    """Wait (bounded) until room ``name`` runs again after ``restarts`` restarts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not ((room := (await rooms(server)).get(name)) and room["state"] == "running"
               and room["restarts"] == restarts):
        assert loop.time() < deadline, room
        await asyncio.sleep(0.1)


async def talk(sender: Client, receiver: Client, count: int = 20) -> None:
    """``count`` messages from ``sender`` reach ``receiver``, in order."""
    for i in range(count):
        await sender.send("offer", i, [receiver.peer_id])
    assert [(await receiver.recv_event("offer"))["data"] for _ in range(count)] == \
        list(range(count))


@pytest.mark.parametrize("mode", MODES)
async def test_a_message_the_encoder_refuses_crashes_its_room_visibly_and_loses_nothing_else(
        mode: str) -> None:
    """``on_forward`` returns data the encoder cannot serialise: not a callback's exception,
    yet the room crashes as for one (its clients told "Room closed", the traceback logged
    once, a restart), and what was sent right after it to another room all arrives."""
    server = await serve(mode, "--room", "a", "--room", "b", "--room-class", SLOW_ROOM,
                         "--peer-messages-per-second", "0")
    try:
        victim = await Client.connect(f"{server.url}/a")
        mate = await Client.connect(f"{server.url}/a")
        await victim.recv_event("joined")
        other = await Client.connect(f"{server.url}/b")
        await victim.send("poison", None, "all")
        for i in range(20):  # at once: in the bridge's same rounds as the poison
            await other.send("after", i, [other.peer_id])
        assert [(await other.recv_event("after"))["data"] for _ in range(20)] == list(range(20))
        await expect_room_closed(victim, "room_crashed")
        await expect_room_closed(mate, "room_crashed")
        await server.log_line("room a crashed")
        await until_running_again(server, "a", restarts=1)
        first = await Client.connect(f"{server.url}/a")
        second = await Client.connect(f"{server.url}/a")
        await first.recv_event("joined")
        await talk(first, second)
        await talk(second, first)
        assert (await rooms(server))["b"]["restarts"] == 0
    finally:
        assert await server.signal_and_wait() == 0
    log = "".join(server.stderr)
    assert log.count("Traceback (most recent call last)") == 1, log
    assert "handling ClientMessage raised TypeError" in log and "protocol.py" in log


async def test_a_message_pickle_cannot_take_fails_alone_and_the_bridge_goes_on() -> None:
    """Multi-process: a ConnectPeer whose metadata pickle cannot take reaches the gateway's
    sender thread. It fails alone - its client refused at once (503), counted in
    ``membrane_rtc_runtime_errors_total{kind="unsendable"}``, logged once for three - and
    the bridge's threads live on: the other clients talk, new ones join, /healthz says 200."""
    metrics = free_port()
    server = await serve("multiproc", "--peer-class", "tests.support.hostile:UnpicklablePeer",
                         "--metrics-port", str(metrics), "--peer-messages-per-second", "0")
    try:
        alice = await Client.connect(f"{server.url}/demo")
        for _ in range(3):
            assert await refused_status(f"{server.url}/demo?unpicklable=1") == 503
        bob = await Client.connect(f"{server.url}/demo")
        await alice.recv_event("joined")
        await talk(alice, bob)
        await talk(bob, alice)
        samples = await asyncio.to_thread(scrape, metrics)
        assert value(samples, "membrane_rtc_runtime_errors_total", kind="unsendable") == 3
        assert await http_get(f"http://127.0.0.1:{_port(server)}/healthz") == (200, "ok\n")
    finally:
        assert await server.signal_and_wait() == 0
    log = "".join(server.stderr)
    assert log.count("cannot serialise for the actors") == 1, log
    assert "ConnectPeer" in log and "Traceback" not in log


async def test_the_issue_s_600_deep_message_fails_alone_in_its_batch(
        start_multiproc_server: ServerFactory) -> None:
    """The issue's frame (600 nested lists; the decoder refuses it now, the runtime must not
    rely on that), put straight into the runtime between two messages of the same round:
    those two arrive, it alone is dropped and counted, and the bridge goes on."""
    server = await start_multiproc_server()
    assert server.gateway is not None
    client = await Client.connect(f"{server.url}/demo")
    peer_id = client.peer_id
    conn_id = next(c.conn_id for c in server.gateway.connections.values()
                   if c.peer_id == peer_id)
    nested: Any = []
    for _ in range(600):
        nested = [nested]
    for event, data in (("before", 1), ("x", nested), ("after", 2)):  # one round: one Batch
        server.gateway.runtime.receive(conn_id, Message(event, data, peer_id, [peer_id]))
    assert (await client.recv_event("before"))["data"] == 1
    assert (await client.recv_event("after"))["data"] == 2
    assert server.metrics.registry.get_sample_value(
        "membrane_rtc_runtime_errors_total", {"kind": "unsendable"}) == 1
    await client.send("later", 3, [peer_id])
    assert (await client.recv_event("later"))["data"] == 3
    assert server.alive and all(thread.is_alive() for thread in server.bridge._threads)


def admin_process(group: int) -> int:
    """Thespian's admin in an actor system's process group: the one whose parent is not in
    the group (it daemonized; every actor process is forked below it)."""
    members = live_processes_in_group(group)

    def parent(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    admins = [pid for pid in members if parent(pid) not in members]
    assert len(admins) == 1, (members, admins)
    return admins[0]


async def end_the_actor_system(mode: str, client: Client, group: int) -> None:
    """Multi-process: kill -9 Thespian's admin. Embedded: a room's code calls sys.exit(),
    which no guard takes for an error: it ends the actor thread."""
    if mode == "multiproc":
        os.kill(admin_process(group), signal.SIGKILL)
    else:
        await client.send("exit", None, "all")


async def test_when_the_actor_system_dies_healthz_says_503(
        start_server_each_mode: ServerFactory) -> None:
    """In-process: /healthz asks the runtime (``alive``), which sees the admin process gone
    (a pidfd) or the actor thread ended; the server's watch (``actors_lost``) returns."""
    server = await start_server_each_mode({"demo": (SLOW_ROOM, None)})
    mode = server.config.actor_system
    group = await _group_of(server) if mode == "multiproc" else -1
    health = f"http://127.0.0.1:{server.port}/healthz"
    try:
        client = await Client.connect(f"{server.url}/demo")
        assert await http_get(health) == (200, "ok\n")
        await end_the_actor_system(mode, client, group)
        await asyncio.wait_for(server.actors_lost(), 5)
        assert await http_get(health) == (503, "actor system gone\n")
    finally:
        await server.abort()  # what `membrane-rtc serve` does next, before it exits
        if group != -1:
            os.killpg(group, signal.SIGKILL)  # what the dead admin left running
            await wait_until_no_process_in(group)


async def _group_of(server: Server) -> int:
    pid = next(room.pid for room in await server.list_rooms() if room.pid)
    record_actor_group(pid)
    return os.getpgid(pid)


@pytest.mark.parametrize("mode", MODES)
async def test_when_the_actor_system_dies_serve_exits_non_zero(mode: str) -> None:
    """It must not linger half-alive (/healthz 200, /readyz 503, new clients hanging): it
    exits with status 1 within a few seconds, for systemd or Kubernetes to restart it, and
    /healthz never says 200 again meanwhile."""
    server = await serve(mode, "--room-class", SLOW_ROOM)
    group = -1
    try:
        if mode == "multiproc":
            pid = (await rooms(server))["demo"]["pid"]
            record_actor_group(pid)
            group = os.getpgid(pid)
        client = await Client.connect(f"{server.url}/demo")
        health = f"http://127.0.0.1:{_port(server)}/healthz"
        assert await http_get(health) == (200, "ok\n")
        await end_the_actor_system(mode, client, group)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        answers: list[int] = []
        while server.process.returncode is None and loop.time() < deadline:
            try:
                answers.append((await http_get(health))[0])
            except Exception:
                pass  # its port closed: on its way out
            await asyncio.sleep(0.02)
        assert await asyncio.wait_for(server.process.wait(), max(0.1, deadline - loop.time())) == 1
        if 503 in answers:
            assert 200 not in answers[answers.index(503):], answers
        assert await client.closed() in (1001, 1006)
        await server.log_line("the actor system is gone")
    finally:
        await server.stop()
        if group != -1:
            if live_processes_in_group(group):  # what the dead admin left running
                os.killpg(group, signal.SIGKILL)
            await wait_until_no_process_in(group)
