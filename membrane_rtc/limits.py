"""Admission limits the gateway applies before an upgrade; plain state, no I/O.

Kept apart from the gateway (like the room's rules in :mod:`.room_state`) so the arithmetic is
tested with a fake clock, not with sockets and sleeps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["JoinRateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class JoinRateLimiter:
    """A token bucket per client address: ``rate`` new connections per second, ``burst`` at once.

    Memory stays bounded: buckets that have refilled completely are forgotten (a full bucket is
    the same as no bucket), swept whenever the table has doubled since the last sweep.
    """

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._sweep_at = 1024

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, address: str) -> bool:
        """Take one token for ``address``; False when it has none left (refuse: HTTP 429)."""
        if not self.enabled:
            return True
        now = self.clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = _Bucket(float(self.burst), now)
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` has a token again (for the Retry-After header)."""
        bucket = self._buckets.get(address)
        if bucket is None or not self.enabled:
            return 0.0
        return max(0.0, (1 - bucket.tokens) / self.rate)

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {address: bucket for address, bucket in self._buckets.items()
                         if now - bucket.updated < full_after}
        self._sweep_at = max(1024, 2 * len(self._buckets))
