"""The job ledger: what each run asked of the warehouse and, on BigQuery, what it cost.

The warehouse records every statement and load it runs under the run whose log context it runs in
(`log_context(run_id=...)`); tracked_run puts the run's entries into its etl_runs `details` when it
closes, so in production every etl_runs row says what it cost. Bytes and slot time come from the
job's statistics when the server reports them (BigQuery does; DuckDB has no such thing: 0).
"""
from __future__ import annotations

import re
import threading
from typing import Any

from observability.logger import context_value

# The table a statement writes or reads first: enough to count statements per table.
_TARGET = re.compile(r"\b(?:MERGE\s+INTO|UPDATE|INSERT\s+INTO|DELETE\s+FROM|TABLE(?:\s+IF\s+(?:NOT\s+)?EXISTS)?|VIEW|FROM)"
                     r"\s+`?([\w.-]+)`?", re.I)
_COMMENT = re.compile(r"--[^\n]*")
_FIELDS = ("statements", "rows", "bytes_processed", "bytes_billed", "slot_ms")


def statement_target(sql: str) -> str:
    """The bare name of the table a statement is about (`-` when none is named)."""
    found = _TARGET.search(_COMMENT.sub("", sql))
    return found.group(1).rsplit(".", 1)[-1] if found else "-"


def statement_kind(sql: str) -> str:
    """The statement's first keyword, lower-cased (merge, update, create, select, ...)."""
    words = _COMMENT.sub("", sql).split(None, 1)
    return words[0].lower() if words else "-"


def job_cost(job: Any) -> dict[str, int]:
    """Bytes processed and billed and slot milliseconds of a finished BigQuery job (0 where not reported)."""
    return {"bytes_processed": int(getattr(job, "total_bytes_processed", None) or 0),
            "bytes_billed": int(getattr(job, "total_bytes_billed", None) or 0),
            "slot_ms": int(getattr(job, "slot_millis", None) or 0)}


class JobLedger:
    """Per run: statements, rows, bytes processed and billed, slot ms, by kind of job and table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, dict[str, int]]] = {}

    def record(self, kind: str, table: str, rows: int = 0, cost: dict[str, int] | None = None) -> None:
        """Counts one job under the current run (nothing outside a run)."""
        run_id = context_value("run_id")
        if run_id is None:
            return
        with self._lock:
            entry = self._runs.setdefault(run_id, {}).setdefault(f"{kind} {table}", dict.fromkeys(_FIELDS, 0))
            entry["statements"] += 1
            entry["rows"] += rows
            for name, value in (cost or {}).items():
                entry[name] += value

    def take(self, run_id: str) -> dict[str, Any]:
        """The run's entries and their totals, forgotten here afterwards ({} when it ran no job)."""
        with self._lock:
            jobs = self._runs.pop(run_id, {})
        if not jobs:
            return {}
        totals = {name: sum(entry[name] for entry in jobs.values()) for name in _FIELDS}
        return {"totals": totals, "jobs": jobs}


COST_BY_SOURCE_AND_DAY = """
SELECT source, DATE(started_at) AS day, COUNT(*) AS runs,
  SUM(CAST(JSON_VALUE(details, '$.warehouse_jobs.totals.statements') AS INT64)) AS statements,
  SUM(CAST(JSON_VALUE(details, '$.warehouse_jobs.totals.bytes_processed') AS INT64)) AS bytes_processed,
  SUM(CAST(JSON_VALUE(details, '$.warehouse_jobs.totals.bytes_billed') AS INT64)) AS bytes_billed,
  SUM(CAST(JSON_VALUE(details, '$.warehouse_jobs.totals.slot_ms') AS INT64)) AS slot_ms
FROM `{dataset}.etl_runs`
WHERE started_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @days DAY)
GROUP BY source, day
ORDER BY day DESC, source
"""


def cost_by_source_and_day(warehouse: Any, days: int = 7) -> list[dict[str, Any]]:
    """Warehouse statements, bytes and slot time per source and day over the last `days` days (from etl_runs)."""
    return warehouse.query(COST_BY_SOURCE_AND_DAY.format(dataset=warehouse.dataset), {"days": days})
