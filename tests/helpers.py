"""Helpers the tests share: an in-memory source for the sync runner, a Pub/Sub pull loop, and poison values."""
from __future__ import annotations

import random
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from pipeline.runner import Page, RejectedRecord, SyncJob, per_record, run_sync

T0 = datetime(2025, 3, 1, tzinfo=timezone.utc)


class ListSource:
    """A fake source: records {"Id", "Name", "n"} served in pages, the watermark being the last n."""

    def __init__(self, count: int, page_size: int = 10, broken: set[int] = frozenset()):
        self.records = [{"Id": f"001{i:015d}", "Name": f"Account {i}", "n": i} for i in range(count)]
        for i in broken:
            self.records[i] = {"Id": self.records[i]["Id"], "Name": None, "n": i}
        self.page_size = page_size
        self.requests = 0
        self.fail_at_page: int | None = None

    def pages(self, watermark: str | None) -> Iterator[Page]:
        start = int(watermark) + 1 if watermark is not None else 0
        for offset in range(start, len(self.records), self.page_size):
            self.requests += 1
            if self.fail_at_page is not None and self.requests - 1 == self.fail_at_page:
                raise ConnectionAbortedError(f"injected failure at page {self.fail_at_page}")
            chunk = self.records[offset:offset + self.page_size]
            yield Page(chunk, watermark=str(chunk[-1]["n"]))

    @staticmethod
    def to_rows(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        if not record.get("Name"):
            raise RejectedRecord("missing Name")
        return {"sf_accounts": [{"id": record["Id"], "name": record["Name"], "is_deleted": False,
                                 "system_modstamp": T0 + timedelta(seconds=record["n"])}]}

    def job(self, sync_type: str = "incremental") -> SyncJob:
        return SyncJob(source="testsource", stream="Account", fetch_pages=self.pages,
                       transform_page=per_record(self.to_rows), record_key=lambda r: r.get("Id"), sync_type=sync_type, api_calls=lambda: self.requests)


def merged_by_a_run(runtime: Any, table: str, rows: list[dict[str, Any]]) -> str:
    """Merges rows into table as a sync does (run_sync), so its etl_runs row records the partitions written (which
    entity resolution's incremental scope reads); returns the run's id."""
    job = SyncJob(source="test_writer", stream=table, fetch_pages=lambda _watermark: iter([Page(rows, final=True)]),
                  transform_page=per_record(lambda row: {table: [dict(row)]}), record_key=lambda row: str(sorted(row.items())))
    summary = run_sync(job, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=runtime.settings)
    assert summary.status == "success", summary
    return summary.run_id


def pull_messages(subscriber: Any, subscription: str, expected: int = 1, timeout: float = 30.0) -> list:
    """Pulls until `expected` messages arrived (acknowledging them) or the timeout passes."""
    received: list = []
    deadline = time.monotonic() + timeout
    while len(received) < expected and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": subscription, "max_messages": 10}, timeout=10)
        if response.received_messages:
            subscriber.acknowledge(request={"subscription": subscription,
                                            "ack_ids": [m.ack_id for m in response.received_messages]})
            received.extend(m.message for m in response.received_messages)
    return received


# Poison a source's wire can carry into a text: what no warehouse stores. Oversized means past SMALL_ROW_BYTES,
# which the tests set as transform.values.MAX_ROW_BYTES (BigQuery's 100 MB would make each case a 100 MB string).
TEXT_POISONS = ("lone surrogate", "NUL", "oversized")
SMALL_ROW_BYTES = 64 * 1024
# Dates past any event: before 1990, year 1, year 9999 with a negative offset (beyond UTC's calendar).
ABSURD_DATES = ("0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00")


def poisoned_text(text: str, kind: str, rng: random.Random) -> str:
    """text with one poison of kind (TEXT_POISONS) at a random place in it."""
    cut = rng.randrange(len(text) + 1)
    inserted = {"lone surrogate": rng.choice(("\ud800", "\udbff", "\udfff")), "NUL": "\x00",
                "oversized": "x" * (SMALL_ROW_BYTES + 1)}[kind]
    return text[:cut] + inserted + text[cut:]


def poison_reason_pattern(kind: str) -> str:
    """The pattern of the reason a record carrying poison of kind (TEXT_POISONS) is rejected with."""
    return {"lone surrogate": r"unstorable value: not Unicode text: lone surrogate '\\ud[89a-f][0-9a-f]{2}' at offset \d+",
            "NUL": r"unstorable value: NUL character at offset \d+",
            "oversized": r"unstorable value: row of [\d,]+ bytes of text, beyond the warehouse's [\d,]+"}[kind]


def matches(pattern: str, text: str) -> bool:
    """Whether the whole of text matches pattern."""
    return re.fullmatch(pattern, text) is not None


def point_at(runtime: Any, sandbox: Any, monkeypatch: Any, **overrides: Any) -> Any:
    """The test's runtime aimed at a started sandbox the way the local runner does (sandbox.server.aimed_at),
    with settings overrides; its secrets set in the environment for this test only."""
    from sandbox.server import aimed_at

    settings, secrets = aimed_at(runtime.settings, sandbox)
    for variable, value in secrets.items():
        monkeypatch.setenv(variable, value)
    runtime.settings = settings.model_copy(update=overrides)
    return runtime
