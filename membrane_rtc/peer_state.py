"""One connected client's ``Peer`` as plain state: its callbacks, run where its room runs.

A peer costs a Python object, not an actor or a process: its room hosts it. Like
:mod:`.room_state`, no actors and no sockets here; the room actor feeds events in. A ``Peer``
callback that raises (or runs past its time limit) ends that peer only, never its room.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import msgspec

from .peer import Peer, PeerContext, Unauthorized
from .protocol import Message
from .room import AuthData
from .room_state import TimeLimit, no_time_limit

__all__ = ["PeerState", "PeerCallbackError", "MAX_PUBLIC_METADATA_BYTES"]

#: Largest ``Peer.public_metadata`` (as JSON): it goes to every room-mate in ``joined``.
MAX_PUBLIC_METADATA_BYTES = 4096


class PeerCallbackError(Exception):
    """A user ``Peer`` callback raised (or timed out): that peer ends. For the logs only."""

    def __init__(self, callback: str, error: BaseException) -> None:
        self.callback = callback
        self.error = error
        super().__init__(f"{callback} raised {type(error).__name__}: {error}")


class PeerState:
    """Runs one user ``Peer`` for one connection; ``on_terminate`` runs at most once."""

    def __init__(self, peer: Peer, context: PeerContext, callback_timeout: float = 0,
                 time_limit: TimeLimit = no_time_limit) -> None:
        self.peer = peer
        self.context = context
        self.callback_timeout = callback_timeout
        self.time_limit = time_limit
        #: A Peer that keeps the default ``on_receive`` forwards unchanged: skip the call.
        self._forwards_all = type(peer).on_receive is Peer.on_receive
        self._initialized = False
        self._terminated = False

    @property
    def idle_timeout(self) -> float | None:
        """The idle timeout ``on_init`` chose for this connection (None: the server's)."""
        return self.peer.idle_timeout

    def _call(self, callback: str, *args: Any) -> Any:
        function: Callable[..., Any] = getattr(self.peer, callback)
        try:
            with self.time_limit(f"peer {self.context.peer_id} {callback}",
                                 self.callback_timeout):
                return function(*args)
        except Exception as exc:
            raise PeerCallbackError(callback, exc) from exc

    def init(self, auth: AuthData, options: Any) -> None:
        """Run ``on_init``: PeerCallbackError means the client is refused (HTTP 401), as
        does public metadata that is not a JSON object within the size bound."""
        self._call("on_init", self.context, auth, options)
        metadata = self.peer.public_metadata
        if metadata is not None:
            try:
                size = len(msgspec.json.encode(metadata)) if isinstance(metadata, dict) else -1
            except (TypeError, msgspec.EncodeError):
                size = -1
            if not 0 <= size <= MAX_PUBLIC_METADATA_BYTES:
                raise PeerCallbackError("on_init", ValueError(
                    f"public_metadata must be a JSON object of at most "
                    f"{MAX_PUBLIC_METADATA_BYTES} bytes"))
        self._initialized = True

    def init_resuming(self, previous: PeerState, auth: AuthData, options: Any) -> None:
        """Run ``on_init`` for a new connection that resumes ``previous``'s peer (same peer
        id, the new request's credentials): refused as :meth:`init` refuses, and also when
        it establishes another ``identity`` than ``previous`` did (someone else's valid
        credentials do not take a peer over). Accepted, its public metadata is
        ``previous``'s: room-mates were told that one in ``joined``.

        A refusal after ``on_init`` accepted (another identity) leaves this ``Peer``
        initialized: end it with :meth:`terminate` on every refusal (its ``on_terminate``
        runs only in that case)."""
        self.init(auth, options)
        if self.peer.identity != previous.peer.identity:
            raise PeerCallbackError("on_init", Unauthorized("resumed as another identity"))
        self.peer.public_metadata = previous.peer.public_metadata

    def admitted(self, auth: AuthData) -> AuthData:
        """``auth`` with what ``on_init`` established: identity and public metadata."""
        peer = self.peer
        if peer.identity is None and peer.public_metadata is None:
            return auth
        return dataclasses.replace(auth, identity=peer.identity,
                                   public_metadata=peer.public_metadata)

    @property
    def public_metadata(self) -> dict[str, Any] | None:
        """What room-mates may know of this peer (``Peer.public_metadata``)."""
        return self.peer.public_metadata

    def receive(self, message: Message) -> Message | None:
        """Run ``on_receive``: what to forward to the room, or None to drop it."""
        if self._forwards_all:
            return message
        outgoing = self._call("on_receive", message, self.context)
        if outgoing is not None and not isinstance(outgoing, Message):
            raise PeerCallbackError("on_receive", TypeError(
                f"returned {type(outgoing).__name__}, not Message or None"))
        return outgoing

    def terminate(self) -> None:
        """Run ``on_terminate`` once, for a peer whose ``on_init`` accepted it."""
        if self._terminated or not self._initialized:
            return
        self._terminated = True
        self._call("on_terminate", self.context)
