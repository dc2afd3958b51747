"""The ``Peer`` behaviour: one instance per websocket connection.

``parse_request`` runs in the gateway before the upgrade (it only reads the HTTP request); the
other callbacks run in its room's actor (its process, in the multi-process mode), one
instance per connection. Every callback is optional.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .names import room_name_problem
from .protocol import Message
from .redact import path_summary, redacted, redacted_repr
from .room import AuthData

__all__ = ["Peer", "PeerContext", "PeerRequest", "BadRequest", "Unauthorized"]


class BadRequest(Exception):
    """Raise from :meth:`Peer.parse_request` to refuse the connection with HTTP 400."""


class Unauthorized(Exception):
    """Raise from :meth:`Peer.on_init` to refuse the client with HTTP 401. Its text is the
    reason in the server's log lines (``peer_refused``), never sent to the client; any other
    exception refuses too, logged as ``unauthorized``. Never put a credential in it."""


@dataclass(frozen=True)
class PeerRequest:
    """The HTTP upgrade request of a connecting client, as ``parse_request`` sees it."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)
    remote_address: tuple[str, int] | None = None
    #: The server's path prefix (``/webrtc`` by default); rooms live under it.
    path_prefix: str = "/webrtc"

    def __repr__(self) -> str:  # the query and headers hold credentials: names only
        return redacted_repr(self, path=path_summary, headers=redacted)


@dataclass(frozen=True)
class PeerContext:
    """Where a peer is: its id and the name of its room."""

    peer_id: str
    room: str


class Peer:
    """A connected client. Override any callback; all are optional."""

    #: Seconds without a frame from the client before the server closes the connection;
    #: ``None`` keeps the server's default (15 minutes). ``on_init`` may set it per connection.
    idle_timeout: float | None = None
    #: What room-mates may know of this peer (e.g. ``{"name": "Ada"}``): a JSON object of at
    #: most MAX_PUBLIC_METADATA_BYTES, sent in ``joined`` and ``authenticated`` as
    #: ``metadata`` and given to the room as ``AuthData.public_metadata``. ``on_init`` sets it.
    public_metadata: dict[str, Any] | None = None
    #: Who the client is, as its credentials proved (e.g. a token's ``sub``): given to the
    #: room as ``AuthData.identity``. ``on_init`` sets it.
    identity: str | None = None

    @classmethod
    def parse_request(cls, request: PeerRequest) -> tuple[dict[str, str], Any, str]:
        """Return ``(credentials, metadata, room_name)`` from the upgrade request.

        Default: the room is the path segment after the prefix (``/webrtc/<room>``,
        URL-decoded), credentials are the query parameters, metadata the request headers and
        the remote address. Raise (any exception) to refuse with HTTP 400.
        """
        url = urlsplit(request.path)
        prefix = request.path_prefix.rstrip("/") + "/"
        if not url.path.startswith(prefix):
            raise BadRequest(f"path {url.path!r} is not under {prefix!r}")
        room = unquote(url.path[len(prefix):])
        if (problem := room_name_problem(room)) is not None:
            raise BadRequest(f"path {url.path!r} names no room: {problem}")
        credentials = dict(parse_qsl(url.query, keep_blank_values=True))
        metadata = {"headers": dict(request.headers), "remote_address": request.remote_address}
        return credentials, metadata, room

    @classmethod
    def check_options(cls, options: Any) -> None:
        """Check the peer options (``--peer-options``) once, before the server starts: raise
        ValueError saying what is wrong, and the server does not start (``membrane-rtc
        serve``: one line, exit status 2) instead of refusing every client later.

        Default: any options are fine.
        """

    def on_init(self, context: PeerContext, auth: AuthData, options: Any) -> None:
        """Authenticate the client; raise (any exception) to refuse with HTTP 401.

        ``options`` are the server's custom peer options. May set ``self.idle_timeout``,
        ``self.identity`` and ``self.public_metadata``.

        It runs for every connection, a resume's too: a client that resumes its peer after a
        drop presents its credentials again, and a new instance's ``on_init`` checks them
        (``auth.peer_id`` is the resuming peer's), which must also set the ``identity`` the
        peer joined with. Refused, the client gets HTTP 401 and the peer stays away; its
        ``public_metadata`` is the one it joined with either way.
        """

    def on_receive(self, message: Message, context: PeerContext) -> Message | None:
        """A message from the client (``from`` already set); return it to send it to the
        room (changed or not), or ``None`` to drop it."""
        return message

    def on_terminate(self, context: PeerContext) -> None:
        """The connection is over (closed, or replaced by the connection a resume accepted,
        which has its own instance): clean up. Runs once per instance whose ``on_init``
        accepted."""
