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


def _check_class(spec: str | type, base: type, options: Any, field: str,
                 key: str | None = None) -> None:
    cls: Any = load_class(spec, base)  # SpecError if it cannot be loaded
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
    try:
        for room in config.rooms:
            _check_class(room.room_class, Room, room.options, "rooms", "room-options")
        _check_class(config.peer_class, Peer, config.peer_options, "peer_options")
        if config.auto_create:
            _check_class(config.auto_room_class, Room, config.auto_room_options,
                         "auto_room_options")
    except SpecError as exc:
        raise ConfigError("rooms", str(exc), "room-class") from None
    if config.reload:
        try:
            import watchfiles  # noqa: F401  (an extra: only --reload needs it)
        except ImportError:
            raise ConfigError("reload", "needs watchfiles: pip install "
                                        "'membrane-rtc[reload]'") from None
