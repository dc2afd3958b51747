"""What a setting is: its declaration as a config field (:func:`setting`), its record
(:class:`Setting`: the flag, file key and environment variable derived from its key), and how
the list of every setting is read back from a config class's fields.

:mod:`membrane_rtc.config` declares the server's settings with these; this module knows no
particular setting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["Setting", "setting", "declared_settings", "ENV_PREFIX"]

#: Every setting's environment variable is this prefix and its flag: MEMBRANE_RTC_PORT.
ENV_PREFIX = "MEMBRANE_RTC_"

#: What one value of a setting is, by the annotation of its ServerConfig field: the kind of
#: value, whether it is a list (a repeatable flag), whether it may be unset (None).
_KIND_OF_TYPE: dict[str, tuple[str, bool, bool]] = {
    "str": ("str", False, False),
    "int": ("int", False, False),
    "float": ("float", False, False),
    "bool": ("bool", False, False),
    "str | None": ("str", False, True),
    "int | None": ("int", False, True),
    "list[str]": ("str", True, False),
    "list[str] | None": ("str", True, True),
    "frozenset[str]": ("str", True, False),
    "list[RoomConfig]": ("str", True, False),  # the names; their class and options: settings
    #                                            of the command (config.COMMAND_SETTINGS)
    "str | type": ("spec", False, False),
    "Any": ("json", False, True),
}

_METADATA_KEY = "membrane_rtc.config_fields"


@dataclass(frozen=True)
class Setting:
    """One setting of ``membrane-rtc serve``, declared once; where it may be given is derived
    from its ``key``: the flag ``--KEY``, the config file's ``KEY = ...`` and the environment
    variable ``MEMBRANE_RTC_KEY`` (upper case, dashes as underscores)."""

    #: The flag without its dashes: ``port``, ``trusted-proxy`` (one of a list: singular).
    key: str
    #: What it does, for ``--help`` and the configuration reference (the default is added).
    help: str
    #: What one value is: ``str``, ``int``, ``float``, ``bool``, ``spec`` (a class,
    #: ``module:Class`` or ``file.py:Class``) or ``json`` (any JSON value, a TOML value in a
    #: file).
    kind: str
    #: Its value when no source gives one (on the command line: see ``ServerConfig`` for the
    #: few whose Python default differs).
    default: Any
    #: The ServerConfig field it sets; None for those of the command itself (logging, and the
    #: class and options of the rooms named by ``room``).
    field: str | None = None
    #: A list: the flag is repeated, the file has an array, the variable commas.
    many: bool = False
    #: May be unset (None); ``unset`` says what that means.
    optional: bool = False
    unset: str = "not set"
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    group: str = "server"
    #: Masked in ``--print-config``; better given in the environment than as a flag (``ps``).
    secret: bool = False
    #: A ``spec``'s base class: ``room`` or ``peer``.
    base: str | None = None
    #: When no source gives it, it takes this other setting's value (not its own default).
    default_from: str | None = None

    @property
    def flag(self) -> str:
        """The command-line flag: ``--port``."""
        return "--" + self.key

    @property
    def variable(self) -> str:
        """The environment variable: ``MEMBRANE_RTC_PORT``."""
        return ENV_PREFIX + self.key.upper().replace("-", "_")


def setting(default: Any, help: str, *, key: str | None = None, group: str = "server",
            metavar: str | None = None, choices: Sequence[str] = (), unset: str = "not set",
            secret: bool = False, base: str | None = None, default_from: str | None = None,
            command_line_default: Any = dataclasses.MISSING) -> Any:
    """Declare a ServerConfig field as a setting (its name and type are the field's).

    ``command_line_default``: the command line's default when it differs from Python's (a
    server started from the command line has a ``demo`` room, an embedded one none).
    """
    declared = {"key": key, "help": help, "group": group, "metavar": metavar,
                "choices": tuple(choices), "unset": unset, "secret": secret, "base": base,
                "default_from": default_from, "command_line_default": command_line_default}
    metadata = {_METADATA_KEY: declared}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)



def declared_settings(config_class: type, command_settings: Sequence[Setting],
                      placed_after: Mapping[str, str],
                      groups: Iterable[str]) -> tuple[Setting, ...]:
    """Every setting: the fields of ``config_class`` declared with :func:`setting`, then
    ``command_settings`` (each after the one ``placed_after`` names), in ``groups`` order."""
    found = []
    for item in dataclasses.fields(config_class):
        declared = dict(item.metadata[_METADATA_KEY])
        kind, many, optional = _KIND_OF_TYPE[str(item.type)]
        default = declared.pop("command_line_default")
        if default is dataclasses.MISSING:
            factory: Any = item.default_factory
            default = factory() if item.default is dataclasses.MISSING else item.default
        if isinstance(default, frozenset):  # listed in the order of its choices
            default = sorted(default, key=declared["choices"].index)
        key = declared.pop("key") or item.name.replace("_", "-")
        found.append(Setting(key=key, kind=kind, default=default, field=item.name, many=many,
                             optional=optional, **declared))
    for command in command_settings:  # next to the setting they belong with
        after = placed_after.get(command.key)
        at = next((i + 1 for i, s in enumerate(found) if s.key == after), len(found))
        found.insert(at, command)
    order = list(groups)
    return tuple(sorted(found, key=lambda s: order.index(s.group)))
