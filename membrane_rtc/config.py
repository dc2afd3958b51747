"""Server settings, with the defaults of DESIGN.md; the CLI and the Python API both fill this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RoomConfig", "ServerConfig"]

#: Peers are closed after this long without a frame from the client (Membrane: 15 minutes).
DEFAULT_IDLE_TIMEOUT = 15 * 60.0
#: Largest client frame accepted; a bigger one closes the connection with 1009.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024


@dataclass
class RoomConfig:
    """A room to create at start-up."""

    name: str
    room_class: str | type = "membrane_rtc.room:Room"
    options: Any = None


@dataclass
class ServerConfig:
    """Everything ``membrane-rtc serve`` can be told. Classes may be given as SPEC strings."""

    host: str = "127.0.0.1"
    port: int = 8080
    path_prefix: str = "/webrtc"
    rooms: list[RoomConfig] = field(default_factory=list)
    peer_class: str | type = "membrane_rtc.peer:Peer"
    peer_options: Any = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    #: Serve the demo page at ``/`` (the JS client is always at ``/client.js``).
    demo: bool = True
    #: How long a connecting client may wait for the actors to accept or refuse it.
    connect_timeout: float = 10.0
    #: "embedded" (Thespian simpleSystemBase, one process) or "multiproc" (multiprocTCPBase:
    #: every room and peer its own OS process).
    actor_system: str = "embedded"
    #: multiproc: Thespian's admin port. embedded: the loopback admin channel's port (0 = any).
    admin_port: int | None = None
    #: Open the admin side for ``membrane-rtc admin``: the loopback admin channel (embedded)
    #: and the state file that tells local operators how to reach it.
    admin: bool = True
    #: Restart budget of each room: at most this many restarts within the window (seconds).
    max_restarts: int = 3
    restart_window: float = 5.0
