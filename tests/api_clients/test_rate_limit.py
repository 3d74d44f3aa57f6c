"""RateLimiter: never more than the limit in any window, on a fake clock."""
from __future__ import annotations

import pytest

from api_clients.rate_limit import RateLimiter


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_never_more_than_the_limit_in_any_window():
    """100 acquisitions at 10 per second take 10 seconds and no window holds more than 10."""
    clock = FakeClock()
    limiter = RateLimiter(10, 1.0, guard=0.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(100):
        limiter.acquire()
        times.append(clock.now)
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) == 10
    assert 9.0 <= times[-1] < 10.0


def test_units_are_weighted():
    """A 5-unit call uses half of a 10-unit window."""
    clock = FakeClock()
    limiter = RateLimiter(10, 1.0, guard=0.0, clock=clock, sleep=clock.sleep)
    limiter.acquire(5)
    limiter.acquire(5)
    assert clock.now == 0.0
    limiter.acquire(1)
    assert clock.now >= 1.0


def test_impossible_requests_are_refused():
    """More units than the limit can never be granted."""
    with pytest.raises(ValueError):
        RateLimiter(10).acquire(11)
