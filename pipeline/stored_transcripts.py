"""Which meetings already have their transcript stored: a meeting source downloads a transcript once."""
from __future__ import annotations

from datetime import datetime, timedelta

from warehouse import Warehouse


def stored_transcripts(warehouse: Warehouse, source: str, meeting_ids: list[str], low: datetime,
                       high: datetime) -> set[str]:
    """The meetings among meeting_ids (started from low to high) with a row in meeting_transcripts. The started_at
    bounds, a day wider either side, keep BigQuery to those partitions."""
    if not meeting_ids:
        return set()
    rows = warehouse.query(
        f"SELECT DISTINCT meeting_id FROM `{warehouse.dataset}.meeting_transcripts` WHERE source = @source "
        f"AND started_at >= @low AND started_at < @high AND meeting_id IN UNNEST(@ids)",
        {"source": source, "ids": meeting_ids, "low": low - timedelta(days=1), "high": high + timedelta(days=1)})
    return {row["meeting_id"] for row in rows}
