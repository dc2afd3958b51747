"""The default room: everyone may join, every message is forwarded as sent."""

from typing import Any

from membrane_rtc import Room


class DefaultRoom(Room):
    """Membrane's default room: all callbacks keep their defaults."""

    @classmethod
    def check_options(cls, options: Any) -> None:
        """It takes none: some given is a mistake (the wrong class, most likely)."""
        if options not in (None, {}):
            raise ValueError(f"DefaultRoom takes no options, got {options!r} (a cap on "
                             "peers: --room-class actors.capped:CappedRoom)")
