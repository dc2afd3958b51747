"""Where rooms go: the capabilities of each role and the least-loaded choice, without actors."""

from membrane_rtc.runtime.placement import (HOST, LEADER, ON_HOST, ROOMS, RoomHosts,
                                            accepts_room, capabilities_for)


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


def test_the_least_loaded_host_is_chosen_and_ties_are_stable() -> None:
    hosts = RoomHosts()
    assert hosts.least_loaded({}) is None  # no host: the room waits
    hosts.add("b")
    hosts.add("a")
    assert hosts.least_loaded({}) == "a"
    assert hosts.least_loaded({"a": 2, "b": 1}) == "b"
    hosts.remove("b")
    assert hosts.least_loaded({"a": 2, "b": 0}) == "a"
