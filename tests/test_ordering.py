"""Per-pair message order (runtime/ordering.py): numbering, holding back, gaps, forgetting."""

from __future__ import annotations

from membrane_rtc.runtime import ordering
from membrane_rtc.runtime.ordering import OrderedReceiver, OrderedSender


def test_each_receiver_gets_its_own_numbers() -> None:
    sender = OrderedSender("room:1")
    assert [sender.wrap("a", m).seq for m in "xyz"] == [0, 1, 2]
    assert sender.wrap("b", "w").seq == 0
    sender.forget("a")
    assert sender.wrap("a", "again").seq == 0
    assert sender.wrap("b", "v").channel == "room:1"


def test_early_arrivals_wait_for_the_ones_before_them() -> None:
    sender, receiver = OrderedSender("c"), OrderedReceiver()
    first, second, third = (sender.wrap("r", m) for m in ("1", "2", "3"))
    assert receiver.accept(third) == []
    assert receiver.accept(second) == []
    assert receiver.accept(first) == ["1", "2", "3"]
    assert receiver.accept(second) == []  # a duplicate is dropped
    assert receiver.accept(sender.wrap("r", "4")) == ["4"]


def test_channels_are_independent() -> None:
    a, b, receiver = OrderedSender("a"), OrderedSender("b"), OrderedReceiver()
    a0, a1 = a.wrap("r", "a0"), a.wrap("r", "a1")
    assert receiver.accept(a1) == []
    assert receiver.accept(b.wrap("r", "b0")) == ["b0"]  # not held behind a's gap
    assert receiver.accept(a0) == ["a0", "a1"]


def test_a_gap_that_never_fills_is_skipped_past_the_bound(monkeypatch) -> None:
    monkeypatch.setattr(ordering, "MAX_HELD", 3)
    sender, receiver = OrderedSender("c"), OrderedReceiver()
    sender.wrap("r", "lost")  # number 0 never arrives
    held = [sender.wrap("r", str(n)) for n in range(1, 5)]
    assert [receiver.accept(item) for item in held[:3]] == [[], [], []]
    assert receiver.accept(held[3]) == ["1", "2", "3", "4"]  # a 4th held: give up on 0
    assert receiver.accept(sender.wrap("r", "5")) == ["5"]


def test_a_forgotten_channel_starts_again_from_zero() -> None:
    receiver = OrderedReceiver()
    sender = OrderedSender("peer:x")
    assert receiver.accept(sender.wrap("r", "a")) == ["a"]
    assert receiver.accept(OrderedSender("peer:x").wrap("r", "b")) == []  # 0 again: a duplicate
    receiver.forget("peer:x")
    assert receiver.accept(OrderedSender("peer:x").wrap("r", "c")) == ["c"]


def test_unnumbered_sends_pass_as_they_are_and_keep_nothing() -> None:
    sender = OrderedSender("room:1", numbered=False)
    assert sender.wrap("a", "x") == "x"
    assert sender.receivers == 0


def test_a_forgotten_origin_drops_all_its_channels_and_lets_late_ones_through() -> None:
    now = [0.0]
    receiver = OrderedReceiver(clock=lambda: now[0])
    first, second = OrderedSender("room#1", origin="A"), OrderedSender("room#2", origin="A")
    other = OrderedSender("room#3", origin="B")
    for sender in (first, second, other):
        assert receiver.accept(sender.wrap("gw", "hello")) == ["hello"]
    held = first.wrap("gw", "held")
    late = first.wrap("gw", "late")
    assert receiver.accept(late) == []  # "held" is missing: held back
    receiver.forget_origin("A")
    # B's channel and its origin, and A's two channels for LATE_FOR seconds.
    assert receiver.channels == 2 + 2
    assert receiver.accept(held) == ["held"]  # late, from a sender gone: as it comes
    now[0] += ordering.LATE_FOR + 1
    assert receiver.channels == 2
    receiver.forget_origin("B")
    now[0] += ordering.LATE_FOR + 1
    assert receiver.channels == 0
