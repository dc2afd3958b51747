"""A Peer that gives itself public metadata from the query: ``?name=Ada`` -> ``{"name": "Ada"}``;
``?pad=N`` adds N characters (to pass the size bound)."""

from __future__ import annotations

from typing import Any

from membrane_rtc import AuthData, Peer, PeerContext


class NamedPeer(Peer):
    def on_init(self, context: PeerContext, auth: AuthData, options: Any) -> None:
        if "name" in auth.credentials:
            self.public_metadata = {"name": auth.credentials["name"]}
            if "pad" in auth.credentials:
                self.public_metadata["pad"] = "x" * int(auth.credentials["pad"])
