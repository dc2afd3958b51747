"""A peer's session across connections: resume tokens and the frames kept while it is away.

A client whose connection drops (network change, sleep, a gateway gone) may come back within a
grace period with ``?resume=<token>`` and be the same peer: same id, nothing seen by its
room-mates, the frames sent to it meanwhile delivered in order. Plain state, no actors and no
sockets: the room actor applies it (see docs/reference/protocol.md, "Resuming").
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from .ice import IceSettings

__all__ = ["SessionSettings", "SessionConfig", "ResumeTokens", "Sent",
           "DEFAULT_RESUME_GRACE", "DEFAULT_RESUME_QUEUE_BYTES"]

#: Seconds a peer whose connection dropped stays in its room, waiting for its client to
#: resume (``?resume=<token>``); 0 turns resuming off (a drop is a leave, as in Membrane).
DEFAULT_RESUME_GRACE = 20.0
#: Bytes of each peer's most recent frames kept for a resume; more since a drop ends its
#: grace (it leaves).
DEFAULT_RESUME_QUEUE_BYTES = 64 * 1024

#: Random bytes in a resume token's secret part (the issue asks for at least 128 bits).
TOKEN_BYTES = 24


class SessionConfig(Protocol):
    """What :meth:`SessionSettings.from_config` reads of the server's settings
    (:class:`~membrane_rtc.config.ServerConfig` has them): declared here, so that this plain
    state, and the actor messages that carry it, need not know the command line's settings."""

    @property
    def resume_grace(self) -> float: ...
    @property
    def resume_queue_bytes(self) -> int: ...
    @property
    def turn_secret(self) -> str | None: ...
    @property
    def turn_urls(self) -> Sequence[str]: ...
    @property
    def turn_ttl(self) -> int: ...
    @property
    def stun_urls(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class SessionSettings:
    """What every room applies to its peers' sessions (from the server's configuration)."""

    #: Seconds an away peer may resume within; 0: a drop is a leave.
    resume_grace: float = DEFAULT_RESUME_GRACE
    #: Bytes of the most recent frames kept per peer (for a resume); past it while the peer
    #: is away, its grace ends.
    resume_queue_bytes: int = DEFAULT_RESUME_QUEUE_BYTES
    ice: IceSettings = field(default_factory=IceSettings)

    @classmethod
    def from_config(cls, config: SessionConfig) -> SessionSettings:
        return cls(config.resume_grace, config.resume_queue_bytes, IceSettings(
            config.turn_secret, tuple(config.turn_urls), config.turn_ttl,
            tuple(config.stun_urls)))

    @property
    def resumable(self) -> bool:
        """Resuming is on (a grace period)."""
        return self.resume_grace > 0

    def welcome(self, tokens: ResumeTokens, peer_id: str, resumed: bool,
                public_metadata: dict[str, Any] | None, now: float) -> dict[str, Any]:
        """Our fields of a peer's ``authenticated``: a fresh resume token (issued from
        ``tokens``), TURN credentials fresh as of ``now``, its public metadata; each only
        when it applies."""
        welcome: dict[str, Any] = {}
        if self.resumable:
            welcome["resume_token"] = tokens.issue(peer_id)
            welcome["resumed"] = resumed
        if self.ice:
            welcome["ice_servers"] = self.ice.servers(peer_id, now)
        if public_metadata is not None:
            welcome["metadata"] = public_metadata
        return welcome


class ResumeTokens:
    """The current resume token of each member of one room.

    A token is ``<peer id>.<secret>``: the peer id finds the secret, which is compared in
    constant time. Each token is good once: resuming spends it and the client gets a new one.
    """

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}

    def issue(self, peer_id: str) -> str:
        """A new token for ``peer_id`` (its previous one is no longer good)."""
        secret = secrets.token_urlsafe(TOKEN_BYTES)
        self._secrets[peer_id] = secret
        return f"{peer_id}.{secret}"

    def holder(self, token: str) -> str | None:
        """The peer id ``token`` is the current token of, without spending it; else None
        (unknown, used, forged or of a peer that has left: the client is then admitted
        afresh). The token stays good until :meth:`claim`: a resume its peer's ``Peer``
        refuses (wrong credentials) leaves it to the client that holds them."""
        peer_id, _, secret = token.rpartition(".")
        expected = self._secrets.get(peer_id)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            return None
        return peer_id

    def claim(self, token: str) -> str | None:
        """As :meth:`holder`, spending the token."""
        peer_id = self.holder(token)
        if peer_id is not None:
            del self._secrets[peer_id]
        return peer_id

    def forget(self, peer_id: str) -> None:
        """The peer has left: its token is no longer good."""
        self._secrets.pop(peer_id, None)


class Sent:
    """The frames a room sent one peer on its session, numbered 1, 2, ... from its
    ``authenticated`` on, the most recent kept within ``limit`` bytes: what a resuming client
    that says how many it received (``?received=N``) gets again, and what an away peer missed.

    While the peer is away (:meth:`pin`), every frame since the drop must be kept: past the
    limit it leaves, as it always did. Frames from before the drop only make room: a resume
    after them works as long as they are still kept. Frame 1, the session's
    ``authenticated``, is never kept (a resume sends its own instead), and nothing is
    reserved ahead: a peer sent nothing else keeps nothing; frames sent to many peers are
    one ``bytes`` shared."""

    __slots__ = ("frames", "head", "size", "limit", "count", "pinned")

    def __init__(self, limit: int) -> None:
        # The kept frames are frames[head:]: made room for by moving head (a list costs
        # less than a deque for the few frames most peers keep), compacted as it moves.
        self.frames: list[bytes] | None = None  # made with the first frame to keep
        self.head = 0
        self.size = 0
        self.limit = limit
        #: How many frames were sent on the session (the number of the last one).
        self.count = 0
        #: While away: the number of the first frame sent since the drop (None: connected).
        self.pinned: int | None = None

    @property
    def first(self) -> int:
        """The number of the oldest kept frame (``count + 1`` when none is kept)."""
        return self.count - (len(self.frames) - self.head if self.frames else 0) + 1

    def add(self, frame: bytes) -> bool:
        """Number and keep a frame; the oldest ones make room. False when the frames since
        the drop alone pass the limit (then the away peer's grace ends: it leaves)."""
        self.count += 1
        if self.count == 1:
            return True  # the session's authenticated: never sent again
        frames = self.frames
        if frames is None:
            frames = self.frames = []
        frames.append(frame)
        size = self.size + len(frame)
        if size > self.limit:
            # The oldest make room (every frame sent to a peer goes by here: kept short).
            head = self.head
            end = len(frames) if self.pinned is None else len(frames) - (
                self.count - self.pinned + 1)
            while size > self.limit and head < end:
                size -= len(frames[head])
                frames[head] = b""  # let it go now, not at the next compaction
                head += 1
            if head * 2 >= len(frames):
                del frames[:head]
                head = 0
            self.head = head
        self.size = size
        return size <= self.limit

    def pin(self) -> None:
        """The peer's connection dropped: keep every frame from now on."""
        self.pinned = self.count + 1

    def unpin(self) -> None:
        """The peer is back: older frames may make room again."""
        self.pinned = None

    def after(self, received: int) -> list[bytes] | None:
        """The frames numbered after ``received`` (at most :attr:`count`; 0 is taken as 1,
        the ``authenticated`` a resume replaces), in order; None when some of them are no
        longer kept."""
        received = max(received, 1)
        if received + 1 < self.first:
            return None
        return self.frames[self.head + received + 1 - self.first:] if self.frames else []

    def since_drop(self) -> list[bytes]:
        """The frames sent since the drop (none if the peer is not away): what a client that
        does not say how many it received gets again."""
        return self.after(self.count if self.pinned is None else self.pinned - 1) or []
