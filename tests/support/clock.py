"""A clock tests move by hand, for the plain-state rules that take one."""


class FakeClock:
    """Seconds, as ``time.monotonic`` gives them; set ``now`` to move time."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
