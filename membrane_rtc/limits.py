"""Admission and rate limits the gateway applies; plain state, no I/O.

Kept apart from the gateway (like the room's rules in :mod:`.room_state`) so the arithmetic is
tested with a fake clock, not with sockets and sleeps: the token bucket (joins per address,
messages per peer), who the client is behind a trusted proxy, and the key its limits count by.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from typing import Callable, Iterable

__all__ = ["TokenBucket", "JoinRateLimiter", "MessageRate", "ClientAddresses",
           "OpenConnections", "client_key"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    __slots__ = ("rate", "burst", "tokens", "updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.updated = now

    def refill(self, now: float) -> float:
        """Add what has accrued since the last call; return the tokens there are now."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return self.tokens

    def take(self, now: float) -> bool:
        """Take a token if there is one."""
        if self.refill(now) < 1:
            return False
        self.tokens -= 1
        return True

    def wait(self) -> float:
        """Seconds until there is a whole token again."""
        return max(0.0, (1 - self.tokens) / self.rate)


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
        self._buckets: dict[str, TokenBucket] = {}
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
            bucket = self._buckets[address] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
        return bucket.take(now)

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` has a token again (for the Retry-After header)."""
        bucket = self._buckets.get(address)
        if bucket is None or not self.enabled:
            return 0.0
        return bucket.wait()

    def __len__(self) -> int:
        return len(self._buckets)

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {address: bucket for address, bucket in self._buckets.items()
                         if now - bucket.updated < full_after}
        self._sweep_at = max(1024, 2 * len(self._buckets))


class MessageRate:
    """One peer's message budget: ``rate`` per second, ``burst`` at once.

    Past the budget the peer is *throttled* (the gateway stops reading from it until a token
    is back, so TCP holds its frames); frames that still arrive meanwhile (already read, in
    the same TCP segment) run up a debt, and a debt of a whole burst means it goes on despite
    the throttle: :meth:`count` then says ``"close"``.
    """

    __slots__ = ("bucket",)

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.bucket = TokenBucket(rate, burst, now)

    def count(self, now: float) -> str:
        """Count one message: ``"ok"``, ``"throttle"`` (no token left) or ``"close"``."""
        bucket = self.bucket
        tokens = bucket.refill(now) - 1
        bucket.tokens = tokens
        if tokens >= 0:
            return "ok"
        return "close" if tokens < -bucket.burst else "throttle"

    def wait(self) -> float:
        """Seconds until the peer has a token again."""
        return self.bucket.wait()


def client_key(address: str) -> str:
    """What per-address limits count by: the address itself, an IPv6 client's /64 (one
    subscriber gets a whole /64 and could otherwise use a fresh address per connection), an
    IPv4-mapped IPv6 address as the IPv4 one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``,
    quoted), or None when it is none (``unknown``, ``_hidden``, garbage)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else text
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` addresses of a ``Forwarded`` header (RFC 7239), in order."""
    hops = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, found = pair.strip().partition("=")
            if name.lower() == "for":
                hops.append(found)
    return hops


class ClientAddresses:
    """Who the client is: the TCP peer, unless that is a trusted reverse proxy; then the
    rightmost address of its ``Forwarded`` / ``X-Forwarded-For`` header that is not a
    trusted proxy itself (addresses further left are the client's own word, and forgeable)."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.trusted = [ipaddress.ip_network(block, strict=False) for block in trusted_proxies]

    def is_trusted(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in block for block in self.trusted)

    def client(self, peer: str, forwarded: list[str], x_forwarded_for: list[str]) -> str:
        """The client's address, given the TCP peer's and the request's header values
        (``Forwarded`` preferred when both are there)."""
        if not self.trusted or not self.is_trusted(peer):
            return peer
        if forwarded:
            hops = [hop for value in forwarded for hop in _forwarded_for(value)]
        else:
            hops = [hop for value in x_forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            ip = _ip(hop)
            if ip is None:
                break  # nothing a proxy of ours wrote: stop at the proxy itself
            if not any(ip in block for block in self.trusted):
                return str(ip)
        return peer


class OpenConnections:
    """Open sockets per client address key (see :func:`client_key`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def add(self, key: str) -> bool:
        """Count one more socket for ``key``; False if that is past the limit (it is counted
        anyway: every :meth:`add` has its :meth:`remove`)."""
        self._open[key] += 1
        return not self.limit or self._open[key] <= self.limit

    def remove(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]

    def __getitem__(self, key: str) -> int:
        return self._open.get(key, 0)

    def __len__(self) -> int:
        return len(self._open)
