"""The server: an actor system, its supervisor and a websocket gateway, started and stopped together.

Embed it in your own asyncio program::

    async with Server(ServerConfig(port=8080, rooms=[RoomConfig("demo", MyRoom)])) as server:
        await server.serve_forever()

Its operations (create, stop, list rooms, forward a message) are in
:mod:`membrane_rtc.server_operations`; the parts it starts in :mod:`membrane_rtc.startup`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .config import RoomConfig, ServerConfig, own_leader
from .config_checks import ConfigError
from .gateway.gateway import Gateway
from .ops.admin_channel import AdminChannel
from .ops.metrics import Metrics
from .ops.reload import Reloader
from .ops.state_file import remove_endpoint, write_endpoint
from .ops.webhooks import Webhooks
from .preflight import preflight
from .runtime.bridge import EMBEDDED, MULTIPROC, ActorBridge, ActorSystemError
from .runtime.gateway_link import ActorRuntime
from .runtime.messages.admin import ConfigureSupervisor, StopAllRooms
from .runtime.messages.leaders import ConfigureLeaders
from .runtime.placement import capabilities_for, default_host_name
from .server_operations import ServerError, ServerOperations
from .sessions import SessionSettings
from .supervision import RoomInfo
from .startup import (CannotListen, actor_address, admin_endpoint, admin_port_for, listening,
                      message_handler, warn_if_actor_ports_leave_the_machine)

__all__ = ["Server", "ServerError", "RoomConfig", "ServerConfig"]

log = logging.getLogger("membrane_rtc.server")

#: How long closing the sockets may take when the actor system is gone (seconds).
ABORT_TIMEOUT = 2.0


class Server(ServerOperations):
    """One membrane-rtc server: actor system + supervisor + gateway."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config = config or ServerConfig()
        config.validate()  # raises ConfigError (a ValueError) naming the setting
        bases = {"embedded": EMBEDDED, "multiproc": MULTIPROC}
        self.roles = frozenset(config.roles)
        admin_port = admin_port_for(config)
        #: This process's room host name (when it runs rooms).
        self.host_name = config.host_name or default_host_name(
            admin_port if config.actor_system == "multiproc" else None)
        #: The convention's leaders (``HOST:PORT``), and which one this process is (a leader).
        self.leaders: list[str] = list(config.convention or [])
        self.own_leader = own_leader(self.leaders, admin_port, actor_address()) \
            if "leader" in self.roles else None
        if "leader" in self.roles and len(self.leaders) > 1 and self.own_leader is None:
            raise ConfigError("convention", "this leader's own HOST:PORT is not one of the "
                                            "leaders (its admin port and actor address)")
        capabilities = capabilities_for(self.roles, self.host_name, self.leaders,
                                        self.own_leader)
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
        if self.webhooks is not None:
            await self.webhooks.start()
        await self.bridge.start(message_handler(runtime.on_actor_message if gateway else None,
                                                self.webhooks))
        warn_if_actor_ports_leave_the_machine(self.bridge.system_base)
        try:
            if "leader" in self.roles:
                await self._configure_leader()
            await self._open_ports(gateway)
        except BaseException:
            self.metrics.stop()
            if self.gateway is None and gateway is not None and gateway.server is not None:
                await gateway.stop()
            await self._stop_actors()
            if self.webhooks is not None:
                await self.webhooks.stop()
            self._stopped.set()  # a stop() after a failed start has nothing left to stop
            raise
        self.gateway = gateway
        if config.reload and "leader" in self.roles:
            # preflight() saw that its extra is there
            self.reloader = Reloader(config, self, gateway.reload_peer_class if gateway else None)
            try:
                self.reloader.start()
            except RuntimeError as exc:
                await self.stop()
                raise ServerError(str(exc)) from None
        if self.config.admin and gateway is not None:
            channel = self.admin_channel
            write_endpoint(self.port, admin_endpoint(self.bridge,
                                                     channel.port if channel else None,
                                                     channel.token if channel else None))

    async def _configure_leader(self) -> None:
        """Tell the supervisor its settings (and the other leaders), then create the rooms."""
        config = self.config
        await self._ask(ConfigureSupervisor(
            max_restarts=config.max_restarts, restart_window=config.restart_window,
            max_rooms=config.max_rooms, max_peers_per_room=config.max_peers_per_room,
            callback_timeout=config.callback_timeout,
            local_host=self.host_name if "rooms" in self.roles else None,
            convention=config.convention is not None, expose_errors=config.expose_errors,
            sessions=SessionSettings.from_config(config),
            events_to=self.bridge.address if self.webhooks is not None else None,
            auto_create=(config.auto_room_class, config.auto_room_options)
            if config.auto_create else None,
            empty_timeout=config.empty_timeout), self.bridge.supervisor)
        if len(self.leaders) > 1:
            assert self.own_leader is not None  # validate() saw to it
            await self._ask(ConfigureLeaders(self.leaders, self.own_leader),
                            self.bridge.supervisor)
        for room in config.rooms:
            try:
                await self.create_room(room.name, room.room_class, room.options)
            except ServerError as exc:
                # Several leaders may all be given the rooms: the first makes them.
                if len(self.leaders) < 2 or "exists" not in str(exc):
                    raise

    async def _open_ports(self, gateway: Gateway | None) -> None:
        """Open the admin channel (embedded), the websocket port and the metrics port, as far
        as the settings and roles ask; CannotListen says which failed."""
        config = self.config
        if config.admin and self.bridge.system_base == EMBEDDED:
            self.admin_channel = AdminChannel(self.bridge, config.admin_port or 0)
            await listening("the admin channel", "admin_port", "127.0.0.1",
                            config.admin_port, self.admin_channel.start())
        if gateway is not None:
            await listening("websockets", "port", config.host, config.port, gateway.start())
        if config.metrics_port is not None:
            if "leader" in self.roles or gateway is not None:
                self.metrics.watch_rooms(self._rooms_for_metrics)
            try:
                self.metrics_port = self.metrics.serve(config.metrics_port,
                                                       config.metrics_host)
            except OSError as exc:
                raise CannotListen("metrics", "metrics_port", config.metrics_host,
                                   config.metrics_port, exc) from exc

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
        await self.bridge.gone()

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
