"""membrane-rtc: a WebRTC signaling server framework for Python, on the Thespian actor system.

Write a :class:`Room` (and maybe a :class:`Peer`), then run ``membrane-rtc serve`` or embed a
:class:`Server`. The wire protocol is that of Membrane's ``webrtc-server``.
"""

from .config import JWT_SECRET_VARIABLE, RoomConfig, ServerConfig
from .peer import BadRequest, Peer, PeerContext, PeerRequest, Unauthorized
from .protocol import ALL, Message
from .room import AuthData, JoinRefused, Room
from .server import Server, ServerError
from .supervision import HostInfo, PeerInfo, RoomInfo, RoomStatus

__all__ = [
    "ALL",
    "AuthData",
    "BadRequest",
    "HostInfo",
    "JWT_SECRET_VARIABLE",
    "JoinRefused",
    "Message",
    "Peer",
    "PeerContext",
    "PeerInfo",
    "PeerRequest",
    "Room",
    "RoomConfig",
    "RoomInfo",
    "RoomStatus",
    "Server",
    "ServerConfig",
    "ServerError",
    "Unauthorized",
]

__version__ = "0.1.0"
