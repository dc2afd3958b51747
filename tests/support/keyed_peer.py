"""A Peer that checks a key and proves an identity, for the rules of a resume.

``?key=`` must be the options' ``key``; ``?user=`` is the peer's identity (``AuthData.identity``),
``?name=`` its public metadata (``{"name": ...}``). ``terminated`` tells whether this instance's
``on_terminate`` ran.
"""

from __future__ import annotations

import hmac
from typing import Any

from membrane_rtc import AuthData, Peer, PeerContext, Unauthorized


class KeyedPeer(Peer):
    terminated = False

    def on_init(self, context: PeerContext, auth: AuthData, options: Any) -> None:
        expected = str((options or {}).get("key", ""))
        given = auth.credentials.get("key", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("bad key")
        self.identity = auth.credentials.get("user")
        if "name" in auth.credentials:
            self.public_metadata = {"name": auth.credentials["name"]}

    def on_terminate(self, context: PeerContext) -> None:
        self.terminated = True
