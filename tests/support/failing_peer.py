"""A Peer that makes its room actor fail on the ``ConnectPeer`` that brought it, outside the
guards around user callbacks: the actor's own per-message guard takes it (a room crash, its
traceback logged), where Thespian alone would log the message's repr, retry and bounce it."""

from __future__ import annotations

from membrane_rtc import Peer


class FailingPeer(Peer):
    """Accepted by ``on_init``; reading its ``idle_timeout`` (the room actor does, to answer the
    gateway) raises."""

    @property  # type: ignore[override]
    def idle_timeout(self) -> float | None:
        raise RuntimeError("idle_timeout failure (tests.support.failing_peer)")
