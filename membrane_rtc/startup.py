"""The parts a server starts for its roles: its actor system's capabilities and admin port,
where the actors' messages go, its ports (:class:`CannotListen` says which one failed),
and the admin endpoint it writes to the state file."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from typing import Any, Awaitable, Callable, TypeVar

from .config import ACTOR_KEY_VARIABLE, ServerConfig
from .ops.state_file import AdminEndpoint
from .ops.webhooks import Webhooks
from .runtime.bridge import DEFAULT_ADMIN_PORT, MULTIPROC, ActorBridge
from .runtime.messages.rooms import Event
from .runtime.transport import ACTOR_ADDRESS_VARIABLE, DEFAULT_ACTOR_ADDRESS, actor_key

__all__ = ["CannotListen", "listening", "actor_address", "admin_port_for",
           "message_handler", "warn_if_actor_ports_leave_the_machine", "admin_endpoint"]

log = logging.getLogger("membrane_rtc.server")

_T = TypeVar("_T")


class CannotListen(OSError):
    """One of the server's ports could not be opened: ``what`` says which (websockets, the
    admin channel, metrics) and ``field`` the setting that chose it."""

    def __init__(self, what: str, field: str, host: str, port: int | None,
                 cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.what, self.field, self.host, self.port = what, field, host, port

    def __str__(self) -> str:
        return f"cannot listen on {self.host}:{self.port or 0} ({self.what}, {self.field}): " \
               f"{self.strerror}"


async def listening(what: str, setting: str, host: str, port: int | None,
                    opening: Awaitable[_T]) -> _T:
    """Open a port, an OSError becoming a CannotListen that says which port it was."""
    try:
        return await opening
    except OSError as exc:
        raise CannotListen(what, setting, host, port, exc) from exc


def actor_address() -> str:
    """The address this process's actors listen on and advertise."""
    return os.environ.get(ACTOR_ADDRESS_VARIABLE) or DEFAULT_ACTOR_ADDRESS


def admin_port_for(config: ServerConfig) -> int:
    """The actor system's admin port: the setting, 1900 unset, a free port for 0 ("any free
    one", as for the other ports; the embedded admin channel picks its own)."""
    if config.admin_port is None:
        return DEFAULT_ADMIN_PORT
    if config.admin_port == 0 and config.actor_system == "multiproc":
        with socket.socket() as probe:  # Thespian takes a number, not 0: one free now
            probe.bind((actor_address(), 0))
            return int(probe.getsockname()[1])
    return config.admin_port


def _ignore(message: Any) -> None:
    """What a process without a gateway does with messages for gateways."""


def message_handler(gateway_handler: Callable[[Any], None] | None,
                    webhooks: Webhooks | None) -> Callable[[Any], None]:
    """What the actors send this process: events go to the webhooks (if any), the rest to the
    gateway (if any; else nowhere)."""
    handler = gateway_handler or _ignore
    if webhooks is None:
        return handler

    def handle(message: Any) -> None:
        if isinstance(message, Event):
            webhooks.post(message.payload)
        else:
            handler(message)
    return handle


def warn_if_actor_ports_leave_the_machine(system_base: str) -> None:
    """Say once, at start, that actor ports on a reachable address need a private network."""
    address = os.environ.get(ACTOR_ADDRESS_VARIABLE, "")
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if system_base == MULTIPROC and not loopback:
        log.warning("the actor system listens on %s: its ports take Python pickles signed with "
                    "$%s, unencrypted; keep that address on a private network or WireGuard "
                    "(docs/howto/scale-out.md)", address, ACTOR_KEY_VARIABLE)


def admin_endpoint(bridge: ActorBridge, channel_port: int | None,
                   channel_token: str | None) -> AdminEndpoint:
    """How ``membrane-rtc admin`` reaches this server (its state file's entry): the embedded
    admin channel if it has one, else the multi-process admin port and key."""
    if channel_port is not None:
        assert channel_token is not None
        return AdminEndpoint("embedded", channel_port, os.getpid(), channel_token)
    assert bridge.admin_port is not None
    return AdminEndpoint("multiproc", bridge.admin_port, os.getpid(),
                         actor_address=os.environ.get(ACTOR_ADDRESS_VARIABLE),
                         actor_key=actor_key())
