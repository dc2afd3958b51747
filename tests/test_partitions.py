"""Several hosts on real addresses, and a partition that heals: Linux network namespaces.

One namespace per host, joined by a bridge and veth pairs: the leader and a gateway on
10.77.0.1, a room host on 10.77.0.2, a room host and a gateway on 10.77.0.3 - each a real
``membrane-rtc serve`` that binds and advertises only its own address. Then the room host on
10.77.0.2 is cut off (its link down): its room starts again on the other, its peers are told.
Then the link comes back: the stale copy of the room stops (no room runs twice, no peer is in
two copies) and the host is back in the pool. Needs root (``ip netns``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from membrane_rtc.config import ACTOR_KEY_VARIABLE

from .support.client import Client
from .support.process import CONSOLE_SCRIPT, ServeProcess
from .support.tools import require
from .support.waiting import until
from .test_scaleout import KEY, exchange

pytestmark = pytest.mark.slow  # serve processes in network namespaces

SUBNET = "10.77.0"
ADMIN_PORT = 1900  # each namespace has ports of its own
HOSTS = {"leader": 1, "hostB": 2, "hostC": 3}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def netns_permitted() -> bool:
    """Whether this process may make network namespaces (root, and ``ip`` installed)."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        return False
    probe = f"mrtc-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError):
        return False
    _ip("netns", "del", probe)
    return True


class Network:
    """A bridge in this namespace (10.77.0.254, so the test reaches the hosts) and one
    namespace per host on it, each with its veth pair; ``cut``/``heal`` a host's link."""

    def __init__(self) -> None:
        tag = os.getpid() % 100000
        self.bridge = f"mrbr{tag}"
        self.namespaces = {name: f"mrtc-{tag}-{name}" for name in HOSTS}
        self.links = {name: f"mr{tag}{name[-1].lower()}" for name in HOSTS}  # this side's

    def up(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{SUBNET}.254/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for name, number in HOSTS.items():
            namespace, link = self.namespaces[name], self.links[name]
            _ip("netns", "add", namespace)
            _ip("link", "add", link, "type", "veth", "peer", "name", link + "p")
            _ip("link", "set", link + "p", "netns", namespace)
            _ip("link", "set", link, "master", self.bridge, "up")
            _ip("-n", namespace, "addr", "add", f"{SUBNET}.{number}/24", "dev", link + "p")
            _ip("-n", namespace, "link", "set", link + "p", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")

    def down(self) -> None:
        for name in HOSTS:
            subprocess.run(["ip", "netns", "del", self.namespaces[name]], capture_output=True)
            subprocess.run(["ip", "link", "del", self.links[name]], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def cut(self, name: str) -> None:
        _ip("link", "set", self.links[name], "down")

    def heal(self, name: str) -> None:
        _ip("link", "set", self.links[name], "up")

    def address(self, name: str) -> str:
        return f"{SUBNET}.{HOSTS[name]}"

    def launcher(self, name: str, folder: Path) -> Path:
        """A ``membrane-rtc`` that runs in host ``name``'s namespace, advertising its address."""
        script = folder / f"membrane-rtc-{name}"
        script.write_text(f"#!/bin/sh\nexec ip netns exec {self.namespaces[name]} env "
                          f"THESPIAN_BASE_IPADDR={self.address(name)} {CONSOLE_SCRIPT} \"$@\"\n")
        script.chmod(0o755)
        return script


class Hosts:
    """The three hosts' serve processes, in their namespaces."""

    def __init__(self, network: Network, folder: Path) -> None:
        self.network = network
        self.folder = folder
        self.processes: dict[str, ServeProcess] = {}
        self.leaders = [f"{network.address('leader')}:{ADMIN_PORT}"]

    async def start(self, name: str, *roles: str) -> ServeProcess:
        words = [arg for role in roles for arg in ("--role", role)]
        for leader in self.leaders:
            words += ["--convention", leader]
        words += ["--admin-port", str(ADMIN_PORT),
                  "--host-name", name, "--callback-timeout", "1", "--resume-grace", "0"]
        if "gateway" in roles:
            words += ["--host", self.network.address(name), "--port", "8080"]
        process = await ServeProcess.start(
            *words, executable=self.network.launcher(name, self.folder),
            ready=None if "gateway" in roles else "serving as")
        self.processes[name] = process
        return process

    async def admin(self, *args: str, at: str = "leader") -> Any:
        """``membrane-rtc admin`` in the namespace of host ``at`` (a leader)."""
        command = await asyncio.create_subprocess_exec(
            str(self.network.launcher(at, self.folder)), "admin", "--admin-port",
            str(ADMIN_PORT), "--json", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(command.communicate(), 30)
        assert command.returncode == 0, err.decode()
        return json.loads(out)

    async def rooms(self, at: str = "leader") -> dict[str, dict[str, Any]]:
        return {room["name"]: room for room in await self.admin("list", at=at)}

    async def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            await process.stop()


@pytest.fixture
async def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hosts]:
    require(netns_permitted(), "needs root and ip netns (iproute2) to make network namespaces")
    monkeypatch.setenv(ACTOR_KEY_VARIABLE, KEY)
    monkeypatch.setenv("MEMBRANE_RTC_STATE_DIR", str(tmp_path / "state"))
    network = Network()
    network.up()
    deployment = Hosts(network, tmp_path)
    try:
        yield deployment
    finally:
        await deployment.stop()
        network.down()


async def test_a_room_host_cut_off_and_back_runs_no_room_twice(hosts: Hosts) -> None:
    leader = await hosts.start("leader", "leader", "gateway")
    assert leader.url.startswith(f"ws://{hosts.network.address('leader')}:8080")
    await hosts.start("hostB", "rooms")

    async def running_on(name: str, host: str) -> dict[str, Any] | None:
        room = (await hosts.rooms()).get(name)
        return room if room and room["state"] == "running" and room["host"] == host else None
    await hosts.admin("create", "call")  # the only room host yet: hostB
    before = await until(lambda: running_on("call", "hostB"), timeout=30)
    host_c = await hosts.start("hostC", "rooms", "gateway")

    async def both_hosts() -> bool:
        return {h["host"] for h in await hosts.admin("hosts")} == {"hostB", "hostC"}
    await until(both_hosts, timeout=30)
    a = await Client.connect(f"{leader.url}/call")
    b = await Client.connect(f"{host_c.url}/call")
    await exchange(a, b)

    hosts.network.cut("hostB")
    for peer in (a, b):  # told, and closed
        frame = await peer.recv_event("error", timeout=30)
        assert frame["data"] == {"description": "Room closed", "details": "room host hostB lost"}
        assert await peer.closed() == 1000
    moved = await until(lambda: running_on("call", "hostC"), timeout=30)
    c = await Client.connect(f"{leader.url}/call")
    d = await Client.connect(f"{host_c.url}/call")
    await exchange(c, d)

    hosts.network.heal("hostB")

    async def stale_copy_gone() -> bool:
        try:
            os.kill(before["pid"], 0)  # the namespaces share this pid namespace
        except ProcessLookupError:
            return True
        return False
    await until(stale_copy_gone, timeout=30)
    await leader.log_line("room host hostB: stopping a stale copy of room call", timeout=30)
    await until(both_hosts, timeout=30)  # back in the pool
    await leader.log_line("room host hostB joined again")
    rooms = await hosts.rooms()
    assert rooms["call"]["pid"] == moved["pid"] and rooms["call"]["host"] == "hostC"
    peers = {peer["peer_id"] for peer in await hosts.admin("peers", "call")}
    assert peers == {c.peer_id, d.peer_id}  # nobody in two copies
    await exchange(d, c)
    await hosts.admin("create", "after")  # the least loaded host: hostB again
    await until(lambda: running_on("after", "hostB"), timeout=30)


async def test_two_leaders_cut_apart_end_with_one_leading_and_every_room_once(
        hosts: Hosts) -> None:
    """Two leaders (10.77.0.1 and .2) and a room host with a gateway (.3). The second is cut
    off: alone, it takes the lead; the first leads on, the call goes on. Once they reach
    each other again, the second (later in the list) stands down: one leader, each room
    once, answered alike at both leaders' admin ports."""
    hosts.leaders.append(f"{hosts.network.address('hostB')}:{ADMIN_PORT}")
    first = await hosts.start("leader", "leader", "gateway")
    second = await hosts.start("hostB", "leader")
    host_c = await hosts.start("hostC", "rooms", "gateway")

    async def host_known() -> bool:
        return [h["host"] for h in await hosts.admin("hosts")] == ["hostC"]
    await until(host_known, timeout=30)
    await hosts.admin("create", "call")
    before = await hosts.rooms()
    a = await Client.connect(f"{first.url}/call")
    b = await Client.connect(f"{host_c.url}/call")
    await exchange(a, b)

    hosts.network.cut("hostB")
    await second.log_line("leader 10.77.0.2:1900 leads now", timeout=30)
    await exchange(b, a)  # the first leads on; the call never noticed
    hosts.network.heal("hostB")
    await second.log_line("leader 10.77.0.2:1900 stands down", timeout=60)
    await first.log_line("leader 10.77.0.2:1900 stood down: adopting what it led", timeout=10)

    async def same_at_both() -> dict[str, dict[str, Any]] | None:
        rooms = await hosts.rooms()
        try:
            return rooms if rooms == await hosts.rooms(at="hostB") else None
        except AssertionError:  # asked just as it stood down
            return None
    rooms = await until(same_at_both, timeout=30)
    assert {n: r["pid"] for n, r in rooms.items()} == {n: r["pid"] for n, r in before.items()}
    await hosts.admin("create", "after", at="hostB")  # passed on to the one leading
    assert set(await hosts.rooms()) == {"demo", "call", "after"}
    c = await Client.connect(f"{host_c.url}/call")
    await exchange(c, a)
