"""Python client for a running server's admin actor; ``membrane-rtc admin`` is built on it.

Two ways in, one set of typed requests and replies:

- embedded servers: the loopback admin channel (:mod:`membrane_rtc.ops.admin_channel`), with the
  token from the server's state file;
- multi-process servers: Thespian's admin port, asking the admin actor found by its global name,
  every message signed with the actor system's key (:func:`membrane_rtc.runtime.transport.authenticate`):
  found by the websocket port, the key in the server's state file; by the admin port,
  ``$MEMBRANE_RTC_ACTOR_KEY``, else the key in this user's state file of the server on that
  port. Without one the actor system would drop what it is sent, unread: the client says so.

Synchronous on purpose: it serves a command line and scripts, not an event loop.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from typing import Any

import msgspec
from websockets.sync.client import ClientConnection, connect

from .admin_channel import encode_request
from ..config import ACTOR_KEY_VARIABLE, DEFAULT_PORT, DEFAULT_ROOM_CLASS
from .operations import operation_of
from ..runtime.api import (ADMIN_NAME, CreateRoom, KickPeer, ListHosts, ListPeers, ListRooms, Reply,
                       Request, RestartRoom, StopRoom)
from ..supervision import HostInfo, PeerInfo, RoomInfo
from .state_file import find_multiproc, forget_if_stale, read_endpoint

__all__ = ["AdminClient", "AdminError"]

#: How long one admin request may take before the client gives up.
DEFAULT_TIMEOUT = 15.0


class AdminError(RuntimeError):
    """The server refused the request, or could not be reached; the message says which."""


class _ChannelTransport:
    """Embedded servers: one websocket to the loopback admin channel."""

    def __init__(self, port: int, token: str, timeout: float) -> None:
        self.timeout = timeout
        # Entered as a context manager (websockets 17 warns otherwise), left in close().
        self._open = ExitStack()
        try:
            self.connection: ClientConnection = self._open.enter_context(connect(
                f"ws://127.0.0.1:{port}/", additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=timeout, compression=None))
        except OSError as exc:
            raise AdminError(f"cannot reach the admin channel on 127.0.0.1:{port}: {exc}") from None
        except Exception as exc:
            raise AdminError(f"admin channel refused the connection: {exc}") from None

    def ask(self, request: Request) -> Reply:
        self.connection.send(encode_request(request).decode())
        try:
            answer = json.loads(self.connection.recv(timeout=self.timeout))
        except TimeoutError:
            raise AdminError(f"no answer within {self.timeout} s") from None
        if not answer.get("ok"):
            return Reply(None, error=answer.get("error", "unknown error"))
        value = answer.get("value")
        result_type = operation_of(request).result
        if result_type is not None:
            value = msgspec.convert(value, result_type)
        return Reply(None, value=value)

    def close(self) -> None:
        self._open.close()


class _ThespianTransport:
    """Multi-process servers: join the actor system on its admin port, ask the admin actor."""

    def __init__(self, admin_port: int, timeout: float, address: str | None = None,
                 key: str | None = None) -> None:
        self.timeout = timeout
        from thespian.actors import ActorSystem

        from .logs import private_thespian_log
        from ..runtime.api import AdminActor, advertise, authenticate, port_in_use

        # The admin listens on the address the server's actors advertise (127.0.0.1 by default).
        address = advertise(address)
        # Never start a system by accident: ActorSystem() on a free port would create one.
        if not port_in_use(admin_port, address):
            raise AdminError(f"no multi-process server on admin port {admin_port} ({address})")
        if not key:
            raise AdminError(
                f"no key for the actor system on admin port {admin_port}: run membrane-rtc "
                "admin as the server's user (the key is in its state file) or set "
                f"${ACTOR_KEY_VARIABLE}")
        private_thespian_log()
        authenticate(key, quiet=True)

        try:
            self.system = ActorSystem("multiprocTCPBase", {"Admin Port": admin_port},
                                      transientUnique=True)
            self.admin = self.system.createActor(AdminActor, globalName=ADMIN_NAME)
        except Exception as exc:  # Thespian's InvalidActorAddress, mostly: nothing answered
            raise AdminError(f"the actor system on admin port {admin_port} did not answer "
                             f"({type(exc).__name__}): a wrong key? It is in the server's "
                             f"state file, or ${ACTOR_KEY_VARIABLE}") from None

    def ask(self, request: Request) -> Reply:
        reply = self.system.ask(self.admin, request, self.timeout)
        if reply is None:
            raise AdminError(f"no answer within {self.timeout} s")
        if not isinstance(reply, Reply):
            raise AdminError(f"unexpected answer {reply!r}")
        return reply

    def close(self) -> None:
        pass  # shutting this handle down would shut the whole server's actor system down


class AdminClient:
    """Operate a running server: list, create, stop and restart rooms; list and kick peers."""

    def __init__(self, transport: _ChannelTransport | _ThespianTransport) -> None:
        self._transport = transport

    @classmethod
    def for_server(cls, port: int = DEFAULT_PORT, timeout: float = DEFAULT_TIMEOUT) -> AdminClient:
        """The client for the server whose websocket port is ``port`` (via its state file)."""
        try:
            endpoint = read_endpoint(port)
        except FileNotFoundError:
            raise AdminError(f"no membrane-rtc server on port {port} (no state file)") from None
        if forget_if_stale(port, endpoint):
            raise AdminError(f"the membrane-rtc server on port {port} is gone: its process "
                             f"{endpoint.pid} ended without cleaning up (its stale state file "
                             "is removed)")
        if endpoint.mode == "multiproc":
            # The state file has the very key the server uses; the variable is for older files.
            return cls(_ThespianTransport(endpoint.admin_port, timeout, endpoint.actor_address,
                                          endpoint.actor_key
                                          or os.environ.get(ACTOR_KEY_VARIABLE)))
        if not endpoint.token:
            raise AdminError("the state file has no admin token")
        return cls(_ChannelTransport(endpoint.admin_port, endpoint.token, timeout))

    @classmethod
    def multiproc(cls, admin_port: int, timeout: float = DEFAULT_TIMEOUT) -> AdminClient:
        """The client for a multi-process server, straight through Thespian's admin port; its
        key from ``$MEMBRANE_RTC_ACTOR_KEY``, else from this user's state file of the server
        on that admin port."""
        key = os.environ.get(ACTOR_KEY_VARIABLE)
        endpoint = None if key else find_multiproc(admin_port)
        return cls(_ThespianTransport(admin_port, timeout,
                                      endpoint.actor_address if endpoint else None,
                                      key or (endpoint.actor_key if endpoint else None)))

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def request(self, request: Request) -> Any:
        """Send one typed request; return its value or raise AdminError with the server's words."""
        reply = self._transport.ask(request)
        if reply.error is not None:
            raise AdminError(reply.error)
        return reply.value

    def list_rooms(self) -> list[RoomInfo]:
        return list(self.request(ListRooms()))

    def list_hosts(self) -> list[HostInfo]:
        """The room hosts and how many rooms each runs."""
        return list(self.request(ListHosts()))

    def create_room(self, name: str, room_class: str = DEFAULT_ROOM_CLASS,
                    options: Any = None) -> None:
        self.request(CreateRoom(name, room_class, options))

    def stop_room(self, name: str) -> None:
        self.request(StopRoom(name))

    def restart_room(self, name: str) -> None:
        self.request(RestartRoom(name))

    def list_peers(self, room: str) -> list[PeerInfo]:
        return list(self.request(ListPeers(room)))

    def kick_peer(self, room: str, peer_id: str) -> None:
        self.request(KickPeer(room, peer_id))
