"""The server: an actor system, its supervisor and a websocket gateway, started and stopped together.

Embed it in your own asyncio program::

    async with Server(ServerConfig(port=8080, rooms=[RoomConfig("demo", MyRoom)])) as server:
        await server.serve_forever()

It is also the Python face of the operations (create, stop, list rooms, forward a message).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from typing import Any, Awaitable, Callable, Literal, TypeVar

from .ops.admin_channel import AdminChannel
from .config import ACTOR_KEY_VARIABLE, DEFAULT_ROOM_CLASS, RoomConfig, ServerConfig, own_leader
from .config_checks import ConfigError, convention_address
from .gateway.gateway import Gateway
from .loading import SpecError, load_class
from .ops.metrics import Metrics
from .protocol import Message
from .peer import Peer
from .room import Room
from .runtime.bridge import (CONVENTION_ADDRESS, DEFAULT_ADMIN_PORT, EMBEDDED, MULTIPROC,
                             ActorBridge, ActorSystemError)
from .ops.reload import Reloader
from .runtime.gateway_link import ActorRuntime
from .runtime.placement import (INCARNATION, capabilities_for, default_host_name,
                                incarnation)
from .runtime.transport import ACTOR_ADDRESS_VARIABLE, DEFAULT_ACTOR_ADDRESS, actor_key
from .runtime.messages import (
    Address,
    ConfigureLeaders,
    ConfigureSupervisor,
    CreateRoom,
    Event,
    ForwardMessage,
    KeptState,
    KickPeer,
    ListHosts,
    ListPeers,
    ListRooms,
    ReloadRoom,
    Reply,
    Request,
    RestartRoom,
    StopAllRooms,
    StopRoom,
)

from .sessions import SessionSettings
from .supervision import HostInfo, PeerInfo, RoomInfo
from .ops.state_file import AdminEndpoint, remove_endpoint, write_endpoint
from .ops.webhooks import Webhooks

__all__ = ["Server", "ServerError", "CannotListen", "preflight"]

log = logging.getLogger("membrane_rtc.server")

ForwardStatus = Literal["ok", "no_such_peer", "unknown_error"]
#: How often a running server looks whether its actor system is still there (seconds).
LIVENESS_CHECK = 0.5
#: How long closing the sockets may take when the actor system is gone (seconds).
ABORT_TIMEOUT = 2.0


def _with_events(handler: Callable[[Any], None], webhooks: Webhooks) -> Callable[[Any], None]:
    """What the actors send this process: events go to the webhooks, the rest to ``handler``."""
    def handle(message: Any) -> None:
        if isinstance(message, Event):
            webhooks.post(message.payload)
        else:
            handler(message)
    return handle


def _ignore(message: Any) -> None:
    """What a process without a gateway does with messages for gateways."""


def _warn_if_actor_ports_leave_the_machine(system_base: str) -> None:
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


class ServerError(RuntimeError):
    """An operation the actors refused (the message says why: unknown room, name taken...)."""


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


_T = TypeVar("_T")


async def _listening(what: str, setting: str, host: str, port: int | None,
                     opening: Awaitable[_T]) -> _T:
    """Open a port, an OSError becoming a CannotListen that says which port it was."""
    try:
        return await opening
    except OSError as exc:
        raise CannotListen(what, setting, host, port, exc) from exc


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


class Server:
    """One membrane-rtc server: actor system + supervisor + gateway."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config = config or ServerConfig()
        config.validate()  # raises ConfigError (a ValueError) naming the setting
        bases = {"embedded": EMBEDDED, "multiproc": MULTIPROC}
        self.roles = frozenset(config.roles)
        admin_port = config.admin_port or DEFAULT_ADMIN_PORT
        #: This process's room host name (when it runs rooms).
        self.host_name = config.host_name or default_host_name(
            admin_port if config.actor_system == "multiproc" else None)
        #: The convention's leaders (``HOST:PORT``), and which one this process is (a leader).
        self.leaders: list[str] = list(config.convention or [])
        self.own_leader = own_leader(self.leaders, admin_port,
                                     os.environ.get(ACTOR_ADDRESS_VARIABLE) or
                                     DEFAULT_ACTOR_ADDRESS) if "leader" in self.roles else None
        if "leader" in self.roles and len(self.leaders) > 1 and self.own_leader is None:
            raise ConfigError("convention", "this leader's own HOST:PORT is not one of the "
                                            "leaders (its admin port and actor address)")
        capabilities = capabilities_for(set(self.roles), self.host_name,
                                        self.own_leader if len(self.leaders) > 1 else None)
        if self.leaders:
            if "rooms" in self.roles:
                capabilities[INCARNATION] = incarnation()
            addresses = [convention_address(text) for text in self.leaders]
            capabilities[CONVENTION_ADDRESS] = addresses[0] if len(addresses) == 1 \
                else addresses
        self.bridge = ActorBridge(bases[config.actor_system], admin_port=admin_port,
                                  capabilities=capabilities,
                                  has_gateway=bool(self.roles & {"leader", "gateway"}),
                                  holds_sockets="gateway" in self.roles)
        self.gateway: Gateway | None = None
        self.runtime: ActorRuntime | None = None
        self.admin_channel: AdminChannel | None = None
        self.metrics = Metrics()
        self.bridge.count_error = self.metrics.runtime_error
        #: The port ``/metrics`` is served on, when ``config.metrics_port`` is set.
        self.metrics_port: int | None = None
        self.reloader: Reloader | None = None
        #: Sends the room and peer events to the webhook URLs (the leader's job).
        self.webhooks: Webhooks | None = None
        if config.webhook_urls and "leader" in self.roles:
            assert config.webhook_secret is not None  # validate() saw to it
            self.webhooks = Webhooks(config.webhook_urls, config.webhook_secret, self.metrics,
                                     config.webhook_queue)
        self._stopped = asyncio.Event()

    @property
    def port(self) -> int:
        """The port the gateway listens on."""
        assert self.gateway is not None, "server not started"
        return self.gateway.port

    @property
    def url(self) -> str:
        """Base websocket URL of the rooms, e.g. ``ws://127.0.0.1:8080/webrtc``."""
        return f"ws://{self.config.host}:{self.port}{self.config.path_prefix.rstrip('/')}"

    async def start(self) -> None:
        """Start the actors, create the configured rooms, then open the port (each as far as
        this process's roles go)."""
        # Fail fast, before anything starts, on classes that cannot be loaded here or refuse
        # their options (ConfigError, as for a setting out of range).
        preflight(self.config)
        config = self.config
        gateway = None
        if "gateway" in self.roles:
            runtime = self.runtime = ActorRuntime(self.bridge, config.peer_class,
                                                  config.peer_options)
            gateway = Gateway(runtime, config, self.metrics)
            runtime.attach(gateway)
        handler: Callable[[Any], None] = runtime.on_actor_message if gateway else _ignore
        if self.webhooks is not None:
            await self.webhooks.start()
            handler = _with_events(handler, self.webhooks)
        await self.bridge.start(handler)
        _warn_if_actor_ports_leave_the_machine(self.bridge.system_base)
        try:
            if "leader" in self.roles:
                await self._ask(ConfigureSupervisor(
                    config.max_restarts, config.restart_window, config.max_rooms,
                    config.max_peers_per_room, config.callback_timeout,
                    self.host_name if "rooms" in self.roles else None,
                    config.convention is not None, config.expose_errors,
                    SessionSettings.from_config(config),
                    self.bridge.address if self.webhooks is not None else None,
                    (config.auto_room_class, config.auto_room_options)
                    if config.auto_create else None, config.empty_timeout),
                    self.bridge.supervisor)
                if len(self.leaders) > 1:
                    assert self.own_leader is not None  # validate() saw to it
                    await self._ask(ConfigureLeaders(self.leaders, self.own_leader),
                                    self.bridge.supervisor)
                for room in self.config.rooms:
                    try:
                        await self.create_room(room.name, room.room_class, room.options)
                    except ServerError as exc:
                        # Several leaders may all be given the rooms: the first makes them.
                        if len(self.leaders) < 2 or "exists" not in str(exc):
                            raise
            if self.config.admin and self.bridge.system_base == EMBEDDED:
                self.admin_channel = AdminChannel(self.bridge, self.config.admin_port or 0)
                await _listening("the admin channel", "admin_port", "127.0.0.1",
                                 config.admin_port, self.admin_channel.start())
            if gateway is not None:
                await _listening("websockets", "port", config.host, config.port,
                                 gateway.start())
            if config.metrics_port is not None:
                if "leader" in self.roles or gateway is not None:
                    self.metrics.watch_rooms(self._rooms_for_metrics)
                try:
                    self.metrics_port = self.metrics.serve(config.metrics_port,
                                                           config.metrics_host)
                except OSError as exc:
                    raise CannotListen("metrics", "metrics_port", config.metrics_host,
                                       config.metrics_port, exc) from exc
        except BaseException:
            self.metrics.stop()
            if self.gateway is None and gateway is not None and gateway.server is not None:
                await gateway.stop()
            await self._stop_actors()
            raise
        self.gateway = gateway
        if config.reload and "leader" in self.roles:
            self.reloader = Reloader(self)  # preflight() saw that its extra is there
            try:
                self.reloader.start()
            except RuntimeError as exc:
                await self.stop()
                raise ServerError(str(exc)) from None
        if self.config.admin and gateway is not None:
            if self.admin_channel is not None:
                endpoint = AdminEndpoint("embedded", self.admin_channel.port, os.getpid(),
                                         self.admin_channel.token)
            else:
                assert self.bridge.admin_port is not None
                endpoint = AdminEndpoint("multiproc", self.bridge.admin_port, os.getpid(),
                                         actor_address=os.environ.get(ACTOR_ADDRESS_VARIABLE),
                                         actor_key=actor_key())
            write_endpoint(self.port, endpoint)

    async def drain(self) -> None:
        """Drain the gateway (readiness 503, new clients 503, the others closed with 1012
        after ``drain_timeout``); :meth:`stop` then has no client left to close."""
        if self.gateway is not None:
            await self.gateway.drain_and_close()

    async def drained(self) -> None:
        """Wait until a drain is over, however it started (SIGTERM or ``admin drain``)."""
        if self.gateway is None:
            await self._stopped.wait()
        else:
            await self.gateway.drained.wait()

    @property
    def alive(self) -> bool:
        """Whether this process's actor system still runs (see ``ActorBridge.alive``)."""
        return self.bridge.alive

    @property
    def failure(self) -> str | None:
        """Why the actor system is gone, or None while it runs."""
        return self.bridge.failure

    async def actors_lost(self) -> None:
        """Return once the actor system is gone: the server cannot serve any more; call
        :meth:`abort` and exit, for a supervisor (systemd, Kubernetes) to restart it."""
        while self.bridge.alive:
            await asyncio.sleep(LIVENESS_CHECK)

    async def abort(self) -> None:
        """The actor system is gone: close the sockets (bounded, 1001) and the metrics port,
        remove the state file, and leave the actors be (nothing to stop cleanly there)."""
        if self._stopped.is_set():
            return
        self.bridge.abandon()
        self.metrics.stop()
        gateway, self.gateway = self.gateway, None
        if gateway is not None:
            remove_endpoint(gateway.port)
            try:
                await asyncio.wait_for(gateway.stop(), ABORT_TIMEOUT)
            except asyncio.TimeoutError:
                pass
        self._stopped.set()

    async def stop(self) -> None:
        """Close every socket (1001), run every room's ``on_terminate``, stop the actors.

        Idempotent: a second call does nothing.
        """
        if self._stopped.is_set():
            return
        if self.reloader is not None:
            await self.reloader.stop()
        self.metrics.stop()
        if self.gateway is not None:
            remove_endpoint(self.port)
            await self.gateway.stop()
            self.gateway = None
        await self._stop_actors()
        if self.webhooks is not None:  # after the rooms: their last events go out too
            await self.webhooks.stop()
        self._stopped.set()

    async def _stop_actors(self) -> None:
        if self.admin_channel is not None:
            await self.admin_channel.stop()
            self.admin_channel = None
        if "leader" in self.roles:  # the rooms are the leader's to stop, wherever they run
            try:
                await self._ask(StopAllRooms(), self.bridge.supervisor, timeout=10)
            except ActorSystemError as exc:
                log.error("rooms did not all stop: %s", exc)
        await self.bridge.stop()

    def _rooms_for_metrics(self) -> list[RoomInfo]:
        """The registry, read from the metrics server's thread at scrape time."""
        loop = self.bridge.loop
        if loop is None or loop.is_closed():
            return []
        return asyncio.run_coroutine_threadsafe(self.list_rooms(), loop).result(5)

    async def serve_forever(self) -> None:
        """Wait until :meth:`stop` is called."""
        await self._stopped.wait()

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    # -- operations --------------------------------------------------------------------------

    async def _ask(self, request: Request, target: Address = None,
                   timeout: float = 10.0) -> Reply:
        """Ask an actor (by default the admin actor, where operations enter)."""
        reply = await self.bridge.ask(target or self.bridge.admin, request, timeout)
        if reply.error is not None:
            raise ServerError(reply.error)
        return reply

    async def create_room(self, name: str, room_class: str | type = DEFAULT_ROOM_CLASS,
                          options: Any = None) -> None:
        """Create a room and wait for its ``on_init``; raise ServerError if it cannot start."""
        await self._ask(CreateRoom(name, room_class, options))

    async def stop_room(self, name: str) -> None:
        """Stop a room on purpose (not restarted); its peers are told ``"Room closed"``."""
        await self._ask(StopRoom(name))

    async def restart_room(self, name: str) -> None:
        """Stop a room and start it afresh under the same name; wait until it serves again."""
        await self._ask(RestartRoom(name))

    async def reload_room(self, name: str) -> None:
        """:meth:`restart_room` for a code change (``--reload``); its peers are told so."""
        await self._ask(ReloadRoom(name))

    async def list_hosts(self) -> list[HostInfo]:
        """The room hosts and how many rooms each runs."""
        return list((await self._ask(ListHosts())).value)

    async def list_rooms(self) -> list[RoomInfo]:
        """The registry: every room with its class, state, peers and restart count."""
        return list((await self._ask(ListRooms())).value)

    async def list_peers(self, room: str) -> list[PeerInfo]:
        """The peers of a room."""
        return list((await self._ask(ListPeers(room))).value)

    async def kick_peer(self, room: str, peer_id: str) -> None:
        """Disconnect a peer (close 1000 ``kicked``); the room sees it leave."""
        await self._ask(KickPeer(room, peer_id))

    async def kept_state(self) -> dict[str, int]:
        """How much the runtime keeps, per table (supervisor, bridge, gateway side): the
        sizes must not grow with every room or connection that came and went."""
        kept: dict[str, int] = {}
        if "leader" in self.roles:  # first: what was told before has gone out once it answers
            kept.update((await self._ask(KeptState(), self.bridge.supervisor)).value)
        kept.update(self.bridge.kept())
        if self.runtime is not None:
            kept.update(self.runtime.kept())
        return kept

    async def forward_message(self, room: str, message: Message) -> ForwardStatus:
        """Have ``room`` forward ``message`` as if a peer sent it: ``ok``, ``no_such_peer``
        (an addressee is not in the room; nobody got it) or ``unknown_error``."""
        reply = await self._ask(ForwardMessage(message, room_name=room), self.bridge.supervisor)
        return reply.value  # type: ignore[no-any-return]


__all__ += ["RoomConfig", "ServerConfig"]
