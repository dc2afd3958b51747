"""The default room: everyone may join, every message is forwarded as sent."""

from membrane_rtc import Room


class DefaultRoom(Room):
    """Membrane's default room: all callbacks keep their defaults."""
