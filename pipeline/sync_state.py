"""Watermarks: where the next run of a source's stream starts. Written only after the rows they cover are merged."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

from warehouse import Warehouse
from warehouse.fresh import latest_rows


class WatermarkStore(Protocol):
    """Reads and writes a stream's resume point (an opaque string the source interprets)."""

    def read(self, source: str, stream: str) -> str | None: ...

    def write(self, source: str, stream: str, watermark: str, run_id: str) -> None: ...


class SyncStateStore:
    """Watermarks in the sync_state table, one row per (source, stream)."""

    def __init__(self, warehouse: Warehouse):
        self._warehouse = warehouse

    def read(self, source: str, stream: str) -> str | None:
        # Read without a query (free on BigQuery, where a query bills 10 MB), the fresh tier's newer row over it.
        rows = latest_rows(self._warehouse, "sync_state", {"source": source, "stream": stream})
        return rows[0]["watermark"] if rows else None

    def write(self, source: str, stream: str, watermark: str, run_id: str) -> None:
        self._warehouse.merge("sync_state", [{
            "source": source, "stream": stream, "watermark": watermark, "run_id": run_id,
            "updated_at": datetime.now(timezone.utc)}], batch_id=f"{run_id}_{stream}_state")


def read_start(sync_type: str, watermark: str | None, now: datetime, full_days: float,
               lookback_hours: float) -> datetime:
    """Where a time-windowed read starts: `full_days` before now for a full sync (or no watermark yet), else the
    watermark (an ISO time) less `lookback_hours` (what the source lists late: ended calls, finished transcripts)."""
    if sync_type == "full" or watermark is None:
        return now - timedelta(days=full_days)
    return datetime.fromisoformat(watermark).astimezone(timezone.utc) - timedelta(hours=lookback_hours)
