"""Which meetings already have their transcript stored: a meeting source downloads a transcript once."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Iterable

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


class KnownTranscripts:
    """What this process knows of a source's stored transcripts (pipeline.process_memory): the ids it found stored
    or stored itself, and the spans of call start times whose every call it looked up.

    In a span looked up, an id it does not know had no transcript stored when it looked (a call is listed, and
    transcribed, only once it ended), and since then only this process stored one: in queue mode one instance of
    the source's worker runs (config/quotas.py). A span whose window reached the moment of the look-up covers every
    later start as well. Were another process to store one meanwhile, the transcript is fetched again and merged
    on its key: one more API call, nothing stored twice."""

    def __init__(self) -> None:
        self._stored: set[str] = set()
        self._spans: list[tuple[datetime, datetime | None]] = []  # None: open to every later start
        self._lock = threading.Lock()

    def covers(self, low: datetime, high: datetime) -> bool:
        """Whether the starts from low to high were all looked up."""
        with self._lock:
            reach: datetime | None = low
            for start, end in sorted(self._spans, key=lambda span: span[0]):
                if reach is None or start > reach:
                    break
                reach = None if end is None else max(reach, end)
            return reach is None or reach >= high

    def looked_up(self, low: datetime, high: datetime | None) -> None:
        """Every call started from low to high (None: from low on) was looked up or stored by this process."""
        with self._lock:
            self._spans.append((low, high))

    def add(self, ids: Iterable[str]) -> None:
        """Ids whose transcript is stored (found so, or stored by this process)."""
        with self._lock:
            self._stored.update(ids)

    def stored(self, ids: Iterable[str]) -> set[str]:
        """The ids among these known to have their transcript stored."""
        with self._lock:
            return set(ids) & self._stored
