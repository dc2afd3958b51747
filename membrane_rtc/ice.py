"""ICE servers for a peer: STUN entries and TURN credentials from a shared secret.

The TURN credentials follow the "REST API for access to TURN services" draft that coturn
implements with ``use-auth-secret`` / ``static-auth-secret``: the username is
``<unix expiry time>:<peer id>`` and the password is base64(HMAC-SHA1(secret, username)). The
TURN server recomputes the password from the same secret, so nothing is stored anywhere. Pure
code: the room calls it when a peer joins or resumes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from .redact import redacting

__all__ = ["IceSettings", "turn_credentials", "DEFAULT_TURN_TTL"]

#: Lifetime of the TURN credentials handed to a peer (seconds): coturn's REST API default.
DEFAULT_TURN_TTL = 86400


def turn_credentials(secret: str, peer_id: str, expires: int) -> tuple[str, str]:
    """``(username, credential)`` valid until the unix time ``expires`` for ``peer_id``."""
    username = f"{expires}:{peer_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class IceSettings:
    """What ``authenticated.data.ice_servers`` holds: TURN (with a secret) and STUN URLs."""

    turn_secret: str | None = None
    turn_urls: tuple[str, ...] = ()
    turn_ttl: int = DEFAULT_TURN_TTL
    stun_urls: tuple[str, ...] = field(default=())

    __repr__ = redacting("turn_secret")

    def __bool__(self) -> bool:
        return bool(self.stun_urls or (self.turn_secret and self.turn_urls))

    def servers(self, peer_id: str, now: float) -> list[dict[str, Any]]:
        """RTCIceServer entries for one peer, its TURN credentials fresh as of ``now``."""
        servers: list[dict[str, Any]] = []
        if self.turn_secret and self.turn_urls:
            username, credential = turn_credentials(self.turn_secret, peer_id,
                                                    int(now) + self.turn_ttl)
            servers.append({"urls": list(self.turn_urls), "username": username,
                            "credential": credential})
        if self.stun_urls:
            servers.append({"urls": list(self.stun_urls)})
        return servers
