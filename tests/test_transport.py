"""The adaptations of Thespian's TCP transport: it listens on the address it advertises only
(loopback here), and the gateway's sends overlap."""

from __future__ import annotations

import json
import os
import threading
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
