"""Helpers the tests share: an in-memory source for the sync runner, and a Pub/Sub pull loop."""
from __future__ import annotations

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
