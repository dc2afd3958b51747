"""Where the settings of ``membrane-rtc serve`` come from: flags, the environment, a file.

Every setting is declared once (:data:`membrane_rtc.config.SETTINGS`); from that declaration
come its flag (``--idle-timeout``), its key in a ``--config`` TOML file (``idle-timeout =
30``) and its environment variable (``MEMBRANE_RTC_IDLE_TIMEOUT=30``). A flag wins over the
environment, which wins over the file, which wins over the default. A list is a repeated
flag, a TOML array or a comma-separated variable. A value that does not fit, or a key the
file should not have, is one error line naming the flag, variable or file it came from.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..config import (ACTOR_KEY_VARIABLE, BY_FIELD, BY_KEY, GROUPS, JWT_SECRET_VARIABLE,
                      SETTINGS, RoomConfig, ServerConfig)
from ..config_checks import ConfigError, convention_address
from ..loading import SpecError, absolute_spec, load_class
from ..peer import Peer
from ..room import Room
from ..config_fields import ENV_PREFIX, Setting

__all__ = ["SettingsError", "Resolved", "add_arguments", "given_on_command_line", "resolve",
           "server_config", "describe", "reference_table", "CONFIG_VARIABLE"]

#: Names the config file when ``--config`` does not (a container's environment, say).
CONFIG_VARIABLE = ENV_PREFIX + "CONFIG"
#: ``MEMBRANE_RTC_*`` variables that are not settings; any other is a typo worth a warning.
OTHER_VARIABLES = frozenset({CONFIG_VARIABLE, JWT_SECRET_VARIABLE, ACTOR_KEY_VARIABLE,
                             ENV_PREFIX + "STATE_DIR", ENV_PREFIX + "SCREENSHOT"})
#: How a ``bool`` is written in a variable.
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: What ``--print-config`` shows instead of a secret.
MASK = "********"
#: The base class a ``spec`` setting's class must derive from.
_BASES: dict[str, type] = {"room": Room, "peer": Peer}
#: Where a value came from when no source gave it.
DEFAULT = "default"


class SettingsError(Exception):
    """A setting that cannot be used, in one line naming where it came from (exit status 2)."""


@dataclass
class Resolved:
    """The value of every setting, by key, and where each came from."""

    values: dict[str, Any]
    #: ``--port``, ``MEMBRANE_RTC_PORT``, the file's path, ``default``, or what implied it.
    sources: dict[str, str]
    file: str | None = None
    #: Things worth a warning once logging is set up (a variable that is no setting).
    warnings: list[str] = field(default_factory=list)

    def where(self, key: str) -> str:
        """How an error names a setting: as given (the flag by default)."""
        source = self.sources.get(key, DEFAULT)
        if source == self.file:
            return f"{self.file}: {key}"
        if source.startswith(("--", ENV_PREFIX)):
            return source
        return BY_KEY[key].flag


# -- the command line ------------------------------------------------------------------------

def _shown(value: Any, setting: Setting) -> str:
    """A value as the help and the reference show it."""
    if setting.default_from is not None:
        return f"as --{setting.default_from}"
    if value is None or value == []:
        return setting.unset
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if setting.kind == "json":
        return json.dumps(value)
    return str(value)


def _help(setting: Setting) -> str:
    text = f"{setting.help} ({'repeatable; ' if setting.many else ''}default: " \
           f"{_shown(setting.default, setting)}"
    if setting.secret:
        text += f"; better in ${setting.variable}, which other users' ps cannot read"
    return (text + ")").replace("%", "%%")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every setting's flag to ``serve``'s parser, in its help group.

    No flag has a default here: what was not given is left out of the parsed arguments, so
    that the environment and the file can fill it (:func:`resolve`).
    """
    groups: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.group not in groups:
            groups[setting.group] = parser if setting.group == "server" \
                else parser.add_argument_group(setting.group, GROUPS[setting.group] or None)
        group = groups[setting.group]
        dest = setting.key.replace("-", "_")
        metavar = setting.metavar or ("{" + ",".join(setting.choices) + "}"
                                      if setting.choices else None)
        if setting.kind == "bool":
            group.add_argument(setting.flag, dest=dest, action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=_help(setting))
        else:
            group.add_argument(setting.flag, dest=dest, default=argparse.SUPPRESS,
                               action="append" if setting.many else "store",
                               metavar=metavar, help=_help(setting))


def given_on_command_line(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, by key, as argparse left them (text)."""
    return {setting.key: getattr(args, setting.key.replace("-", "_")) for setting in SETTINGS
            if hasattr(args, setting.key.replace("-", "_"))}


# -- one value, from text (a flag, a variable) or from TOML ----------------------------------

def _choice(setting: Setting, value: str) -> str:
    if not setting.choices:
        return value
    for choice in setting.choices:
        if value.lower() == choice.lower():
            return choice
    raise ValueError(f"{value!r} is not one of {', '.join(setting.choices)}")


def _from_text(setting: Setting, text: str) -> Any:
    """One value from its text (ValueError says what is wrong)."""
    if setting.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"not a whole number: {text!r}") from None
    if setting.kind == "float":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"not a finite number: {text!r}")
        return number
    if setting.kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"not true or false: {text!r}")
    if setting.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos}): {text}") from None
    return _choice(setting, text)


def _from_toml(setting: Setting, value: Any) -> Any:
    """One value as TOML gave it (ValueError says what is wrong)."""
    if setting.kind == "json":
        try:
            json.dumps(value)
        except TypeError:
            raise ValueError(f"{value!r} cannot be sent as JSON") from None
        return value
    expected = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
                "spec": (str,)}[setting.kind]
    if not isinstance(value, expected) or (isinstance(value, bool) and setting.kind != "bool"):
        words = {"int": "a whole number", "float": "a number", "bool": "true or false",
                 "str": "a string", "spec": "a string (module:Class or file.py:Class)"}
        raise ValueError(f"expected {words[setting.kind]}, not {value!r}")
    if setting.kind == "float":
        return float(value)
    return _choice(setting, value) if isinstance(value, str) else value


def _value(setting: Setting, raw: Any, toml: bool) -> Any:
    """A setting's whole value (a list for ``many``) from one source."""
    convert = _from_toml if toml else _from_text
    if setting.many:
        if toml:
            items = raw if isinstance(raw, list) else [raw]
        elif isinstance(raw, list):  # a repeated flag
            items = raw
        else:  # a variable: commas
            items = [item.strip() for item in raw.split(",") if item.strip()]
        return [convert(setting, item) for item in items]
    if isinstance(raw, bool) and setting.kind == "bool":  # --flag / --no-flag
        return raw
    value = convert(setting, raw)
    if setting.optional and value == "":
        return None
    return value


# -- every setting, from every source --------------------------------------------------------

def _suggest(word: str, choices: list[str], quote: bool = False) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if quote else f" (did you mean {close[0]}?)"


def read_file(path: str) -> dict[str, Any]:
    """The settings of a TOML file, by key; SettingsError for an unreadable file or an
    unknown key."""
    try:
        with open(path, "rb") as source:
            document = tomllib.load(source)
    except FileNotFoundError:
        raise SettingsError(f"--config: no such file: {path}") from None
    except OSError as exc:
        raise SettingsError(f"--config: cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    for key in document:
        if key not in BY_KEY:
            raise SettingsError(f"{path}: unknown setting {key!r}"
                                f"{_suggest(key.replace('_', '-').lower(), list(BY_KEY), True)}")
    return document


def resolve(flags: Mapping[str, Any], environ: Mapping[str, str],
            config_file: str | None = None) -> Resolved:
    """Every setting's value: from its flag, else its variable, else the file, else its
    default. ``config_file`` (``--config``) may also be named by ``$MEMBRANE_RTC_CONFIG``."""
    config_file = config_file or environ.get(CONFIG_VARIABLE) or None
    document = read_file(config_file) if config_file else {}
    resolved = Resolved({}, {}, config_file)
    for setting in SETTINGS:
        text = environ.get(setting.variable, "")
        try:
            if setting.key in flags:
                resolved.sources[setting.key] = setting.flag
                value = _value(setting, flags[setting.key], toml=False)
            elif text.strip():  # an empty variable is an unset one (as with docker -e X=)
                resolved.sources[setting.key] = setting.variable
                value = _value(setting, text, toml=False)
            elif setting.key in document:
                resolved.sources[setting.key] = config_file or ""
                value = _value(setting, document[setting.key], toml=True)
            else:
                continue
        except ValueError as exc:
            raise SettingsError(f"{resolved.where(setting.key)}: {exc}") from None
        resolved.values[setting.key] = value
    for setting in SETTINGS:  # the defaults, once the others are known
        if setting.key in resolved.values:
            continue
        if setting.default_from is not None:
            resolved.values[setting.key] = resolved.values[setting.default_from]
            resolved.sources[setting.key] = f"as {setting.default_from}"
        else:
            resolved.values[setting.key] = setting.default
            resolved.sources[setting.key] = DEFAULT
    _imply(resolved)
    known = {setting.variable for setting in SETTINGS} | OTHER_VARIABLES
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in known:
            resolved.warnings.append(f"{name} is not a setting{_suggest(name, sorted(known))}; "
                                     "ignored")
    return resolved


def _imply(resolved: Resolved) -> None:
    """Settings that follow from others when not given themselves."""
    values, sources = resolved.values, resolved.sources
    values["path-prefix"] = "/" + str(values["path-prefix"]).strip("/")
    if values["convention"] is None:
        return
    if sources["actor-system"] == DEFAULT:  # a convention is of multi-process systems
        values["actor-system"] = "multiproc"
        sources["actor-system"] = "implied by convention"
    if values["admin-port"] is None and "leader" in values["role"] \
            and len(values["convention"]) == 1:
        try:  # the convention is the leader's own admin port
            values["admin-port"] = convention_address(values["convention"][0])[1]
            sources["admin-port"] = "implied by convention"
        except ValueError:
            pass  # validate() says what is wrong with it


def _class(resolved: Resolved, key: str) -> str | type:
    """A class SPEC checked now (one clear line instead of a traceback later), kept a string
    so that actors in other processes load it too; file SPECs made absolute."""
    setting = BY_KEY[key]
    try:
        spec = absolute_spec(resolved.values[key])
        load_class(spec, _BASES[setting.base or "room"])
    except SpecError as exc:
        raise SettingsError(f"{resolved.where(key)}: {exc}") from None
    resolved.values[key] = spec
    return spec


def server_config(resolved: Resolved) -> ServerConfig:
    """The ServerConfig the settings make, its classes loaded and every value checked
    (``ServerConfig.validate``); SettingsError names the setting as it was given."""
    values = resolved.values
    for setting in SETTINGS:
        if setting.kind == "spec":
            _class(resolved, setting.key)
    fields = {setting.field: values[setting.key] for setting in SETTINGS
              if setting.field is not None}
    fields["rooms"] = [RoomConfig(name, values["room-class"], values["room-options"])
                       for name in values["room"]]
    fields["roles"] = frozenset(values["role"])
    config = ServerConfig(**fields)
    try:
        config.validate()
    except ConfigError as exc:
        named = BY_FIELD.get(exc.field)
        where = resolved.where(exc.key or named.key) if named else exc.field
        raise SettingsError(f"{where}: {exc.problem}") from None
    return config


# -- showing them ----------------------------------------------------------------------------

def _toml(value: Any) -> str:
    """A value in TOML (ValueError for what TOML cannot say: null)."""
    if value is None:
        raise ValueError("null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, dict):
        items = [f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items()]
        return "{" + ", ".join(items) + "}"
    raise ValueError(type(value).__name__)


def describe(resolved: Resolved) -> str:
    """``serve --print-config``: every setting's effective value, as a TOML file one could
    ``--config``, with where it came from; secrets masked."""
    lines = ["# membrane-rtc serve: the effective settings (a flag wins over the environment,",
             "# which wins over the file, which wins over the default)"]
    if resolved.file:
        lines.append(f"# file: {resolved.file}")
    rows = []
    for setting in SETTINGS:
        value = resolved.values[setting.key]
        source = resolved.sources[setting.key]
        if setting.secret and value:
            value = MASK
        try:
            text = f"{setting.key} = {_toml(value)}"
        except ValueError:  # unset (TOML has no null), or options holding a null
            text = f"# {setting.key}: " + (setting.unset if value is None
                                           else f"{json.dumps(value)} (JSON)")
        rows.append((text, source))
    width = min(max(len(text) for text, _ in rows), 60)
    lines += [f"{text.ljust(width)}  # {source}" for text, source in rows]
    return "\n".join(lines)


def reference_table() -> str:
    """The configuration reference's list of settings (docs/reference/configuration.md),
    one line per setting, by help group."""
    lines = []
    for group, description in GROUPS.items():
        lines += [f"### {group.capitalize() if group != 'server' else 'Server'}", ""]
        if description:
            lines += [description, ""]
        lines += ["| flag, file key | environment variable | default | what it does |",
                  "|---|---|---|---|"]
        for setting in (s for s in SETTINGS if s.group == group):
            many = " (repeatable)" if setting.many else ""
            what = setting.help.replace("|", "\\|")
            if setting.secret:
                what += "; a secret: better in the environment than as a flag"
            default = _shown(setting.default, setting)
            if setting.default_from is None and setting.default not in (None, []):
                default = f"`{default}`"
            lines.append(f"| `{setting.flag}`{many}, `{setting.key}` | `{setting.variable}` | "
                         f"{default} | {what} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
