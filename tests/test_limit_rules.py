"""The plain-state rules of membrane_rtc/limits.py, with a fake clock (no sockets, no sleeps):
the per-address join rate, the per-peer message rate, who the client is behind a proxy, and
what per-address limits count by."""

import pytest

from membrane_rtc.limits import (ClientAddresses, JoinRateLimiter, MessageRate,
                                 OpenConnections, client_key)

from .support.clock import FakeClock as Clock


def test_a_burst_then_the_rate_per_address() -> None:
    clock = Clock()
    limiter = JoinRateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # another address has its own bucket
    assert 0 < limiter.retry_after("a") <= 0.5
    clock.now = 0.5  # one token back at 2/s
    assert limiter.allow("a") and not limiter.allow("a")


def test_zero_rate_is_no_limit_and_full_buckets_are_forgotten() -> None:
    assert all(JoinRateLimiter(0, 1).allow("a") for _ in range(100))
    clock = Clock()
    limiter = JoinRateLimiter(rate=10.0, burst=1, clock=clock)
    for n in range(3000):  # many addresses, each refilled long before the next sweep
        clock.now = n
        limiter.allow(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) < 1100  # swept, not 3,000


def test_a_peer_past_its_rate_is_throttled_then_closed_after_another_burst() -> None:
    rate = MessageRate(rate=10.0, burst=5, now=0.0)
    assert [rate.count(0.0) for _ in range(5)] == ["ok"] * 5
    assert rate.count(0.0) == "throttle" and rate.wait() == pytest.approx(0.2)
    assert [rate.count(0.0) for _ in range(4)] == ["throttle"] * 4  # a debt of 5 = a burst
    assert rate.count(0.0) == "close"
    calm = MessageRate(rate=10.0, burst=5, now=0.0)
    for n in range(100):  # at the rate itself, for ever: never throttled
        assert calm.count(n / 10) == "ok"


def test_what_per_address_limits_count_by() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    # One IPv6 subscriber has a whole /64: its addresses count as one.
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") \
        == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("unknown") == "unknown"


@pytest.mark.parametrize("peer, forwarded, xff, client", [
    # Not a trusted proxy: its headers are the client's own word.
    ("192.0.2.50", [], ["203.0.113.1"], "192.0.2.50"),
    # The rightmost hop that is not a trusted proxy; what the client wrote stands left of it.
    ("10.0.0.1", [], ["198.51.100.66, 203.0.113.1"], "203.0.113.1"),
    ("10.0.0.1", [], ["203.0.113.1, 10.0.0.2"], "203.0.113.1"),  # through two proxies
    ("10.0.0.1", [], ["198.51.100.66", "203.0.113.1"], "203.0.113.1"),  # two headers, in order
    ("10.0.0.1", ['for=198.51.100.66, for="[2001:db8::1]:4711";proto=https'], ["192.0.2.1"],
     "2001:db8::1"),  # Forwarded wins over X-Forwarded-For
    ("10.0.0.1", ["for=203.0.113.9:80"], [], "203.0.113.9"),
    ("10.0.0.1", [], ["unknown"], "10.0.0.1"),  # nothing usable: the proxy itself
    ("10.0.0.1", ["for=_hidden, for=10.0.0.3"], [], "10.0.0.1"),
    ("10.0.0.1", [], [], "10.0.0.1"),
    ("10.0.0.1", [], ["10.0.0.2, 10.0.0.3"], "10.0.0.1"),  # only proxies: the proxy itself
])
def test_the_client_behind_a_trusted_proxy(peer: str, forwarded: list[str], xff: list[str],
                                           client: str) -> None:
    assert ClientAddresses(["10.0.0.0/24"]).client(peer, forwarded, xff) == client


def test_no_trusted_proxy_means_the_tcp_peer() -> None:
    assert ClientAddresses().client("127.0.0.1", ["for=203.0.113.1"], ["203.0.113.1"]) \
        == "127.0.0.1"


def test_open_connections_per_address() -> None:
    open_ = OpenConnections(limit=2)
    assert open_.add("a") and open_.add("a") and not open_.add("a")
    assert open_.add("b")
    for _ in range(3):
        open_.remove("a")
    assert open_["a"] == 0 and len(open_) == 1  # forgotten once none is open
    assert all(OpenConnections(limit=0).add("a") for _ in range(1000))  # 0: no limit
