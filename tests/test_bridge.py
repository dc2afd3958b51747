"""The bridge's sends (runtime/backlog.py, runtime/bridge.py): what queued sends become, and what
the bridge counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from thespian.actors import ActorExitRequest

from membrane_rtc.runtime.backlog import Backlog, Queued
from membrane_rtc.runtime.bridge import MULTIPROC, ActorBridge
from membrane_rtc.runtime.messages import Batch
from membrane_rtc.runtime.ordering import OrderedReceiver, OrderedSender, Sequenced


@dataclass(frozen=True)
class FakeAddress:
    actorAddressString: str


A, B = FakeAddress("a"), FakeAddress("b")
BACKLOGS = {"a": Backlog("a"), "b": Backlog("b")}


def _sends(items: list[tuple[FakeAddress, Any]], order: OrderedSender,
           quantum: int | None = None) -> list[tuple[FakeAddress, Any]]:
    queued = Queued()
    queued.add([(target, message, BACKLOGS[target.actorAddressString])
                for target, message in items])
    return [(target, message) for target, message, _ in queued.sends(order, quantum)]


def test_sends_to_one_actor_travel_as_one_numbered_batch_in_order() -> None:
    sends = _sends([(A, "a1"), (B, "b1"), (A, "a2"), (A, "a3")], OrderedSender("gw"))
    assert [target for target, _ in sends] == [A, B]
    to_a, to_b = (message for _, message in sends)
    assert isinstance(to_a, Sequenced) and to_a.message == Batch(["a1", "a2", "a3"])
    assert isinstance(to_b, Sequenced) and to_b.message == "b1"  # one message: not a Batch
    assert (to_a.seq, to_b.seq) == (0, 0)


def test_rounds_are_numbered_so_the_receiver_restores_their_order() -> None:
    order, receiver = OrderedSender("gw"), OrderedReceiver()
    first = _sends([(A, "1")], order)[0][1]
    second = _sends([(A, "2"), (A, "3")], order)[0][1]
    assert receiver.accept(second) == []  # early: held back
    assert receiver.accept(first) == ["1", Batch(["2", "3"])]
    assert receiver.accept(second) == []  # a duplicate now


def test_thespian_messages_travel_alone_between_what_came_before_and_after() -> None:
    exit_request = ActorExitRequest()
    sends = _sends([(A, "before"), (A, exit_request), (A, "after")], OrderedSender("gw"))
    assert [getattr(m, "message", m) for _, m in sends] == ["before", exit_request, "after"]
    assert sends[1][1] is exit_request  # not numbered: it acts on the actor itself


def test_a_round_takes_a_quantum_per_actor_so_one_actor_s_backlog_delays_no_other() -> None:
    """Embedded: the flooded actor gets ``quantum`` of its messages per round, the others all
    of theirs (below the quantum); what is left goes in the next rounds, in order."""
    order, queued = OrderedSender("gw"), Queued()
    queued.add([(A, f"a{i}", BACKLOGS["a"]) for i in range(5)] + [(B, "b0", BACKLOGS["b"])])
    first = queued.sends(order, quantum=2)
    assert [(target, message.message, token[1]) for target, message, token in first] == \
        [(A, Batch(["a0", "a1"]), 2), (B, "b0", 1)]
    queued.add([(B, "b1", BACKLOGS["b"])])
    second = queued.sends(order, quantum=2)
    assert [(target, message.message) for target, message, _ in second] == \
        [(A, Batch(["a2", "a3"])), (B, "b1")]
    last = queued.sends(order, quantum=2)
    assert [(target, message.message) for target, message, _ in last] == [(A, "a4")]
    assert not queued
    assert [message.seq for target, message, _ in first + second + last if target is A] == \
        [0, 1, 2]  # one numbered stream across rounds


def test_the_backlog_counts_what_was_told_until_its_send_is_over() -> None:
    bridge = ActorBridge()
    bridge.tell(A, "a1")
    bridge.tell(A, "a2")
    bridge.tell(B, "b1")
    assert (bridge.backlog(), bridge.backlog(A), bridge.backlog(B)) == (3, 2, 1)
    items, stopping = bridge._thread_rounds.take(0)
    assert not stopping and len(items) == 3
    queued = Queued()
    queued.add(items)
    sends = queued.sends(bridge._ordered_out, quantum=1)
    assert bridge.backlog(A) == 2  # taken from the queue is not taken in
    for _, _, token in sends:
        bridge._backlogs.credit(token)
    assert (bridge.backlog(), bridge.backlog(A), bridge.backlog(B)) == (1, 1, 0)
    for _, _, token in queued.sends(bridge._ordered_out):
        bridge._backlogs.credit(token)
    assert (bridge.backlog(), bridge.backlog(A), bridge.backlog(FakeAddress("c"))) == (0, 0, 0)


def test_embedded_sends_are_not_numbered() -> None:
    """simpleSystemBase runs every actor on one thread, in order: no envelope, no counter."""
    bridge = ActorBridge()
    bridge.tell(A, "a1")
    queued = Queued()
    queued.add(bridge._thread_rounds.take(0)[0])
    assert [message for _, message, _ in queued.sends(bridge._ordered_out)] == ["a1"]
    assert bridge.kept()["bridge.ordering_out"] == 0


def test_a_gone_actor_s_numbering_is_dropped_once_what_was_told_it_is_out() -> None:
    bridge = ActorBridge(MULTIPROC)
    bridge.tell(A, "a1")
    bridge.actor_gone(A)  # the room ended; "a1" still goes out, numbered
    bridge.tell(B, "b1")
    queued = Queued()
    queued.add(bridge._thread_rounds.take(0)[0])
    sends = queued.sends(bridge._ordered_out)
    assert [(target, message.seq) for target, message, _ in sends] == [(A, 0), (B, 0)]
    assert bridge.kept()["bridge.ordering_out"] == 1  # B's counter only
    for _, _, token in sends:
        bridge._backlogs.credit(token)
    bridge.actor_gone(B)
    assert bridge.kept()["bridge.backlogs"] == 1  # A's: it was still in flight when A was gone
