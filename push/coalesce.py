"""Coalescing: a push message whose stream has run since it was published is already done.

Pub/Sub delivers one stream's messages one at a time (the stream is the ordering key), so a burst of
notifications for a mailbox queues behind the first one's run. Any run of the stream that started after a
message was published read the source from its stored cursor at a moment after the change the message
announces, so that run covers it: the message is acknowledged without a run. A burst thus costs one or two
runs, not one per notification. Only push messages coalesce: a continuation carries its own resume point,
a scheduled or manual message asks for a run whatever ran before.

Where the runs' starts are read: first the runs this process started (note_run_started; free), then etl_runs,
but only where a query costs nothing (DuckDB). On BigQuery a query bills at least 10 MB, more than the run it
could save in queue mode: a run lands its rows for free and the merger folds them into a cycle that runs anyway;
at the pilot's rate (about 7,000 push messages a day) the queries alone would bill about 70 GB a day.

The worker (pipeline.worker.run_work) calls superseded(message, warehouse) before it runs a message and
note_run_started when it starts one.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone

from pipeline.work_queue import WorkMessage
from warehouse import DuckDBWarehouse, Warehouse

COVERING_STATUSES = ("running", "success", "partial")  # failed, skipped, abandoned, cancelled runs cover nothing
_starts: dict[tuple[str, str], datetime] = {}
_lock = threading.Lock()


def note_run_started(source: str, stream: str, started_at: datetime | None = None) -> None:
    """Remembers that this process started a run of the stream (now, or at started_at)."""
    at = started_at or datetime.now(timezone.utc)
    with _lock:
        if _starts.get((source, stream), at) <= at:
            _starts[(source, stream)] = at


def _queries_are_free(warehouse: Warehouse) -> bool:
    return isinstance(getattr(warehouse, "inner", warehouse), DuckDBWarehouse)


def superseded(message: WorkMessage, warehouse: Warehouse) -> bool:
    """True when message is a push and a run of its stream that started after it was published is known: one
    this process started, or (on DuckDB) one in etl_runs that is running or read the source (success, partial)."""
    if message.reason != "push":
        return False
    published = datetime.fromisoformat(message.published_at)
    with _lock:
        started = _starts.get((message.source, message.stream))
    if started is not None and started > published:
        return True
    if not _queries_are_free(warehouse):
        return False
    rows = warehouse.query(
        f"SELECT COUNT(*) AS n FROM `{warehouse.dataset}.etl_runs` WHERE started_at > @published "
        f"AND source = @source AND stream = @stream AND status IN UNNEST(@statuses)",
        {"published": published, "source": message.source, "stream": message.stream,
         "statuses": list(COVERING_STATUSES)})
    return bool(rows and rows[0]["n"])
