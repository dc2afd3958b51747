"""What can go wrong with a server's settings before anything starts, checked once: the room
and peer classes load and accept their options, and ``--reload`` has its extra."""

from __future__ import annotations

from typing import Any

from .config import ServerConfig
from .config_checks import ConfigError
from .loading import SpecError, load_class
from .peer import Peer
from .room import Room

__all__ = ["preflight"]


def _check_class(spec: str | type, base: type, options: Any,
                 class_setting: tuple[str, str | None],
                 options_setting: tuple[str, str | None]) -> None:
    """Load a class and check its options; each problem is a ConfigError naming the setting
    it comes from (``(field, key)``: the key only when it is not simply the field's)."""
    try:
        cls: Any = load_class(spec, base)
    except SpecError as exc:
        raise ConfigError(class_setting[0], str(exc), class_setting[1]) from None
    field, key = options_setting
    try:
        cls.check_options(options)
    except ValueError as exc:
        raise ConfigError(field, str(exc), key) from None
    except Exception as exc:  # a check that broke is still one line, not a traceback
        raise ConfigError(field, f"{cls.__name__}.check_options failed: "
                                 f"{type(exc).__name__}: {exc}", key) from None


def preflight(config: ServerConfig) -> None:
    """What can go wrong before anything starts, checked once (``Server.start`` does it
    first; ``membrane-rtc serve`` before its event loop): every room and peer class loads
    and accepts its options (its ``check_options``), and ``reload`` has its extra.
    Raises ConfigError naming the setting."""
    for room in config.rooms:
        _check_class(room.room_class, Room, room.options, ("rooms", "room-class"),
                     ("rooms", "room-options"))
    _check_class(config.peer_class, Peer, config.peer_options, ("peer_class", None),
                 ("peer_options", None))
    if config.auto_create:
        _check_class(config.auto_room_class, Room, config.auto_room_options,
                     ("auto_room_class", None), ("auto_room_options", None))
    if config.reload:
        try:
            import watchfiles  # noqa: F401  (an extra: only --reload needs it)
        except ImportError:
            raise ConfigError("reload", "needs watchfiles: pip install "
                                        "'membrane-rtc[reload]'") from None
