"""Where rooms go: the capabilities of each role, without actors."""

from membrane_rtc.runtime.placement import (HOST, LEADER, ON_HOST, ROOMS, accepts_room,
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
