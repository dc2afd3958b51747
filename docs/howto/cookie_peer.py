"""A peer authenticated by a signed session cookie your web app set (how-to: authenticate)."""

import hashlib
import hmac
from http.cookies import SimpleCookie

from membrane_rtc import AuthData, Peer, PeerContext, PeerRequest


def sign(user: str, secret: str) -> str:
    """What your web app puts in the ``session`` cookie: ``user.signature``."""
    signature = hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()
    return f"{user}.{signature}"


class CookiePeer(Peer):
    @classmethod
    def parse_request(cls, request: PeerRequest):
        credentials, metadata, room = super().parse_request(request)
        cookies = SimpleCookie(request.headers.get("cookie", ""))
        if "session" in cookies:
            credentials["session"] = cookies["session"].value
        return credentials, metadata, room

    def on_init(self, context: PeerContext, auth: AuthData, options):
        user, _, _ = auth.credentials.get("session", "").partition(".")
        expected = sign(user, options["secret"])
        if not user or not hmac.compare_digest(auth.credentials["session"], expected):
            raise PermissionError("no valid session")
        self.user = user
        self.idle_timeout = 60.0  # signed-in users: one minute of silence, then closed
