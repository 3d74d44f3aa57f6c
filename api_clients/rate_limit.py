"""A client-side rate limiter: at most `limit` units in any sliding window of `window` seconds.

Shared by the threads of one client (Dialpad's transcript workers, Gmail's batch calls). A small guard
is added to the window so that requests the server receives a few milliseconds apart from when we sent
them still fit its count.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Callable


class RateLimiter:
    """Sliding-log limiter; acquire() blocks until the units fit."""

    def __init__(self, limit: float, window: float = 1.0, guard: float = 0.15,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if limit <= 0 or window <= 0:
            raise ValueError("a rate limit needs a positive limit and window")
        self.limit, self.window = limit, window + guard
        self._clock, self._sleep = clock, sleep
        self._log: collections.deque[tuple[float, float]] = collections.deque()
        self._used = 0.0
        self._lock = threading.Lock()

    def acquire(self, units: float = 1.0) -> None:
        """Waits until `units` more fit in the window, then records them."""
        if units > self.limit:
            raise ValueError(f"{units} units can never fit a limit of {self.limit}")
        while True:
            with self._lock:
                now = self._clock()
                while self._log and self._log[0][0] <= now - self.window:
                    self._used -= self._log.popleft()[1]
                if self._used + units <= self.limit:
                    self._log.append((now, units))
                    self._used += units
                    return
                wait = self._log[0][0] + self.window - now
            self._sleep(max(wait, 0.001))


class Unlimited:
    """A limiter that never waits (a limit switched off)."""

    def acquire(self, units: float = 1.0) -> None:
        return None
