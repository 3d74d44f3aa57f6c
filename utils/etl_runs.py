"""The etl_runs table: one row per run, opened as `running` and closed with its outcome."""
from __future__ import annotations

import contextlib
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from utils.logger import get_logger, redact
from utils.monitoring import ErrorPublisher
from utils.warehouse import Warehouse

log = get_logger(__name__)

STATUSES = ("running", "success", "partial", "failed")
MAX_ERROR_CHARS = 4000


def new_run_id(source: str) -> str:
    """A unique, sortable, BigQuery-job-id-safe run id."""
    return f"{source}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunRecord:
    """A run's row in etl_runs, as the run fills it in."""

    run_id: str
    source: str
    object_type: str | None
    sync_type: str | None
    trigger: str | None
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    status: str = "running"
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    rows_fetched: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    api_calls: int = 0
    watermark_before: str | None = None
    watermark_after: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "updated_at": datetime.now(timezone.utc)}


class RunTracker:
    """Writes RunRecords to etl_runs."""

    def __init__(self, warehouse: Warehouse):
        self._warehouse = warehouse

    def open(self, record: RunRecord) -> RunRecord:
        self._warehouse.merge("etl_runs", [record.row()], batch_id=f"{record.run_id}_open")
        return record

    def close(self, record: RunRecord, status: str, error: BaseException | None = None) -> RunRecord:
        if status not in STATUSES[1:]:
            raise ValueError(f"a run closes as success, partial or failed, not {status!r}")
        record.status = status
        record.ended_at = datetime.now(timezone.utc)
        record.duration_seconds = round((record.ended_at - record.started_at).total_seconds(), 3)
        if error is not None:
            record.error_type = type(error).__name__
            record.error_message = redact(str(error))[:MAX_ERROR_CHARS]
        self._warehouse.merge("etl_runs", [record.row()], batch_id=f"{record.run_id}_close")
        return record


@contextlib.contextmanager
def tracked_run(warehouse: Warehouse, publisher: ErrorPublisher, record: RunRecord,
                failure_context: Callable[[], dict[str, Any]] = dict) -> Iterator[RunRecord]:
    """Opens the run's etl_runs row and closes it with record.status (success unless set otherwise).

    On an exception: the run is closed as failed with the error text, the error is published with
    failure_context(), `run_id` is set on the exception, and it propagates. Neither the close nor the
    publish may hide the original error.
    """
    tracker = RunTracker(warehouse)
    tracker.open(record)
    try:
        yield record
    except Exception as error:
        error.run_id = record.run_id  # type: ignore[attr-defined]
        log.error("run failed", exc_info=error)
        context = failure_context()
        try:
            tracker.close(record, "failed", error)
        except Exception as tracking_error:
            context["etl_runs_error"] = f"{type(tracking_error).__name__}: {tracking_error}"
            log.exception("could not record the failed run in etl_runs")
        try:
            publisher.publish(source=record.source, run_id=record.run_id, error=error, context=context)
        except Exception:
            log.exception("could not publish the run's error")
        raise
    tracker.close(record, "success" if record.status == "running" else record.status)
