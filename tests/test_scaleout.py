"""Several hosts: three real actor systems joined in a Thespian convention on loopback ports.

A leader with a gateway, a room host, and a room host with a gateway - each a
``membrane-rtc serve`` process with its own multi-process actor system. Rooms are placed on
the least loaded host, peers on two gateways talk in one room, and when a room host is
``kill -9``'d its rooms come back on the other host while the rest is untouched.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from membrane_rtc.config import ACTOR_KEY_VARIABLE

from .conftest import record_actor_group
from .support.net import free_port
from .support.procfs import wait_until_no_process_in
from .support.client import Client, http_get
from .support.docs import VARYING, listings, run_session
from .support.process import ServeProcess, run_cli
from .support.waiting import until

pytestmark = pytest.mark.slow  # several membrane-rtc serve processes per deployment

CALLBACK_TIMEOUT = "1"  # a room host is taken for lost after 3 s + this of silence
RESUME_GRACE = "2"  # a lost gateway's peers may resume elsewhere for this long, then leave
#: How a serve process says its admin port was taken after all (the bridge's own check; Thespian's).
PORT_TAKEN = ("is in use", "not a valid or useable")
PORT_ATTEMPTS = 3


def listening_pid(port: int) -> int:
    """The process listening on 127.0.0.1:``port`` (a Thespian admin: its own process group)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd).removeprefix("socket:[").rstrip("]") in inodes:
                    return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"nothing listens on port {port}")


class Deployment:
    """Three hosts' processes; ``admin`` runs ``membrane-rtc admin`` against the leader."""

    def __init__(self) -> None:
        self.ports = {name: free_port() for name in ("leader", "hostB", "hostC", "gatewayD")}
        self.convention = f"127.0.0.1:{self.ports['leader']}"
        self.processes: dict[str, ServeProcess] = {}
        self.groups: set[int] = set()

    async def start(self, name: str, *roles: str, ready: str | None = None) -> ServeProcess:
        def args() -> list[str]:
            words = [arg for role in roles for arg in ("--role", role)]
            words += ["--convention", self.convention, "--admin-port", str(self.ports[name]),
                      "--host-name", name, "--callback-timeout", CALLBACK_TIMEOUT,
                      "--resume-grace", RESUME_GRACE, "--log-format", "json"]
            return words + (["--port", "0"] if "gateway" in roles else [])

        def another_port() -> None:
            self.ports[name] = free_port()
            if name == "leader":
                assert not self.processes, "the leader starts first: nobody knows its port yet"
                self.convention = f"127.0.0.1:{self.ports['leader']}"

        return await self.launch(name, args, another_port, ready=ready)

    async def launch(self, name: str, args: Callable[[], list[str]],
                     another_port: Callable[[], None], ready: str | None = None) -> ServeProcess:
        """``membrane-rtc serve ARGS()`` as host ``name``, on its admin port ``self.ports[name]``.

        That port was free when chosen, outside the range the kernel hands out to actor
        processes and connections (tests/support/net.py); should another test's process still
        take it before this one binds it, ``another_port()`` chooses again, and it starts again.
        """
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                process = await ServeProcess.start(*args(), ready=ready)
                break
            except AssertionError as exc:  # it exited before serving; say why unless retried
                if attempt == PORT_ATTEMPTS or not any(why in str(exc) for why in PORT_TAKEN):
                    raise
                another_port()
        self.processes[name] = process
        admin = listening_pid(self.ports[name])  # its actor system's admin: a group of its own
        record_actor_group(admin)
        self.groups.add(os.getpgid(admin))
        return process

    async def admin(self, *args: str) -> Any:
        status, out, err = await run_cli("admin", "--admin-port", str(self.ports["leader"]),
                                         "--json", *args)
        assert status == 0, err
        return json.loads(out)

    async def rooms(self) -> dict[str, dict[str, Any]]:
        return {room["name"]: room for room in await self.admin("list")}

    async def room_running_on(self, name: str, host: str) -> dict[str, Any] | None:
        room = (await self.rooms()).get(name)
        return room if room and room["state"] == "running" and room["host"] == host else None

    async def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            await process.stop()
            if "--log-format" in process.args:  # every line JSON, Thespian's own included
                for line in process.stdout + process.stderr:
                    assert "(3585)" not in line, line  # shutdown noise, filtered out
                    json.loads(line)
        for group in self.groups:  # no actor process outlives its host's server
            await wait_until_no_process_in(group, timeout=30)


#: The deployment's actor-system key: the same on every host (and for membrane-rtc admin).
KEY = "scale-out-tests-shared-key"


@pytest.fixture
async def deployment(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Deployment]:
    monkeypatch.setenv(ACTOR_KEY_VARIABLE, KEY)  # every host started here, and the admin
    hosts = Deployment()
    try:
        yield hosts
    finally:
        await hosts.stop()


async def exchange(a: Client, b: Client) -> None:
    """Offer one way, answer the other: the signaling of a call."""
    await a.send("offer", {"sdp": "v=0 offer"}, [b.peer_id])
    assert (await skip_joins(b))["from"] == a.peer_id
    await b.send("answer", {"sdp": "v=0 answer"}, [a.peer_id])
    assert (await skip_joins(a))["from"] == b.peer_id


async def skip_joins(client: Client) -> dict[str, Any]:
    while (frame := await client.recv(timeout=10))["event"] in ("joined", "left"):
        pass
    return frame


async def test_rooms_spread_over_hosts_and_survive_the_loss_of_one(deployment: Deployment) -> None:
    leader = await deployment.start("leader", "leader", "gateway")
    readyz = leader.url.rsplit("/", 1)[0].replace("ws://", "http://") + "/readyz"
    assert await http_get(readyz) == (503, "not ready\n")  # no room host yet
    await deployment.start("hostB", "rooms", ready="serving as")

    async def ready() -> bool:
        return (await http_get(readyz))[0] == 200
    await until(ready, timeout=30)
    await deployment.admin("create", "first")
    first = await until(lambda: deployment.room_running_on("first", "hostB"), timeout=30)
    host_c = await deployment.start("hostC", "rooms", "gateway")

    async def both_hosts() -> bool:
        return {h["host"] for h in await deployment.admin("hosts")} == {"hostB", "hostC"}

    await until(both_hosts, timeout=30)
    await deployment.admin("create", "second")  # the least loaded host: hostC
    second = await until(lambda: deployment.room_running_on("second", "hostC"), timeout=30)
    assert os.getpgid(first["pid"]) != os.getpgid(second["pid"])  # two actor systems

    # Peers through two different gateways, in one room, then in the other.
    a = await Client.connect(f"{leader.url}/first")
    b = await Client.connect(f"{host_c.url}/first")
    await exchange(a, b)
    c = await Client.connect(f"{leader.url}/second")
    d = await Client.connect(f"{host_c.url}/second")
    await exchange(c, d)

    # hostB's serve process dies (kill -9): its actor system goes with it (the lifeline),
    # and the leader takes the host for lost.
    os.kill(deployment.processes["hostB"].pid, signal.SIGKILL)
    await wait_until_no_process_in(os.getpgid(first["pid"]), timeout=10)
    for peer in (a, b):
        frame = await peer.recv_event("error", timeout=30)
        assert frame["data"] == {"description": "Room closed",
                                 "details": "room host hostB lost"}
        assert await peer.closed() == 1000
    back = await until(lambda: deployment.room_running_on("first", "hostC"), timeout=30)
    assert back["restarts"] == 1 and back["reason"] == "room host hostB lost"

    # The other room never noticed; the moved one serves both gateways again.
    assert (await deployment.rooms())["second"]["pid"] == second["pid"]
    await exchange(d, c)
    a = await Client.connect(f"{leader.url}/first")
    b = await Client.connect(f"{host_c.url}/first")
    await exchange(b, a)
    assert [h["host"] for h in await deployment.admin("hosts")] == ["hostC"]


async def test_a_lost_gateway_takes_only_its_own_peers_away(deployment: Deployment) -> None:
    """A gateway host dies: its peers leave their rooms (as if their sockets had closed);
    the room and the peers on other gateways go on."""
    leader = await deployment.start("leader", "leader", "gateway")
    await deployment.start("hostB", "rooms", ready="serving as")
    await deployment.admin("create", "call")
    room = await until(lambda: deployment.room_running_on("call", "hostB"), timeout=30)
    gateway_d = await deployment.start("gatewayD", "gateway")
    here = await Client.connect(f"{leader.url}/call")
    there = await Client.connect(f"{gateway_d.url}/call")
    await exchange(here, there)

    gateway_d_actors = os.getpgid(listening_pid(deployment.ports["gatewayD"]))
    os.kill(gateway_d.pid, signal.SIGKILL)  # its actor system follows it
    await wait_until_no_process_in(gateway_d_actors, timeout=10)
    left = await here.recv_event("left", timeout=30)
    assert left["data"]["peer_id"] == there.peer_id
    assert (await deployment.rooms())["call"]["pid"] == room["pid"]  # the room went on
    other = await Client.connect(f"{leader.url}/call")
    await exchange(here, other)


async def test_a_convention_member_without_the_leader_is_refused_clearly() -> None:
    """Roles without every role need a convention; a bad address is one clear line."""
    status, _, err = await run_cli("serve", "--role", "rooms")
    assert status == 2 and "give --convention HOST:PORT" in err
    status, _, err = await run_cli("serve", "--role", "rooms", "--convention", "nowhere")
    assert status == 2 and "HOST:PORT" in err


async def test_a_convention_needs_the_shared_key_and_a_host_without_it_stays_out(
        deployment: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without $MEMBRANE_RTC_ACTOR_KEY, joining is refused in one line; a room host with
    another key is never let in: each side drops what the other sends, unread."""
    monkeypatch.setenv("MEMBRANE_RTC_STATE_DIR", str(tmp_path))  # a Thespian log of its own
    convention = ("--role", "rooms", "--convention", deployment.convention)
    monkeypatch.delenv(ACTOR_KEY_VARIABLE)
    status, _, err = await run_cli("serve", *convention)
    assert status == 2 and err.startswith(
        f"membrane-rtc: error: ${ACTOR_KEY_VARIABLE}: the hosts of a convention authenticate "
        "each other with one key"), err
    monkeypatch.setenv(ACTOR_KEY_VARIABLE, "short")
    status, _, err = await run_cli("serve", *convention)
    assert status == 2 and f"${ACTOR_KEY_VARIABLE}: must be at least 16 characters" in err

    monkeypatch.setenv(ACTOR_KEY_VARIABLE, KEY)
    await deployment.start("leader", "leader", "gateway")
    monkeypatch.setenv(ACTOR_KEY_VARIABLE, "another-key-than-the-leaders")
    await deployment.start("hostB", "rooms", ready="serving as")
    monkeypatch.setenv(ACTOR_KEY_VARIABLE, KEY)
    thespian_log = tmp_path / "thespian" / "thespian.log"

    async def refused() -> bool:  # their actor systems' processes say so in Thespian's log
        return thespian_log.exists() and "without this actor system's key" in \
            thespian_log.read_text(errors="replace")
    await until(refused, timeout=30)
    assert await deployment.admin("hosts") == []


async def test_the_guides_one_machine_commands_as_shown(deployment: Deployment) -> None:
    """docs/howto/scale-out.md, "One machine": its three commands, on free ports; then the
    guide's admin session prints what the guide shows, but for the pids."""
    text = (Path(__file__).parents[1] / "docs" / "howto" / "scale-out.md").read_text()
    section = text.split("## One machine, to try it", 1)[1].split("```console", 1)[1]
    lines = [line[2:] for line in section.split("```", 1)[0].splitlines()
             if line.startswith("$ ")]
    [export], commands = lines[:1], lines[1:]
    variable, _, key = export.removeprefix("export ").partition("=")
    assert variable == ACTOR_KEY_VARIABLE and len(commands) == 3
    os.environ[variable] = key  # as the guide's terminals have it (the fixture restores it)
    ports = {"1900": free_port(), "1901": free_port(), "1902": free_port(), "8081": 0}
    for name, command in zip(("leader", "rooms-a", "rooms-b"), commands):
        shown = command.split()[2:]  # after "membrane-rtc serve"
        own = shown[shown.index("--admin-port") + 1]  # its port as the guide shows it

        def args(shown: list[str] = shown, own: str = own, name: str = name) -> list[str]:
            deployment.ports[name] = ports[own]
            words = [str(ports[w]) if w in ports else
                     (f"127.0.0.1:{ports['1900']}" if w == "127.0.0.1:1900" else w)
                     for w in shown]
            if "gateway" in words and "--port" not in words:
                words += ["--port", "0"]  # the guide's 8080, here any free port
            return words

        def another_port(own: str = own) -> None:
            assert own != "1900" or not deployment.processes  # the leader starts first
            ports[own] = free_port()

        await deployment.launch(name, args, another_port,
                                ready=None if "gateway" in shown else "serving as")

    async def both_hosts() -> bool:
        return {h["host"] for h in await deployment.admin("hosts")} == {"rooms-a", "rooms-b"}
    await until(both_hosts, timeout=30)

    async def lobby_running() -> bool:
        room = (await deployment.rooms()).get("lobby")
        return room is not None and room["state"] == "running"
    await until(lobby_running, timeout=30)
    a = await Client.connect(f"{deployment.processes['leader'].url}/lobby")
    b = await Client.connect(f"{deployment.processes['rooms-b'].url}/lobby")
    await exchange(a, b)

    # The guide's operator session ("From the leader's machine"), against this deployment.
    [block] = [item.body for item in listings("howto/scale-out.md")
               if "admin --admin-port 1900 hosts" in item.body]

    def here(command: str) -> list[str]:
        words = command.split()
        assert words[:3] == ["membrane-rtc", "admin", "--admin-port"] and words[3] == "1900"
        return ["admin", "--admin-port", str(ports["1900"]), *words[4:]]
    hosts_named = {column: shape for column, shape in VARYING.items() if column != "HOST"}
    await run_session(block, here, hosts_named)  # each room on the host the guide shows
    await a.close(), await b.close()
