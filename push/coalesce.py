"""Coalescing: a push message whose stream has run since it was published is already done.

Pub/Sub delivers one stream's messages one at a time (the stream is the ordering key), so a burst of
notifications for a mailbox queues behind the first one's run. Any run of the stream that started after a
message was published read the source from its stored cursor at a moment after the change the message
announces, so that run covers it: the message is acknowledged without a run. A burst thus costs one or two
runs, not one per notification. Only push messages coalesce: a continuation carries its own resume point,
a scheduled or manual message asks for a run whatever ran before.

The worker calls superseded(message, warehouse) before it runs a message (one query of today's etl_runs
partition, pruned by started_at and clustered by source).
"""
from __future__ import annotations

from datetime import datetime

from pipeline.work_queue import WorkMessage
from warehouse import Warehouse

COVERING_STATUSES = ("running", "success", "partial")  # failed, skipped, abandoned, cancelled runs cover nothing


def superseded(message: WorkMessage, warehouse: Warehouse) -> bool:
    """True when message is a push and a run of its stream that started after it was published is running or
    ended having read the source (success or partial)."""
    if message.reason != "push":
        return False
    published = datetime.fromisoformat(message.published_at)
    rows = warehouse.query(
        f"SELECT COUNT(*) AS n FROM `{warehouse.dataset}.etl_runs` WHERE started_at > @published "
        f"AND source = @source AND stream = @stream AND status IN UNNEST(@statuses)",
        {"published": published, "source": message.source, "stream": message.stream,
         "statuses": list(COVERING_STATUSES)})
    return bool(rows and rows[0]["n"])
