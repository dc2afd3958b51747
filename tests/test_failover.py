"""Several leaders: the leading leader's ``membrane-rtc serve`` is killed (SIGKILL, as an OOM
kill would) and the next takes over.

Two leaders (each with a gateway), two room hosts (one with a gateway), on loopback ports,
each a real ``serve`` process with its own actor system. A call goes on in a room while the
leading leader dies; the other leader adopts the rooms from the hosts (same processes), and
answers ``admin list``, ``admin create`` and new peers. Then the first comes back: it stands
by (the failback rule: no room moves, none runs twice) and takes over when the second dies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any, AsyncIterator

import pytest

from membrane_rtc.config import ACTOR_KEY_VARIABLE

from .support.client import Client, http_get
from .support.net import free_port
from .support.procfs import wait_until_no_process_in
from .support.waiting import until
from .test_scaleout import KEY, Deployment, exchange, listening_pid

LEADERS = ("leader1", "leader2")


class Leaders(Deployment):
    """A deployment whose convention has two leaders, in this order on every process."""

    def __init__(self) -> None:
        super().__init__()
        self.ports.update({name: free_port() for name in LEADERS})
        self.killed: list[int] = []  # the process groups of the actor systems killed

    @property
    def leaders(self) -> list[str]:
        return [f"127.0.0.1:{self.ports[name]}" for name in LEADERS]

    async def start(self, name: str, *roles: str, ready: str | None = None) -> Any:
        def args() -> list[str]:
            words = [arg for role in roles for arg in ("--role", role)]
            for leader in self.leaders:
                words += ["--convention", leader]
            words += ["--admin-port", str(self.ports[name]), "--host-name", name,
                      "--callback-timeout", "1", "--log-format", "json"]
            return words + (["--port", "0"] if "gateway" in roles else [])

        def another_port() -> None:
            assert name not in LEADERS or not self.processes, "the others know its port"
            self.ports[name] = free_port()

        return await self.launch(name, args, another_port, ready=ready)

    async def admin_at(self, leader: str, *args: str) -> Any:
        """``membrane-rtc admin`` against one leader's admin port."""
        self.ports["leader"] = self.ports[leader]
        return await self.admin(*args)

    async def rooms_at(self, leader: str) -> dict[str, dict[str, Any]]:
        return {room["name"]: room for room in await self.admin_at(leader, "list")}

    def kill(self, name: str) -> None:
        """SIGKILL the serve process; its actor system follows (the lifeline)."""
        group = os.getpgid(listening_pid(self.ports[name]))
        os.kill(self.processes[name].pid, signal.SIGKILL)
        self.killed.append(group)


@pytest.fixture
async def leaders(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Leaders]:
    monkeypatch.setenv(ACTOR_KEY_VARIABLE, KEY)
    hosts = Leaders()
    try:
        yield hosts
    finally:
        await hosts.stop()


class Call:
    """Two peers of one room sending each other numbered messages, stamped, in the
    background: every one must arrive, in order; the longest delay is kept."""

    def __init__(self, a: Client, b: Client) -> None:
        self.a, self.b = a, b
        self.sent = 0
        self.longest = 0.0
        self.stop = asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            self.sent += 1
            await self.a.send("note", {"n": self.sent, "at": time.time()}, [self.b.peer_id])
            frame = await self.b.recv_event("note", timeout=10)
            assert frame["data"]["n"] == self.sent  # none lost, none out of order
            self.longest = max(self.longest, time.time() - frame["data"]["at"])
            await asyncio.sleep(0.05)


@pytest.mark.slow  # several membrane-rtc serve processes
async def test_the_next_leader_takes_over_and_the_first_stands_by_when_back(
        leaders: Leaders) -> None:
    first = await leaders.start("leader1", "leader", "gateway")
    second = await leaders.start("leader2", "leader", "gateway")
    await leaders.start("hostB", "rooms", ready="serving as")
    host_c = await leaders.start("hostC", "rooms", "gateway")

    async def both_hosts() -> bool:
        hosts = await leaders.admin_at("leader1", "hosts")
        return {h["host"] for h in hosts} == {"hostB", "hostC"}
    await until(both_hosts, timeout=30)
    for name in ("one", "two"):
        await leaders.admin_at("leader2", "create", name)  # passed on to the one leading

    async def running(leader: str, *names: str) -> dict[str, dict[str, Any]] | None:
        try:
            rooms = await leaders.rooms_at(leader)
        except AssertionError:  # asked while the leader it passed the question to died
            return None
        ok = all(rooms.get(n, {}).get("state") == "running" for n in names)
        return rooms if ok else None
    before = await until(lambda: running("leader1", "one", "two"), timeout=30)
    assert {before["one"]["host"], before["two"]["host"]} == {"hostB", "hostC"}
    assert await leaders.rooms_at("leader2") == before  # the one standing by passes it on

    # A call through the gateways that survive: leader2's and hostC's.
    a = await Client.connect(f"{second.url}/one")
    b = await Client.connect(f"{host_c.url}/one")
    await exchange(a, b)
    call = Call(a, b)
    calling = asyncio.create_task(call.run())

    leaders.kill("leader1")
    await wait_until_no_process_in(leaders.killed[-1], timeout=10)
    after = await until(lambda: running("leader2", "one", "two"), timeout=30)
    # Adopted where they ran, not restarted.
    assert {n: (r["pid"], r["host"], r["restarts"]) for n, r in after.items()} == \
        {n: (r["pid"], r["host"], r["restarts"]) for n, r in before.items()}
    await leaders.admin_at("leader2", "create", "three")
    await until(lambda: running("leader2", "three"), timeout=30)
    sent = call.sent

    async def call_goes_on() -> bool:
        return call.sent > sent + 5
    await until(call_goes_on, timeout=10)
    call.stop.set()
    await calling
    print(f"longest delay of the call's messages across the take-over: {call.longest:.3f} s")

    # New peers join through either gateway; hostC's had to find the new supervisor.
    c = await Client.connect(f"{host_c.url}/one")
    d = await Client.connect(f"{second.url}/two")
    e = await Client.connect(f"{host_c.url}/two")
    await exchange(c, a)
    await exchange(d, e)
    readyz = host_c.url.rsplit("/", 1)[0].replace("ws://", "http://") + "/readyz"
    assert (await http_get(readyz))[0] == 200

    # The first leader comes back: it stands by; no room moves, none runs twice.
    first = await leaders.start("leader1", "leader", "gateway")
    await until(lambda: running("leader1", "one", "two", "three"), timeout=30)
    back = await leaders.rooms_at("leader1")
    assert back == await leaders.rooms_at("leader2")
    assert {n: r["pid"] for n, r in back.items()} == \
        {n: r["pid"] for n, r in (await leaders.rooms_at("leader2")).items()}

    # ... and leads once the second is lost, adopting the same rooms again.
    leaders.kill("leader2")
    await wait_until_no_process_in(leaders.killed[-1], timeout=10)

    async def first_leads() -> bool:
        rooms = await running("leader1", "one", "two", "three")
        hosts = await leaders.admin_at("leader1", "hosts")
        return rooms is not None and len(hosts) == 2 and \
            {n: r["pid"] for n, r in rooms.items()} == {n: r["pid"] for n, r in back.items()}
    await until(first_leads, timeout=30)
    await leaders.admin_at("leader1", "create", "four")
    await until(lambda: running("leader1", "four"), timeout=30)
    f = await Client.connect(f"{host_c.url}/four")
    g = await Client.connect(f"{first.url}/four")
    await exchange(f, g)
    await exchange(c, b)  # the call in room one still goes on


@pytest.mark.slow  # several membrane-rtc serve processes
async def test_a_gateway_follows_the_supervisor_and_is_ready_while_a_leader_is(
        leaders: Leaders) -> None:
    """A gateway registered with the first leader's supervisor (the only one then) is told
    where the next one is; its /readyz says whether a leader is reachable: 200 after the
    take-over, 503 once no leader is left. The second leader, started after the room host,
    learns of it (it asks the host to register again). A room in the first leader's own
    system starts again on the room host."""
    await leaders.start("leader1", "leader", "rooms", ready="serving as")  # no gateway
    gateway = await leaders.start("hostC", "rooms", "gateway")
    await leaders.start("leader2", "leader", ready="serving as")
    readyz = gateway.url.rsplit("/", 1)[0].replace("ws://", "http://") + "/readyz"

    async def ready(expected: int) -> bool:
        return (await http_get(readyz))[0] == expected
    await until(lambda: ready(200), timeout=30)
    await leaders.admin_at("leader1", "create", "room")
    local = await leaders.rooms_at("leader1")  # the command line's demo room: made when
    assert local["room"]["host"] == "hostC" and local["demo"]["host"] == "leader1"  # alone
    await leaders.processes["leader2"].log_line("asking room host hostC to register", 30)
    await leaders.processes["leader2"].log_line("room host hostC joined", 30)
    leaders.kill("leader1")
    await gateway.log_line("the supervisor moved to another leader", timeout=30)
    await until(lambda: ready(200), timeout=30)
    a = await Client.connect(f"{gateway.url}/room")
    b = await Client.connect(f"{gateway.url}/room")
    await exchange(a, b)
    await leaders.admin_at("leader2", "create", "placed")  # its system knows where to

    async def placed() -> bool:
        room = (await leaders.rooms_at("leader2")).get("placed")
        return room is not None and room["state"] == "running" and room["host"] == "hostC"
    await until(placed, timeout=30)

    async def local_moved() -> dict[str, Any] | None:
        room = (await leaders.rooms_at("leader2")).get("demo")
        return room if room and room["state"] == "running" and room["host"] == "hostC" \
            else None
    moved = await until(local_moved, timeout=30)
    assert moved["restarts"] == 1 and moved["reason"] == f"leader {leaders.leaders[0]} lost"
    leaders.kill("leader2")
    await until(lambda: ready(503), timeout=30)


# -- the rules of who leads, as plain state (a fake clock) -----------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_first_live_leader_leads_after_a_silence_and_a_returning_one_stands_by() -> None:
    from membrane_rtc.supervision import Leadership
    clock = Clock()
    names = ["a:1", "b:2", "c:3"]
    a, b = Leadership(names, "a:1", 3, clock), Leadership(names, "b:2", 3, clock)
    assert not a.leading and a.step() is None  # time to hear from the others first
    clock.now = 3.5
    b.heard_from("a:1", False)
    a.heard_from("b:2", False)
    assert b.step() is None and a.step() == "lead"  # the first that lives
    b.heard_from("a:1", True)
    assert b.leader() == "a:1"
    clock.now = 7.0  # a is silent for more than 3 s: lost
    assert b.step() == "lead" and b.leader() == "b:2"
    back = Leadership(names, "a:1", 3, clock)  # a comes back, hears b leading
    back.heard_from("b:2", True)
    clock.now = 10.5
    back.heard_from("b:2", True)
    assert back.step() is None and back.leader() == "b:2"  # no failback
    b.heard_from("a:1", True)  # two leading (they could not hear each other): the later
    assert b.step() == "yield" and b.leader() == "a:1"  # in the list stands down


def test_a_single_leader_leads_at_once() -> None:
    from membrane_rtc.supervision import Leadership
    assert Leadership(["a:1"], "a:1", 3).leading


# -- what the guide shows ----------------------------------------------------------------------

#: The keys wg-quick(8) and wg(8) take in each section of a configuration file.
WIREGUARD_KEYS = {"Interface": {"Address", "ListenPort", "PrivateKey", "DNS", "MTU"},
                  "Peer": {"PublicKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"}}


def test_the_guides_wireguard_tunnel_joins_the_hosts_its_commands_name() -> None:
    """docs/howto/scale-out.md: the WireGuard configuration is wg-quick's, its host's tunnel
    address is the one its commands advertise, and every other host is a peer there."""
    import re
    import shlex

    from .support.docs import console_commands, listings
    [config] = [item.body for item in listings("howto/scale-out.md") if item.language == "ini"]
    sections: list[tuple[str, dict[str, str]]] = []
    for line in config.splitlines():
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1], {}))
        elif "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            sections[-1][1][key.strip()] = value.strip()
    assert [name for name, _ in sections] == ["Interface", "Peer", "Peer"]
    for name, keys in sections:
        assert set(keys) <= WIREGUARD_KEYS[name], keys
    own = sections[0][1]["Address"].split("/")[0]
    peers = {keys["AllowedIPs"].split("/")[0] for _, keys in sections[1:]}
    advertised = {re.match(r"THESPIAN_BASE_IPADDR=(\S+)", c).group(1)  # type: ignore[union-attr]
                  for c in console_commands("howto/scale-out.md")
                  if c.startswith("THESPIAN_BASE_IPADDR=")}
    assert own in advertised and peers == advertised - {own}
    for command in console_commands("howto/scale-out.md"):  # every convention on the tunnel
        words = shlex.split(command)
        for i, word in enumerate(words):
            if word == "--convention" and not words[i + 1].startswith("127.0.0.1"):
                assert words[i + 1].split(":")[0] in advertised, command


def test_thespians_check_ins_are_set_unless_the_operator_set_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Set in the environment, and in Thespian's module if it read them already."""
    from datetime import timedelta

    from thespian.system.admin import convention

    from membrane_rtc.runtime.transport import CONVENTION_CHECKINS, tune_convention
    for name in CONVENTION_CHECKINS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(convention, name, getattr(convention, name))  # restored after
    assert tune_convention() == CONVENTION_CHECKINS
    assert convention.CONVENTION_REREGISTRATION_PERIOD == timedelta(seconds=10)
    assert convention.CONVENTION_REGISTRATION_MISS_MAX == 30
    monkeypatch.setenv("CONVENTION_REREGISTRATION_PERIOD", "1:00")
    assert tune_convention()["CONVENTION_REREGISTRATION_PERIOD"] == "1:00"
    assert convention.CONVENTION_REREGISTRATION_PERIOD == timedelta(minutes=1)
