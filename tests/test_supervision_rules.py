"""The supervisor's rules (membrane_rtc/supervision.py) as plain state, on a fake clock."""

from __future__ import annotations

from membrane_rtc.supervision import (AfterExit, Liveness, Registry, RestartBudget, RoomHosts,
                                      RoomStatus)

from .support.clock import FakeClock


def test_a_restart_budget_allows_n_within_the_window_then_refills() -> None:
    clock = FakeClock()
    budget = RestartBudget(3, 5.0, clock)
    assert [budget.allow() for _ in range(4)] == [True, True, True, False]
    clock.now += 4.9
    assert not budget.allow() and budget.spent == 3
    clock.now += 0.2  # the first three are now older than the window
    assert budget.allow() and budget.spent == 1
    budget.reset()
    assert budget.spent == 0


def test_a_crash_spends_the_budget_and_past_it_the_room_fails() -> None:
    clock = FakeClock()
    registry = Registry(max_restarts=2, restart_window=5.0, clock=clock)
    record = registry.add("r", "actors.default:DefaultRoom", None)
    for expected in (AfterExit.START, AfterExit.START, AfterExit.FAIL):
        record.address, record.state = object(), RoomStatus.RUNNING
        assert registry.after_exit(record, "boom", crashed=True) is expected
    assert record.state == RoomStatus.FAILED and record.restarts == 2
    assert record.info().reason == "boom" and record.address is None
    assert registry.refuse_create("r") is None  # a failed room may be created afresh


def test_stops_restarts_and_lost_hosts_do_not_spend_the_budget() -> None:
    registry = Registry(max_restarts=0, clock=FakeClock())
    record = registry.add("r", "x:Y", None)
    record.state = RoomStatus.RESTARTING
    assert registry.after_exit(record, "restarted by operator", crashed=True) is AfterExit.START
    record.state = RoomStatus.RUNNING
    assert registry.after_exit(record, "room host h lost", crashed=False) is AfterExit.START
    assert record.restarts == 2
    record.state = RoomStatus.STOPPING
    assert registry.after_exit(record, "normal", crashed=True) is AfterExit.FORGET
    assert "r" not in registry.rooms


def test_create_refuses_a_taken_name_and_past_the_room_limit() -> None:
    registry = Registry(max_rooms=2)
    registry.add("a", "x:Y", None)
    assert registry.refuse_create("a") == "room 'a' exists"
    registry.add("b", "x:Y", None)
    assert registry.refuse_create("c") == \
        "cannot create room 'c': the server's limit of 2 rooms is reached"
    assert Registry(max_rooms=0).refuse_create("c") is None  # 0: no limit


def test_only_serving_rooms_take_peers_and_rooms_are_counted_per_host() -> None:
    registry = Registry()
    running = registry.add("a", "x:Y", None)
    running.address, running.state, running.host = object(), RoomStatus.RUNNING, "h1"
    waiting = registry.add("b", "x:Y", None)
    waiting.state = RoomStatus.WAITING
    assert registry.serving("a") is running
    assert registry.serving("b") is None and registry.serving("nope") is None
    assert registry.find(running.address) is running
    assert registry.rooms_per_host() == {"h1": 1}
    assert [info.state for info in (r.info() for r in registry.rooms.values())] == \
        ["running", "waiting"]


def test_the_least_loaded_host_is_chosen_and_ties_are_stable() -> None:
    hosts = RoomHosts()
    assert hosts.least_loaded({}) is None  # no host: the room waits
    hosts.add("b")
    hosts.add("a")
    assert hosts.least_loaded({}) == "a"
    assert hosts.least_loaded({"a": 2, "b": 1}) == "b"
    hosts.remove("b")
    assert hosts.least_loaded({"a": 2, "b": 0}) == "a"


def test_liveness_is_silence_since_the_last_sign_of_life() -> None:
    clock = FakeClock()
    heard = Liveness(clock)
    heard.heard("g")
    clock.now += 3.0
    assert not heard.silent("g", 3.0)
    clock.now += 0.1
    assert heard.silent("g", 3.0)
    assert not heard.silent("never", 3.0)
    heard.heard("g")
    assert not heard.silent("g", 3.0)
    heard.forget("g")
    assert not heard.silent("g", 0.0)
