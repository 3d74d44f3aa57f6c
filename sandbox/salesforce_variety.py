"""The shapes Salesforce sends beside the usual ones, for the Salesforce sandbox: from a seed, all off by default.

Each is something the real API documents or is known to send, and each once broke (or would break) a sync:
- a Bulk API 2.0 query job that ends `Failed` (a query timeout on a large object) or `Aborted`;
- 403 REQUEST_LIMIT_EXCEEDED for a concurrency limit (ConcurrentPerOrgLongTxn, ConcurrentRequests), not the
  daily one ("TotalRequests Limit exceeded.");
- Bulk CSV datetimes written `2026-01-02T03:04:05.000Z` beside `+0000`;
- a Bulk CSV row with fewer cells than the header;
- a REST record's text field holding a JSON object or a list;
- a text value longer than any Salesforce field holds (10 MB).

Rates pick records by a hash of (seed, kind, record Id), so a record's shape does not depend on the order it is
served in; jobs and calls draw from a seeded generator in the order they come. Tests that want an exact case
queue it (`bulk_ends`, `concurrency_next`) or set a rate to 1.
"""
from __future__ import annotations

import random
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CONCURRENCY_MESSAGES = ("ConcurrentPerOrgLongTxn Limit exceeded.",
                        "ConcurrentRequests (Concurrent API Requests) Limit exceeded.")
JOB_ERRORS = {"Failed": "Query timeout: the query took too long to run (retry with a selective filter)",
              "Aborted": "Job aborted by user"}
# The text field the record-level shapes land in: the first of these an object reads.
TEXT_FIELDS = ("LastName", "Name", "Subject", "StageName", "Field")
OVERSIZED_CHARS = 10 * 1024 * 1024


@dataclass
class Variety:
    """Rates (0 to 1) of each rare shape, their seed, and exact cases queued by tests."""

    seed: int = 42
    bulk_end_rate: float = 0.0
    concurrency_rate: float = 0.0
    z_datetime_rate: float = 0.0
    malformed_row_rate: float = 0.0
    non_scalar_rate: float = 0.0
    oversized_rate: float = 0.0
    oversized_chars: int = OVERSIZED_CHARS
    bulk_ends: deque = field(default_factory=deque)  # the states the next Bulk jobs end in
    concurrency_next: int = 0  # the next data calls that answer a concurrency 403
    _random: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def rare(self, kind: str, record_id: Any, rate: float) -> bool:
        """Whether a record gets a rare shape: the same answer for the same (seed, kind, Id) every time."""
        if rate <= 0:
            return False
        return zlib.crc32(f"{self.seed}:{kind}:{record_id}".encode()) / 2**32 < rate

    def job_end(self) -> str:
        """The state a new Bulk job ends in: a queued one, else Failed or Aborted at bulk_end_rate."""
        with self._lock:
            if self.bulk_ends:
                return str(self.bulk_ends.popleft())
            if self.bulk_end_rate and self._random.random() < self.bulk_end_rate:
                return self._random.choice(("Failed", "Aborted"))
            return "JobComplete"

    def concurrency_limit(self) -> str | None:
        """The message of a concurrency 403 this data call answers, or None."""
        with self._lock:
            if self.concurrency_next > 0:
                self.concurrency_next -= 1
                return CONCURRENCY_MESSAGES[self.concurrency_next % 2]
            if self.concurrency_rate and self._random.random() < self.concurrency_rate:
                return self._random.choice(CONCURRENCY_MESSAGES)
            return None

    def csv_cells(self, record: dict[str, Any], fields: list[str], cells: list[str],
                  z_form: Any) -> list[str]:
        """A Bulk CSV row's cells as this record gets them: datetimes in the Z form, text oversized, or cut short."""
        record_id = record.get("Id")
        if self.rare("z", record_id, self.z_datetime_rate):
            cells = [z_form(record[f]) if isinstance(record.get(f), datetime) else c for f, c in zip(fields, cells)]
        text = self._text_field(record, fields)
        if text is not None and self.rare("oversized", record_id, self.oversized_rate):
            cells = [self._oversized(c) if f == text else c for f, c in zip(fields, cells)]
        if self.rare("malformed", record_id, self.malformed_row_rate):
            cells = cells[:max(1, len(cells) - 2)]
        return cells

    def json_record(self, record: dict[str, Any], fields: list[str], body: dict[str, Any]) -> dict[str, Any]:
        """A REST record's JSON as this record gets it: a text field as an object or a list, or oversized."""
        text = self._text_field(record, fields)
        if text is None or body.get(text) is None:
            return body
        record_id = record.get("Id")
        if self.rare("non_scalar", record_id, self.non_scalar_rate):
            value = body[text]
            shaped: Any = {"value": value, "label": value} if zlib.crc32(str(record_id).encode()) % 2 else [value, value]
            return {**body, text: shaped}
        if self.rare("oversized", record_id, self.oversized_rate):
            return {**body, text: self._oversized(body[text])}
        return body

    def _oversized(self, value: Any) -> str:
        start = str(value or "x")
        return (start * (self.oversized_chars // len(start) + 1))[:self.oversized_chars]

    @staticmethod
    def _text_field(record: dict[str, Any], fields: list[str]) -> str | None:
        return next((f for f in TEXT_FIELDS if f in fields and isinstance(record.get(f), str)), None)
