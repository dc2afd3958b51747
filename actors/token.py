"""A peer that checks a shared secret: ``--peer-options '{"token": "s3cret"}'``.

Clients connect to ``ws://HOST:PORT/webrtc/ROOM?token=s3cret``; any other token gets HTTP 401.
"""

import hmac
from typing import Any

from membrane_rtc import AuthData, Peer, PeerContext


class TokenPeer(Peer):
    """Accepts a client only if its ``token`` query parameter equals the configured one."""

    @classmethod
    def check_options(cls, options: Any) -> None:
        """``{"token": "..."}``, not empty: without one every client would be turned away."""
        token = options.get("token") if isinstance(options, dict) else None
        if not isinstance(token, str) or not token:
            # The options are not shown: they may hold the token under a misspelt key.
            raise ValueError('TokenPeer needs {"token": "..."}, a string that is not empty: '
                             "without it every client is refused")

    def on_init(self, context: PeerContext, auth: AuthData, options: Any) -> None:
        expected = str((options or {}).get("token", ""))
        given = auth.credentials.get("token", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise PermissionError("bad token")
