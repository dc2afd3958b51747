"""The checks of a server configuration's values, one named function per concern, each raising
:class:`ConfigError` naming the first setting that is wrong.

:meth:`membrane_rtc.config.ServerConfig.validate` runs them in order, once for the command
line and for ``Server(...)``. They take values, not the config, so that the declarations
(:mod:`membrane_rtc.config`) can use them without this module knowing them.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping, Sequence

from .names import room_name_problem

__all__ = ["ConfigError", "MIN_ACTOR_KEY_LENGTH", "convention_address", "check_numbers",
           "check_addresses", "check_resuming", "check_webhooks", "check_ice", "check_choice",
           "check_actor_key", "check_roles", "check_convention"]

#: The multi-process actor system's key's shortest accepted length, in characters.
MIN_ACTOR_KEY_LENGTH = 16
#: Settings that are port numbers (or unset).
PORTS = ("port", "metrics_port", "admin_port")
#: Settings that must be above 0.
POSITIVE = ("max_message_bytes", "idle_timeout", "connect_timeout", "restart_window",
            "empty_timeout")
#: Limits, where 0 means none.
LIMITS = ("max_peers_per_room", "max_rooms", "max_connections", "joins_per_second",
          "join_burst", "max_outbound_bytes", "callback_timeout", "max_restarts",
          "drain_timeout", "handshake_timeout", "max_connections_per_ip",
          "peer_messages_per_second", "peer_message_burst")


class ConfigError(ValueError):
    """A setting out of its range; ``field`` names it (the CLI shows it as its flag, the
    file's key or the environment variable it came from)."""

    def __init__(self, field: str, problem: str, key: str | None = None) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        #: The setting (``room-options``) when it is not simply the field's.
        self.key = key


def convention_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` of a convention leader, as Thespian wants it."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"convention address must be HOST:PORT, not {text!r}")
    return host, int(port)


def check_numbers(values: Mapping[str, Any]) -> None:
    """The ports, the settings that must be positive, and the limits (0: none), by field."""
    for name in PORTS:
        value = values[name]
        if value is not None and not 0 <= value <= 65535:
            raise ConfigError(name, f"{value} is not a port number")
    for name in POSITIVE:
        if values[name] <= 0:
            raise ConfigError(name, "must be positive")
    for name in LIMITS:
        if values[name] < 0:
            raise ConfigError(name, "must be >= 0 (0: no limit)")


def check_addresses(trusted_proxies: Iterable[str], room_names: Iterable[str]) -> None:
    """Each trusted proxy is an address or CIDR block; each start-up room's name is one."""
    for block in trusted_proxies:
        try:
            ipaddress.ip_network(block, strict=False)
        except ValueError:
            raise ConfigError("trusted_proxies", f"{block!r} is not an IP address or "
                                                 "CIDR block") from None
    for name in room_names:
        if (problem := room_name_problem(name)) is not None:
            raise ConfigError("rooms", problem)


def check_resuming(grace: float, queue_bytes: int) -> None:
    """The resume grace (0: off) and the bytes kept for a resume."""
    if grace < 0:
        raise ConfigError("resume_grace", "must be >= 0 (0: resuming off)")
    if queue_bytes <= 0:
        raise ConfigError("resume_queue_bytes", "must be positive")


def check_webhooks(urls: Sequence[str], secret: str | None, queue: int) -> None:
    """Webhooks are signed (a secret with any URL), to http(s) URLs, through a queue."""
    if urls and not secret:
        raise ConfigError("webhook_secret", "webhooks are signed: give a secret too "
                                            "(--webhook-secret)")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise ConfigError("webhook_urls", f"{url!r} is not an http(s) URL")
    if queue <= 0:
        raise ConfigError("webhook_queue", "must be positive")


def check_ice(turn_secret: str | None, turn_urls: Sequence[str], turn_ttl: int,
              stun_urls: Sequence[str]) -> None:
    """TURN needs a secret and URLs together; each ICE server URL has its scheme."""
    if turn_ttl <= 0:
        raise ConfigError("turn_ttl", "must be positive")
    if bool(turn_secret) != bool(turn_urls):
        raise ConfigError("turn_secret", "TURN needs both a secret and at least one URL "
                                         "(--turn-secret and --turn-url)")
    for name, urls, schemes in (("turn_urls", turn_urls, ("turn:", "turns:")),
                                ("stun_urls", stun_urls, ("stun:", "stuns:"))):
        for url in urls:
            if not url.startswith(schemes):
                raise ConfigError(name, f"{url!r} does not start with {' or '.join(schemes)}")


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """``value`` of setting ``name`` is one of its ``choices``."""
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}")


def check_actor_key(variable: str, key: str | None, multiproc: bool) -> None:
    """The multi-process actor system's key, from the environment ``variable``, if set, is
    long enough."""
    if multiproc and key and len(key) < MIN_ACTOR_KEY_LENGTH:
        raise ConfigError(f"${variable}", f"must be at least {MIN_ACTOR_KEY_LENGTH} "
                          "characters, e.g. the output of python3 -c "
                          "'import secrets; print(secrets.token_urlsafe(32))'")


def check_roles(roles: frozenset[str], every_role: Sequence[str], convention: Any) -> None:
    """Some of ``every_role``; a process without every role joins a convention."""
    if not roles or not roles <= set(every_role):
        raise ConfigError("roles", f"must be some of {', '.join(every_role)}")
    if convention is None and roles != set(every_role):
        raise ConfigError("roles", "a process without every role joins a convention: "
                                   "give --convention HOST:PORT (convention=)")


def check_convention(convention: list[str], roles: frozenset[str], multiproc: bool,
                     admin_port: int | None, variable: str, key: str | None) -> None:
    """A convention: each leader's ``HOST:PORT`` once, the multiproc actor system, a
    leader's admin port among the leaders', and the key every host shares (``variable``)."""
    try:
        leaders = [convention_address(text) for text in convention]
    except ValueError as exc:
        raise ConfigError("convention", str(exc)) from None
    if not leaders or len(set(leaders)) != len(leaders):
        raise ConfigError("convention", "give each leader's HOST:PORT once")
    if not multiproc:
        raise ConfigError("convention", "a convention needs the multiproc actor system")
    if "leader" in roles and admin_port is not None \
            and admin_port not in {port for _, port in leaders}:
        raise ConfigError("convention", "a leader is one of the convention's leaders: its "
                                        "admin port is one of their ports")
    if "leader" in roles and admin_port is None and len(leaders) > 1:
        raise ConfigError("admin_port", "a leader among several needs its own admin port")
    if not key:
        raise ConfigError(f"${variable}", "the hosts of a convention authenticate each "
                          "other with one key: set it to the same secret on every host "
                          "(docs/howto/scale-out.md)")
