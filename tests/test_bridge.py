"""The bridge's batching (runtime/bridge.py): what one round of queued sends becomes."""

from __future__ import annotations

from dataclasses import dataclass

from thespian.actors import ActorExitRequest

from membrane_rtc.runtime.bridge import _batched
from membrane_rtc.runtime.messages import Batch
from membrane_rtc.runtime.ordering import OrderedReceiver, OrderedSender, Sequenced


@dataclass(frozen=True)
class FakeAddress:
    actorAddressString: str


A, B = FakeAddress("a"), FakeAddress("b")


def test_sends_to_one_actor_travel_as_one_numbered_batch_in_order() -> None:
    sends = _batched([(A, "a1"), (B, "b1"), (A, "a2"), (A, "a3")], OrderedSender("gw"))
    assert [target for target, _ in sends] == [A, B]
    to_a, to_b = (message for _, message in sends)
    assert isinstance(to_a, Sequenced) and to_a.message == Batch(["a1", "a2", "a3"])
    assert isinstance(to_b, Sequenced) and to_b.message == "b1"  # one message: not a Batch
    assert (to_a.seq, to_b.seq) == (0, 0)


def test_rounds_are_numbered_so_the_receiver_restores_their_order() -> None:
    order, receiver = OrderedSender("gw"), OrderedReceiver()
    first = _batched([(A, "1")], order)[0][1]
    second = _batched([(A, "2"), (A, "3")], order)[0][1]
    assert receiver.accept(second) == []  # early: held back
    assert receiver.accept(first) == ["1", Batch(["2", "3"])]
    assert receiver.accept(second) == []  # a duplicate now


def test_thespian_messages_travel_alone_between_what_came_before_and_after() -> None:
    exit_request = ActorExitRequest()
    sends = _batched([(A, "before"), (A, exit_request), (A, "after")], OrderedSender("gw"))
    assert [getattr(m, "message", m) for _, m in sends] == ["before", exit_request, "after"]
    assert sends[1][1] is exit_request  # not numbered: it acts on the actor itself
