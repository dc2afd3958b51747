"""The per-address join rate limiter, with a fake clock (no sockets, no sleeps)."""

from membrane_rtc.limits import JoinRateLimiter

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
