"""Where rooms go: the capabilities of each role, without actors."""

from membrane_rtc.runtime.placement import (CONVENTION_ADDRESS, HOST, INCARNATION, LEADER,
                                            LEADER_AT, ON_HOST, ROOMS, accepts_room,
                                            capabilities_for)


def test_roles_become_capabilities() -> None:
    assert capabilities_for({"leader", "rooms", "gateway"}, "h1") == {
        LEADER: True, ROOMS: True, HOST: "h1"}
    assert capabilities_for({"gateway"}, "h1") == {}
    assert capabilities_for({"rooms"}, "h2") == {ROOMS: True, HOST: "h2"}


def test_a_room_goes_to_a_room_host_and_to_the_one_named() -> None:
    host = capabilities_for({"rooms"}, "h2")
    assert accepts_room(host, {}) and accepts_room(host, {ON_HOST: "h2"})
    assert not accepts_room(host, {ON_HOST: "h3"})
    assert not accepts_room(capabilities_for({"leader", "gateway"}, "h1"), {})


def test_a_convention_names_its_leaders_and_each_run_of_a_room_host() -> None:
    one = capabilities_for({"leader", "rooms"}, "h1", ["10.0.0.1:1900"], "10.0.0.1:1900")
    assert one[CONVENTION_ADDRESS] == ("10.0.0.1", 1900)
    assert LEADER_AT not in one  # one leader: nothing to tell apart
    several = capabilities_for({"leader"}, "h1", ["a:1", "b:2"], "b:2")
    assert several[CONVENTION_ADDRESS] == [("a", 1), ("b", 2)] and several[LEADER_AT] == "b:2"
    assert INCARNATION not in several  # no rooms, no directory to name
    runs = [capabilities_for({"rooms"}, "h2", ["a:1"])[INCARNATION] for _ in range(2)]
    assert runs[0] != runs[1]  # a host's next run is never taken for this one
