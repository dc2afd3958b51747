"""The adaptations of Thespian's TCP transport: it listens on the address it advertises only
(loopback here), it loads only what is signed with the actor system's key, and the gateway's
sends overlap."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import threading
from pathlib import Path
from typing import Any

import pytest
from thespian.actors import Actor, ActorSystem

from membrane_rtc.runtime.messages import Batch
from membrane_rtc.runtime.ordering import Sequenced
from membrane_rtc.runtime.transport import ACTOR_ADDRESS_VARIABLE, PipelinedSender, advertise

from .conftest import record_actor_group
from .support.net import free_port
from .support.process import ServeProcess, run_cli
from .support.procfs import listening_addresses, live_processes_in_group

pytestmark = pytest.mark.slow  # multi-process actor systems


async def test_nothing_of_a_one_machine_multiproc_server_listens_beyond_loopback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket the server and its actor system (admin, logger, supervisor, rooms)
    listen on is bound to 127.0.0.1: Thespian would bind them all to 0.0.0.0, and they
    accept pickles."""
    monkeypatch.delenv(ACTOR_ADDRESS_VARIABLE, raising=False)  # the default is what is tested
    admin_port = free_port()
    server = await ServeProcess.start("--port", "0", "--actor-system", "multiproc",
                                      "--admin-port", str(admin_port),
                                      "--room", "a", "--room", "b")
    try:
        port = server.url.split(":")[2].split("/")[0]
        status, out, err = await run_cli("admin", "--port", port, "--json", "list")
        assert status == 0, err
        rooms = json.loads(out)
        assert len(rooms) == 2
        group = os.getpgid(rooms[0]["pid"])
        record_actor_group(rooms[0]["pid"])
        actor_system = live_processes_in_group(group)
        # The admin, its logger, the supervisor, the admin actor, the lifeline, two rooms.
        assert len(actor_system) >= 6, actor_system
        listening = listening_addresses(actor_system | {server.pid})
        ports = {p for _, p in listening}
        assert admin_port in ports and int(port) in ports
        assert {room["pid"] for room in rooms} <= actor_system
        assert len(listening) >= len(actor_system)  # every actor process has its socket
        assert {host for host, _ in listening} == {"127.0.0.1"}, listening
    finally:
        assert await server.signal_and_wait() == 0


class Echo(Actor):
    """Answers every message with (its own address, the message)."""

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, (str, Sequenced)):
            self.send(sender, (self.myAddress, message))


def test_the_pipelined_sender_overlaps_sends_and_each_arrives() -> None:
    advertise()
    system = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()}, transientUnique=True)
    try:
        actors = [system.createActor(Echo) for _ in range(3)]
        taken: list[str] = []
        sender = PipelinedSender(system, taken.append)
        # Two rounds, the second scheduled while the first is in flight.
        sender.send([(actor, f"m{i}", f"m{i}") for i, actor in enumerate(actors)])
        assert sender.busy
        sender.send([(actors[0], "again", "again")])
        failures = []
        for _ in range(5000):
            failures += sender.step()
            if not sender.busy:
                break
        assert failures == [] and not sender.busy
        assert sorted(taken) == ["again", "m0", "m1", "m2"]  # each send's token, once over
        answers = [system.listen(5) for _ in range(4)]
        assert sorted(text for _, text in answers) == ["again", "m0", "m1", "m2"]
        for i, actor in enumerate(actors[1:], start=1):
            assert [t for a, t in answers if a == actor] == [f"m{i}"]
    finally:
        system.shutdown()


def test_what_pickle_cannot_take_fails_alone_and_what_was_sent_with_it_arrives() -> None:
    """One message in a numbered Batch cannot be pickled (the issue's 600 nested lists did
    that): the others of the Batch go, under the same number; alone, it fails at once."""
    advertise()
    system = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()}, transientUnique=True)
    try:
        actor = system.createActor(Echo)
        taken: list[str] = []
        sender = PipelinedSender(system, taken.append)
        lock = threading.Lock()  # pickle cannot take it
        sender.send([(actor, Sequenced("gw", 0, Batch(["a", lock, "b"])), "batch")])
        failures = []
        for _ in range(5000):
            failures += sender.step()
            if not sender.busy:
                break
        assert taken == ["batch"]
        assert [(f.messages, f.unsendable) for f in failures] == [([lock], True)]
        assert "TypeError" in failures[0].reason
        _, echoed = system.listen(5)
        assert echoed == Sequenced("gw", 0, Batch(["a", "b"]))
        sender.send([(actor, lock, "alone")])
        assert not sender.busy and taken == ["batch", "alone"]
        assert [f.messages for f in sender.step()] == [[lock]]
    finally:
        system.shutdown()


class Loads:
    """A pickle whose loading would leave a mark (a flag here)."""

    loaded = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (_mark_loaded, ())


def _mark_loaded() -> None:
    Loads.loaded = True


def test_signed_pickles_load_and_anything_else_is_dropped_unread() -> None:
    from thespian.system.transport.streamBuffer import ackDataErrPacket

    from membrane_rtc.runtime.transport import TAG_BYTES, _Signed

    signed, other = _Signed(b"the key", quiet=True), _Signed(b"another key", quiet=True)
    assert signed.loads(signed.dumps(("address", {"m": 1}))) == ("address", {"m": 1})
    data = signed.dumps(Loads())
    forged = [pickle.dumps(Loads()),  # no tag at all
              other.dumps(Loads()),  # another key's
              data[:TAG_BYTES] + pickle.dumps(Loads()) + b".",  # a good tag, other bytes
              data[:5]]  # shorter than a tag
    for bytes_ in forged:
        assert signed.loads(bytes_) == ackDataErrPacket
    assert not Loads.loaded and signed.refusals.count == len(forged)
    signed.loads(data)
    assert Loads.loaded  # the test's pickle does what it says when it is let through


def test_the_key_comes_from_the_environment_or_is_made_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from membrane_rtc.runtime.transport import ACTOR_KEY_VARIABLE, actor_key

    monkeypatch.delenv(ACTOR_KEY_VARIABLE, raising=False)
    made = actor_key()
    assert len(made) >= 32 and actor_key() == made
    monkeypatch.setenv(ACTOR_KEY_VARIABLE, "k" * 16)
    assert actor_key() == "k" * 16
    monkeypatch.setenv(ACTOR_KEY_VARIABLE, "short")
    with pytest.raises(ValueError, match="at least 16 characters"):
        actor_key()


async def test_the_server_drops_unsigned_pickles_and_its_operator_needs_no_flag(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pickle sent bare to the admin port is answered "bad data" and never loaded (as this
    same user here: tests/test_local_user.py does it as another one); ``admin --admin-port``
    finds the key in the state file; Thespian's log is in the 0700 state directory."""
    monkeypatch.delenv("MEMBRANE_RTC_ACTOR_KEY", raising=False)
    monkeypatch.setenv("MEMBRANE_RTC_STATE_DIR", str(tmp_path / "state"))
    marker = tmp_path / "loaded"
    admin_port = free_port()
    server = await ServeProcess.start("--port", "0", "--actor-system", "multiproc",
                                      "--admin-port", str(admin_port))
    try:
        status, out, err = await run_cli("admin", "--admin-port", str(admin_port), "--json",
                                         "list")
        assert status == 0, err
        record_actor_group(json.loads(out)[0]["pid"])
        data = pickle.dumps(Touch(str(marker)))
        answer = await asyncio.wait_for(_send_raw(admin_port, b"%d>" % len(data) + data), 30)
        assert b"ACK+DATAERR" in answer and not marker.exists()
        assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "state" / "thespian").stat().st_mode & 0o777 == 0o700
    finally:
        assert await server.signal_and_wait() == 0
    assert not marker.exists()


class Touch:
    """Loading it creates ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(self.path),))


async def _send_raw(port: int, frame: bytes) -> bytes:
    """Send ``frame`` to 127.0.0.1:``port``; the answer, up to a whole frame or the close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(frame)
    answer = b""
    while chunk := await reader.read(4096):
        answer += chunk
        size, mark, rest = answer.partition(b">")
        if mark and size.isdigit() and len(rest) >= int(size):
            break
    writer.close()
    return answer


def test_a_reachable_actor_address_is_told_to_need_a_private_network(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from membrane_rtc.startup import warn_if_actor_ports_leave_the_machine

    monkeypatch.setenv(ACTOR_ADDRESS_VARIABLE, "127.0.0.1")
    warn_if_actor_ports_leave_the_machine("multiprocTCPBase")
    assert caplog.records == []
    monkeypatch.setenv(ACTOR_ADDRESS_VARIABLE, "10.0.0.1")
    warn_if_actor_ports_leave_the_machine("multiprocTCPBase")
    [record] = caplog.records
    assert "10.0.0.1" in record.getMessage() and "WireGuard" in record.getMessage()
