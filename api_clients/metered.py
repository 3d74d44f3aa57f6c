"""Metered calls: what every API client does around each request, in one place.

Each attempt waits for the client's rate limiters (its units in each), is counted (the run's
`api_calls`), and runs under the one retry policy; a failure still transient when the policy gives up
is raised. A client translates a source's own errors inside the call it passes.
"""
from __future__ import annotations

import threading
from typing import Callable, Protocol, TypeVar

from api_clients.retry import retry_policy

T = TypeVar("T")


class Limiter(Protocol):
    def acquire(self, units: float = 1.0) -> None: ...


class MeteredCalls:
    """The calls of one client: limited, counted, retried. Thread-safe (Dialpad's transcript workers)."""

    def __init__(self, retry_max_seconds: float, *limiters: Limiter):
        self._limiters = limiters
        self._policy = retry_policy(retry_max_seconds)
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self, request: Callable[[], T], *, units: float = 1.0, also: Limiter | None = None) -> T:
        """request() once it fits every limiter (`units` of each, and one of `also`), retried while transient."""
        def attempt() -> T:
            for limiter in self._limiters:
                limiter.acquire(units)
            if also is not None:
                also.acquire()
            with self._lock:
                self.count += 1
            return request()
        return self._policy(attempt)
