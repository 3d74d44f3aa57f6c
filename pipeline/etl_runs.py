"""The etl_runs table: one row per run, opened as `running` and closed with its outcome; and the lease
that lets one run at a time work on a stream.

Before a run opens its row it claims its stream (`claim_stream`): runs of its source left `running`
whose lease lapsed (killed, out of memory, timed out) are closed as `abandoned`, then the stream's lease in
`stream_leases` is taken with one conditional MERGE. A run that finds the lease held by a live run is
recorded as `skipped` and does nothing. A run renews its lease as it works (`LeaseKeeper`, every third of
STREAM_LEASE_SECONDS), so a killed run blocks its stream for at most STREAM_LEASE_SECONDS, not the function's
timeout; on one machine (the embedded warehouse) a lease whose holder process is gone is taken over at once.
SIGINT and SIGTERM close a run as `cancelled` and release its lease (pipeline.cancellation). The statements
are BigQuery SQL, run as they are on BigQuery and transpiled on DuckDB.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from config.settings import Settings
from observability.logger import get_logger, redact
from observability.monitoring import ErrorPublisher
from pipeline.cancellation import CANCELLING, cancel_reason, cancellation_for
from pipeline.run_origin import in_push_run
from warehouse import Warehouse

log = get_logger(__name__)

STATUSES = ("running", "success", "partial", "failed", "skipped", "abandoned", "cancelled")
MAX_ERROR_CHARS = 4000


def new_run_id(source: str) -> str:
    """A unique, sortable, BigQuery-job-id-safe run id."""
    return f"{source}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


@dataclass
class RunRecord:
    """A run's row in etl_runs, as the run fills it in."""

    run_id: str
    source: str
    stream: str | None
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
    """Writes RunRecords to etl_runs; a push run's to push_runs (pipeline.run_origin), whose thousands of rows a
    day would grow what entity resolution and the abandoned-run sweeps read of etl_runs (README "Push freshness")."""

    def __init__(self, warehouse: Warehouse):
        self._warehouse = warehouse
        self._table = "push_runs" if in_push_run() else "etl_runs"

    def open(self, record: RunRecord) -> RunRecord:
        # A new row: appended (a free load job on BigQuery), not MERGEd; the close MERGEs onto it.
        self._warehouse.append(self._table, [record.row()], batch_id=f"{record.run_id}_open")
        return record

    def close(self, record: RunRecord, status: str, error: BaseException | None = None) -> RunRecord:
        if status not in STATUSES[1:]:
            raise ValueError(f"a run closes as one of {STATUSES[1:]}, not {status!r}")
        record.status = status
        record.ended_at = datetime.now(timezone.utc)
        record.duration_seconds = round((record.ended_at - record.started_at).total_seconds(), 3)
        if error is not None:
            record.error_type = type(error).__name__
            text = cancel_reason(error) if isinstance(error, CANCELLING) else str(error)
            record.error_message = redact(text)[:MAX_ERROR_CHARS]
        jobs = self._warehouse.ledger.take(record.run_id)  # what the run asked of the warehouse, and its cost
        if jobs:
            record.details = {**(record.details or {}), "warehouse_jobs": jobs}
        self._warehouse.merge(self._table, [record.row()], batch_id=f"{record.run_id}_close")
        return record


# A run is abandoned once its lease lapsed unrenewed (or, whatever its lease, past the function's timeout).
ABANDONED_SQL = """
UPDATE {dataset}.etl_runs
SET status = 'abandoned', ended_at = @now, updated_at = @now, error_type = 'Abandoned', error_message = @reason
WHERE source = @source AND status = 'running' AND started_at >= @oldest
  AND (started_at < @cutoff
       OR (started_at < @lease_cutoff
           AND run_id NOT IN (SELECT run_id FROM {dataset}.stream_leases WHERE source = @source AND expires_at > @now)))
"""
# How far back the next run looks for abandoned runs: a bound on the partitions the UPDATE scans (and bills).
ABANDONED_LOOKBACK = timedelta(days=35)

LEASE_SQL = """
MERGE INTO {dataset}.stream_leases AS lease
USING (SELECT @source AS source, @stream AS stream) AS wanted
ON lease.source = wanted.source AND lease.stream = wanted.stream
WHEN MATCHED AND lease.expires_at <= @now THEN
  UPDATE SET run_id = @run_id, acquired_at = @now, expires_at = @expires_at, holder = @holder
WHEN NOT MATCHED THEN
  INSERT (source, stream, run_id, acquired_at, expires_at, holder)
  VALUES (@source, @stream, @run_id, @now, @expires_at, @holder)
"""
RENEW_SQL = """
UPDATE {dataset}.stream_leases SET expires_at = @expires_at
WHERE source = @source AND stream = @stream AND run_id = @run_id
"""
# Compare-and-swap: the lease passes only if the dead holder still has it.
TAKEOVER_SQL = """
UPDATE {dataset}.stream_leases SET run_id = @run_id, acquired_at = @now, expires_at = @expires_at, holder = @holder
WHERE source = @source AND stream = @stream AND run_id = @dead_run_id
"""
CLOSE_DEAD_RUN_SQL = """
UPDATE {dataset}.etl_runs
SET status = 'abandoned', ended_at = @now, updated_at = @now, error_type = 'Abandoned', error_message = @reason
WHERE run_id = @dead_run_id AND status = 'running' AND started_at >= @oldest
"""


@dataclass(frozen=True)
class LeaseTerms:
    """How long a lease lasts unrenewed, the function's timeout, and whether every holder is on this machine
    (the embedded warehouse: one file, one machine), where a holder whose process is gone is known dead."""

    lease_seconds: float
    timeout_seconds: float
    same_machine: bool = False

    @classmethod
    def of(cls, settings: Settings) -> "LeaseTerms":
        return cls(min(settings.stream_lease_seconds, settings.function_timeout_seconds),
                   settings.function_timeout_seconds, settings.warehouse == "duckdb")


def this_holder() -> str:
    """host:pid of this process, as a lease records its holder."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_gone(holder: str | None) -> bool:
    """True when holder ran on this machine and its process no longer exists."""
    host, _, pid = (holder or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    """A killed process nobody has reaped yet (an orphaned worker in a container whose init does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def close_abandoned_runs(warehouse: Warehouse, source: str, terms: LeaseTerms) -> int:
    """Closes the source's runs still `running` whose lease lapsed unrenewed (or past the function's timeout) as
    `abandoned`; returns how many."""
    now = datetime.now(timezone.utc)
    closed = warehouse.execute(ABANDONED_SQL.format(dataset=warehouse.dataset), {
        "source": source, "now": now, "cutoff": now - timedelta(seconds=terms.timeout_seconds),
        "lease_cutoff": now - timedelta(seconds=terms.lease_seconds), "oldest": now - ABANDONED_LOOKBACK,
        "reason": f"no end recorded and its lease not renewed for {terms.lease_seconds:g} s "
                  f"(the process was killed, ran out of memory or timed out)"}) or 0
    if closed:
        log.warning("runs closed as abandoned", extra={"json_fields": {"source": source, "count": closed}})
    return closed


def take_lease(warehouse: Warehouse, source: str, stream: str, run_id: str, terms: LeaseTerms) -> str:
    """Takes the stream's lease unless a live one is held; returns the run id holding it afterwards.

    Live: not expired; on one machine (terms.same_machine) also any lease whose holder process still exists,
    expired or not (its renewals may wait behind a long statement on the embedded warehouse's one connection),
    and none whose holder process is gone (taken over at once). A lease released between the MERGE and the
    read of its holder is tried again: a run never goes on without one."""
    now = datetime.now(timezone.utc)
    params = {"source": source, "stream": stream, "run_id": run_id, "now": now, "holder": this_holder(),
              "expires_at": now + timedelta(seconds=terms.lease_seconds)}
    ds = warehouse.dataset
    for _attempt in range(3):
        held = _holder_row(warehouse, params) if terms.same_machine else None
        if held is not None:
            if not holder_is_gone(held["holder"]):
                on_this_machine = (held["holder"] or "").rpartition(":")[0] == socket.gethostname()
                if on_this_machine and now - held["acquired_at"] < timedelta(seconds=terms.timeout_seconds):
                    return str(held["run_id"])  # alive here, within a run's lifetime: held, however late renewed
            elif warehouse.execute(TAKEOVER_SQL.format(dataset=ds), {**params, "dead_run_id": held["run_id"]}) == 1:
                _close_dead_run(warehouse, held, now)
                return run_id
        if warehouse.execute(LEASE_SQL.format(dataset=ds), params) == 1:
            return run_id  # the MERGE wrote the lease: no need to read who holds it (a statement saved per run)
        held = _holder_row(warehouse, params)
        if held is not None:
            return str(held["run_id"])
    raise RuntimeError(f"the lease of {source}/{stream} changed hands three times while being taken")


def _holder_row(warehouse: Warehouse, params: dict[str, Any]) -> dict[str, Any] | None:
    rows = warehouse.query(f"SELECT run_id, holder, acquired_at FROM {warehouse.dataset}.stream_leases "
                           f"WHERE source = @source AND stream = @stream", params)
    return rows[0] if rows else None


def _close_dead_run(warehouse: Warehouse, held: dict[str, Any], now: datetime) -> None:
    warehouse.execute(CLOSE_DEAD_RUN_SQL.format(dataset=warehouse.dataset), {
        "dead_run_id": held["run_id"], "now": now, "oldest": now - ABANDONED_LOOKBACK,
        "reason": f"its process ({held['holder']}) ended without recording an end (killed)"})
    log.warning("lease of a dead process taken over", extra={"json_fields": {"dead_run_id": held["run_id"]}})


class LeaseKeeper:
    """Renews a run's lease from a thread of its own while the run works, so a live run keeps its stream however
    long one step takes (a Bulk job polled, a long MERGE) and a dead one loses it within STREAM_LEASE_SECONDS."""

    def __init__(self, warehouse: Warehouse, record: RunRecord, terms: LeaseTerms):
        self._warehouse, self._record, self._terms = warehouse, record, terms
        self._stop = threading.Event()
        # The run's context: its renewals are in its ledger (warehouse_jobs) and its log lines carry its run id.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._renew_until_stopped,),
                                        name=f"lease-{record.run_id}", daemon=True)
        self.lost = False

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew_until_stopped(self) -> None:
        record = self._record
        while not self._stop.wait(self._terms.lease_seconds / 3):
            params = {"source": record.source, "stream": record.stream or "", "run_id": record.run_id,
                      "expires_at": datetime.now(timezone.utc) + timedelta(seconds=self._terms.lease_seconds)}
            try:
                renewed = self._warehouse.execute(RENEW_SQL.format(dataset=self._warehouse.dataset), params)
            except Exception:  # the next renewal may succeed; the lease lasts three intervals
                log.warning("could not renew the stream's lease", exc_info=True)
                continue
            if renewed == 0 and not self.lost:
                self.lost = True
                record.details["lease_lost"] = True
                log.warning("the stream's lease was taken over: this run was silent for longer than the lease")


def release_lease(warehouse: Warehouse, source: str, stream: str, run_id: str) -> None:
    """Gives up the stream's lease if this run still holds it."""
    warehouse.execute(f"DELETE FROM {warehouse.dataset}.stream_leases "
                      f"WHERE source = @source AND stream = @stream AND run_id = @run_id",
                      {"source": source, "stream": stream, "run_id": run_id})


def claim_stream(warehouse: Warehouse, record: RunRecord, terms: LeaseTerms, sweep: bool = True) -> bool:
    """Closes the source's abandoned runs (unless sweep is off: an invocation's later streams, the first swept
    for the whole source) and takes the lease of record's stream (its stream).

    False when another run holds it: record is then written to etl_runs as `skipped`, naming the holder.
    """
    abandoned = close_abandoned_runs(warehouse, record.source, terms) if sweep else 0
    if abandoned:
        record.details["abandoned_runs_closed"] = abandoned
    holder = take_lease(warehouse, record.source, record.stream or "", record.run_id, terms)
    if holder == record.run_id:
        return True
    record.details["held_by"] = holder
    record.error_message = f"another run ({holder}) is working on {record.source}/{record.stream}"
    RunTracker(warehouse).close(record, "skipped")
    log.warning("run skipped: the stream is leased", extra={"json_fields": {"held_by": holder}})
    return False


def _record_failure(tracker: RunTracker, publisher: ErrorPublisher, record: RunRecord, error: BaseException,
                    context: dict[str, Any]) -> None:
    """Closes record as failed and publishes the error; neither may hide the original error."""
    try:
        tracker.close(record, "failed", error)
    except Exception as tracking_error:
        context["etl_runs_error"] = f"{type(tracking_error).__name__}: {tracking_error}"
        log.exception("could not record the failed run in etl_runs")
    try:
        publisher.publish(source=record.source, run_id=record.run_id, error=error, context=context)
    except Exception:
        log.exception("could not publish the run's error")


@contextlib.contextmanager
def tracked_run(warehouse: Warehouse, publisher: ErrorPublisher, record: RunRecord,
                failure_context: Callable[[], dict[str, Any]] = dict,
                terms: LeaseTerms | None = None) -> Iterator[RunRecord]:
    """Opens the run's etl_runs row and closes it with record.status (success unless set otherwise), renewing
    the stream's lease meanwhile when terms are given.

    On an exception: the run is closed as failed with the error text, the error is published with
    failure_context(), `run_id` is set on the exception, and it propagates. Neither the close nor the
    publish may hide the original error. On SIGINT or SIGTERM it is closed as cancelled. The stream's lease
    (if claim_stream took one) is released.
    """
    tracker = RunTracker(warehouse)
    try:
        tracker.open(record)
        try:
            with LeaseKeeper(warehouse, record, terms) if terms else contextlib.nullcontext():
                yield record
        except BaseException as error:
            stop = cancellation_for(error)
            if stop is not None:
                log.warning("run cancelled", extra={"json_fields": {"reason": cancel_reason(stop)}})
                tracker.close(record, "cancelled", stop)
                if stop is error:
                    raise
                raise stop from error  # what the signal interrupted (DuckDB's "Query interrupted") is its cause
            if not isinstance(error, Exception):
                raise
            error.run_id = record.run_id  # type: ignore[attr-defined]
            log.error("run failed", exc_info=error)
            _record_failure(tracker, publisher, record, error, failure_context())
            raise
        tracker.close(record, "success" if record.status == "running" else record.status)
    finally:
        if terms:  # a run without terms took no lease (queue mode)
            with contextlib.suppress(Exception):  # a lease left behind lapses at its expiry
                release_lease(warehouse, record.source, record.stream or "", record.run_id)


def record_failed_invocation(warehouse: Warehouse, publisher: ErrorPublisher, *, source: str, error: BaseException,
                             stream: str | None = None, sync_type: str | None = None,
                             trigger: str | None = None) -> str:
    """Records an invocation that failed before any run of it started (a missing secret, ...): a failed
    etl_runs row with the reason, and the error published. Returns the run id given to it, or the run's own
    when the error comes from a run (already recorded by tracked_run)."""
    if getattr(error, "run_id", None):
        return error.run_id  # type: ignore[attr-defined]
    record = RunRecord(run_id=new_run_id(source), source=source, stream=stream, sync_type=sync_type,
                       trigger=trigger)
    record.details = {"stage": "before the run started"}
    log.error("invocation failed before its run started", exc_info=error)
    _record_failure(RunTracker(warehouse), publisher, record, error, {"stage": "before the run started",
                                                                        "stream": stream})
    error.run_id = record.run_id  # type: ignore[attr-defined]
    return record.run_id
