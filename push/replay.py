"""Replays refused: the signatures and event ids a receiver has accepted, each kept until it expires.

Kept in the receiver's memory, not the warehouse. A warehouse store would put a billed statement (10 MB minimum)
and a round trip of seconds on every request inside HubSpot's and Dialpad's 5 s timeouts. The receivers are
deployed with max_instances 1 (config/functions.yaml): one instance answers every request (a receiver only
verifies and publishes, hundreds a second), so its memory sees every request. What a restart forgets is at
most one signature window (HubSpot refuses its own requests after 5 minutes, the receiver too); a replay that
slips through then only publishes a work message again, and work messages are idempotent and coalesced
(push/coalesce.py): a replay can never write anything a real request would not.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Iterable


class ReplayGuard:
    """Keys seen in the last `ttl_seconds`; bounded to `capacity` keys (oldest dropped first)."""

    def __init__(self, ttl_seconds: float, capacity: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self._ttl, self._capacity, self._clock = ttl_seconds, capacity, clock
        self._seen: dict[str, float] = {}  # key -> expiry; insertion order is expiry order (one ttl)
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._seen:
            key, expiry = next(iter(self._seen.items()))
            if expiry > now and len(self._seen) <= self._capacity:
                return
            del self._seen[key]

    def seen(self, key: str) -> bool:
        with self._lock:
            self._expire(self._clock())
            return key in self._seen

    def all_seen(self, keys: Iterable[str]) -> bool:
        """True when there are keys and every one was seen (a batch that brings nothing new)."""
        keys = list(keys)
        with self._lock:
            self._expire(self._clock())
            return bool(keys) and all(key in self._seen for key in keys)

    def remember(self, keys: Iterable[str]) -> None:
        with self._lock:
            now = self._clock()
            for key in keys:
                self._seen.pop(key, None)
                self._seen[key] = now + self._ttl
            self._expire(now)
