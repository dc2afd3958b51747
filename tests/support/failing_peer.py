"""A Peer that makes its room actor fail on the ``ConnectPeer`` that brought it, past every
guard the framework has for user code: Thespian then logs that message (its repr, credentials
and headers inside), retries it, and bounces it back as a PoisonMessage."""

from __future__ import annotations

from membrane_rtc import Peer


class FailingPeer(Peer):
    """Accepted by ``on_init``; reading its ``idle_timeout`` (the room actor does, to answer the
    gateway) raises."""

    @property  # type: ignore[override]
    def idle_timeout(self) -> float | None:
        raise RuntimeError("idle_timeout failure (tests.support.failing_peer)")
