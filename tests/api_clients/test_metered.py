"""Metered calls: every attempt waits for the limiters and is counted; transient failures are retried."""
from __future__ import annotations

import pytest
import requests

from api_clients.metered import MeteredCalls


class CountingLimiter:
    def __init__(self):
        self.units: list[float] = []

    def acquire(self, units: float = 1.0) -> None:
        self.units.append(units)


def test_each_attempt_is_limited_counted_and_retried_while_transient():
    """Two transient failures then a success: three attempts, each through the limiters, all counted."""
    limiter, search = CountingLimiter(), CountingLimiter()
    calls = MeteredCalls(5.0, limiter)
    outcomes = iter([requests.ConnectionError("reset"), requests.ConnectionError("reset"), "body"])

    def request():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert calls(request, units=5, also=search) == "body"
    assert calls.count == 3 and limiter.units == [5, 5, 5] and search.units == [1.0, 1.0, 1.0]


def test_a_permanent_failure_is_raised_at_once_and_counted():
    """A failure that is not transient (a ValueError, a 4xx) is raised after one attempt."""
    calls = MeteredCalls(5.0)

    def request():
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        calls(request)
    assert calls.count == 1
