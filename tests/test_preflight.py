"""preflight: a class that does not load, or refuses its options, is one ConfigError naming
the setting it came from (so the command line shows the right flag)."""

from __future__ import annotations

import pytest

from membrane_rtc import RoomConfig, ServerConfig
from membrane_rtc.config_checks import ConfigError
from membrane_rtc.preflight import preflight


@pytest.mark.parametrize("config, field, key", [
    (ServerConfig(peer_class="nosuch_module:Peer"), "peer_class", None),
    (ServerConfig(auto_create=True, auto_room_class="nosuch_module:Room"),
     "auto_room_class", None),
    (ServerConfig(rooms=[RoomConfig("x", "nosuch_module:Room")]), "rooms", "room-class"),
    (ServerConfig(rooms=[RoomConfig("x", "actors.capped:CappedRoom", {"max_peers": "many"})]),
     "rooms", "room-options"),
])
def test_each_problem_names_its_own_setting(config: ServerConfig, field: str,
                                             key: str | None) -> None:
    with pytest.raises(ConfigError) as raised:
        preflight(config)
    assert (raised.value.field, raised.value.key) == (field, key)
    assert "\n" not in str(raised.value)


def test_a_config_whose_classes_load_passes() -> None:
    preflight(ServerConfig(rooms=[RoomConfig("x", "actors.capped:CappedRoom", {"max_peers": 2})]))
