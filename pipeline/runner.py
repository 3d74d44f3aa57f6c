"""run_sync: the one pipeline every source runs through.

A source supplies a SyncJob: how to read pages from a watermark, how a page becomes rows (a page
transform: column-wise for Salesforce, or per_record(to_rows) over pure per-record functions), and how
to name a record. The runner does the rest, the same way for every source:

    etl_runs row opened -> watermark read -> for each page: records -> rows (bad records to
    rejected_records) -> added to the run's merges -> at a checkpoint (every page on DuckDB; on BigQuery
    once MERGE_FLUSH_ROWS are staged, at the last page, at the budget) one MERGE per table, then the
    watermark advanced -> time budget checked -> etl_runs row closed (success | partial | failed).

The run's row also says which partitions of each partitioned table its rows fell in
(`details.partitions_written`, recorded when the run closes, failed or not): entity
resolution reads only those partitions for rows it has not examined yet.

On an exception the run is marked failed, a structured message goes to the error sink (Pub/Sub), and
the exception propagates with `run_id` set on it, so the HTTP entry point answers 500. A run that finds
its stream leased by another live run ends at once as `skipped` (pipeline.etl_runs.claim_stream).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

from config.settings import Settings
from observability.logger import get_logger, log_context, redact
from observability.monitoring import ErrorPublisher
from pipeline.etl_runs import LeaseTerms, RunRecord, claim_stream, new_run_id, tracked_run
from pipeline.prefetch import prefetched
from pipeline.sync_state import SyncStateStore, WatermarkStore
from transform.values import poison_reason, storable_text
from warehouse import MergeBatcher, Warehouse
from warehouse.merge_sql import partition_numbers, table_spans
from warehouse.schemas import table_spec

log = get_logger(__name__)

MAX_RAW_RECORD_CHARS = 100_000
# A run whose lease another run took (it was silent longer than STREAM_LEASE_SECONDS) stops without a checkpoint.
LEASE_LOST = "lease lost: another run took the stream (this run was silent longer than STREAM_LEASE_SECONDS)"
Rows = Mapping[str, Sequence[Any]]  # per table its row dicts (and REJECTED_PARTS: Rejects)


class RejectedRecord(Exception):
    """Raised by a transform: this record cannot become a row, for the reason given."""


@dataclass(frozen=True)
class Reject:
    """A record (or a part of one: an address of a message) that cannot become a row, with the reason.

    key names it in rejected_records; None: the job's record_key of raw. A to_rows result may list rejected
    parts under REJECTED_PARTS while the rest of the record becomes rows.
    """

    raw: Any
    reason: str
    key: str | None = None


# A page transformed: per table its rows (dicts, or an Arrow table), and what was rejected.
PageRows = tuple[Mapping[str, Any], list[Reject]]
REJECTED_PARTS = "_rejected_parts"


class StopSync(Exception):
    """Raised by a source to end the run cleanly as partial (API budget spent, ...); the next run resumes.

    ends_invocation: the stop holds for the source's other streams too (an API budget the org shares), so
    run_jobs leaves them for the next invocation.
    """

    def __init__(self, reason: str, *, ends_invocation: bool = False):
        super().__init__(reason)
        self.ends_invocation = ends_invocation


@dataclass
class Page:
    """Records read in one request, and the watermark that holds once they are merged."""

    records: Sequence[Any]
    watermark: str | None = None
    # The source's last page: reaching the time budget on it still ends the run as a success.
    final: bool = False


class CountsCalls(Protocol):
    @property
    def api_calls(self) -> int: ...


def calls_from_now(client: CountsCalls) -> Callable[[], int]:
    """A SyncJob's api_calls when its client serves several jobs: the calls it makes from now on."""
    before = client.api_calls
    return lambda: client.api_calls - before


@dataclass
class SyncJob:
    """What a source supplies to run_sync for one stream."""

    source: str
    stream: str
    fetch_pages: Callable[[str | None], Iterable[Page]]
    record_key: Callable[[Any], str | None]
    transform_page: Callable[[Sequence[Any]], PageRows]
    sync_type: str = "incremental"
    api_calls: Callable[[], int] = lambda: 0
    details: Callable[[], dict[str, Any]] = dict
    watermarks: WatermarkStore | None = None


@dataclass
class RunSummary:
    """What a run did; returned to the caller as JSON."""

    run_id: str
    source: str
    stream: str
    sync_type: str
    status: str
    rows_fetched: int
    rows_loaded: int
    rows_rejected: int
    rows_by_table: dict[str, int]
    api_calls: int
    watermark_before: str | None
    watermark_after: str | None
    duration_seconds: float
    stop_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ends_invocation: bool = False  # stopped for a reason that holds for the source's other streams

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _raw_text(record: Any) -> str:
    try:
        text = json.dumps(record, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(record)
    return redact(storable_text(text))


def rejected_row(job: SyncJob, record: Any, reason: str, run_id: str, key: str | None = None) -> dict[str, Any]:
    """The rejected_records row for a record of job: its key (or a hash of it), the reason, the raw record capped."""
    if key is None:
        try:
            key = job.record_key(record)
        except Exception:  # a record too broken to name is still kept, under its hash
            key = None
    return reject_row(job.source, job.stream, record, reason, run_id, key)


def reject_row(source: str, stream: str, record: Any, reason: str, run_id: str, key: str | None = None) -> dict[str, Any]:
    """The rejected_records row for a record: its key (or a hash of the record), the reason, the raw record capped
    and redacted."""
    raw = _raw_text(record)
    return {
        "source": source, "stream": stream,
        "record_key": storable_text(str(key)) if key not in (None, "") else
        "sha256:" + hashlib.sha256(raw.encode()).hexdigest()[:32],
        "reason": storable_text(reason[:2000]), "raw_record": raw[:MAX_RAW_RECORD_CHARS], "run_id": run_id,
        "rejected_at": datetime.now(timezone.utc),
    }


def per_record(to_rows: Callable[[Any], Rows]) -> Callable[[Sequence[Any]], PageRows]:
    """A page transform from a pure per-record one: each record's rows, or its reject (RejectedRecord, an
    unforeseen error, or a value no warehouse stores: lone surrogate, NUL, oversized row), and its parts
    rejected under REJECTED_PARTS."""
    def transform(records: Sequence[Any]) -> PageRows:
        rows: dict[str, list[dict[str, Any]]] = {}
        rejected: list[Reject] = []
        for record in records:
            try:
                produced: dict[str, Any] = dict(to_rows(record))
            except RejectedRecord as reason:
                rejected.append(Reject(record, str(reason)))
                continue
            except Exception as error:  # an unforeseen shape of data must not fail the run; it is kept and counted
                rejected.append(Reject(record, f"{type(error).__name__}: {error}"))
                continue
            parts = produced.pop(REJECTED_PARTS, ())
            poison = poison_reason(list(produced.values()))  # it would fail the whole page's MERGE
            if poison:
                rejected.append(Reject(record, f"unstorable value: {poison}"))
                continue
            rejected.extend(parts)
            for table, table_rows in produced.items():
                rows.setdefault(table, []).extend(table_rows)
        return rows, rejected
    return transform


def _transform_page(job: SyncJob, page: Page, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The page's rows per table (tables without rows left out) and its rejected_records rows."""
    rows, rejected = job.transform_page(page.records)
    return ({table: table_rows for table, table_rows in rows.items() if len(table_rows)},
            [rejected_row(job, reject.raw, reject.reason, run_id, key=reject.key) for reject in rejected])


class PartitionsWritten:
    """The partitions a run's rows fall in, per partitioned table: `details.partitions_written` of its etl_runs row,
    {table: {"spans": [[first partition's start, end after the last], ...], "has_null": bool}} (ISO 8601), or
    {table: null} when rows lacked the column or a value was not a date or time (a reader must then assume
    any partition)."""

    def __init__(self) -> None:
        self.seen = False  # whether any rows were added (a run with none records no partitions_written)
        self._numbers: dict[str, set[int]] = {}
        self._null: set[str] = set()
        self._unknown: set[str] = set()

    def add(self, table: str, rows: Any) -> None:
        self.seen = True
        spec = table_spec(table)
        if not spec.partition_field or table in self._unknown:
            return
        values = _column_values(rows, spec.partition_field)
        if values is None or any(v is not None and not isinstance(v, date) for v in values):
            self._unknown.add(table)
            self._numbers.pop(table, None)
            self._null.discard(table)
            return
        numbers, has_null = partition_numbers(values, spec.partition_type)
        self._numbers.setdefault(table, set()).update(numbers)
        if has_null:
            self._null.add(table)

    def as_details(self) -> dict[str, Any]:
        written: dict[str, Any] = {table: None for table in self._unknown}
        for table, numbers in self._numbers.items():
            spans = table_spans(table_spec(table), numbers, table in self._null)
            written[table] = {"spans": [[start.isoformat(), end.isoformat()] for start, end in spans.spans],
                              "has_null": spans.has_null}
        return written


def _column_values(rows: Any, column: str) -> list[Any] | None:
    """A column's distinct values in rows (dicts, or an Arrow table: its timestamps as dates, enough for
    partitions); None when some row does not supply the column (a merge that leaves it as stored)."""
    if hasattr(rows, "column_names"):
        import pyarrow as pa
        import pyarrow.compute as pc

        if column not in rows.column_names:
            return None
        values = rows.column(column)
        if pa.types.is_timestamp(values.type):
            values = pc.cast(values, pa.date32())
        return pc.unique(values).to_pylist()
    if any(column not in row for row in rows):
        return None
    return list({row[column] for row in rows})


def _load_page(job: SyncJob, page: Page, batch_id: str, merges: MergeBatcher, record: RunRecord,
               rows_by_table: dict[str, int], written: PartitionsWritten, batch_size: int) -> None:
    """Adds one page's rows and rejects to the run's merges (merged at once on DuckDB, staged on BigQuery)."""
    rows_of_tables, rejected = _transform_page(job, page, record.run_id)
    for table, rows in rows_of_tables.items():
        written.add(table, rows)
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            merges.add(table, batch, f"{batch_id}_{start}")
            rows_by_table[table] = rows_by_table.get(table, 0) + len(batch)
    if rejected:
        merges.add("rejected_records", rejected, f"{batch_id}_rejected")
        log.warning("records rejected", extra={"json_fields": {
            "count": len(rejected), "first_reason": rejected[0]["reason"]}})
    record.rows_fetched += len(page.records)
    record.rows_rejected += len(rejected)
    record.rows_loaded = sum(rows_by_table.values())
    log.info("page loaded", extra={"json_fields": {
        "batch": batch_id, "records": len(page.records), "rows_loaded": record.rows_loaded,
        "rejected": record.rows_rejected, "staged_rows": merges.pending_rows}})


def _checkpoint(job: SyncJob, merges: MergeBatcher, watermarks: WatermarkStore, record: RunRecord,
                watermark: str | None, batch_id: str, force: bool) -> None:
    """Merges what is staged when enough is (or force), then advances the watermark to the last page it covers.

    The watermark moves only when nothing added is left unmerged: a run killed between two checkpoints
    resumes from the last one and reads those pages again (the MERGE absorbs the overlap).
    """
    if merges.pending_rows and (force or merges.pending_rows >= merges.flush_rows):
        merges.flush()
    if record.details.get("lease_lost"):  # another run holds the stream now: its watermark is the one that counts
        return
    if not merges.pending_rows and watermark is not None and watermark != record.watermark_after:
        watermarks.write(job.source, job.stream, watermark, record.run_id)  # the run's id: sync_state joins etl_runs
        record.watermark_after = watermark
        log.info("checkpoint", extra={"json_fields": {"batch": batch_id, "watermark": watermark,
                                                      "rows_loaded": record.rows_loaded}})


def run_sync(job: SyncJob, *, warehouse: Warehouse, publisher: ErrorPublisher, settings: Settings,
             trigger: str = "http", clock: Callable[[], float] = time.monotonic,
             deadline: float | None = None, sweep_abandoned: bool = True, resume: str | None = None,
             leased: bool = True) -> RunSummary:
    """Runs one stream of one source to completion, to its time budget (or the given deadline on clock),
    or to failure. At least one page is merged before the budget is looked at.
    sweep_abandoned: close the source's abandoned runs first (off for an invocation's later streams).
    resume: the watermark to start from instead of the stored one (a work queue's continuation).
    leased: take the stream's lease (off in queue mode, where the work topic's ordering key runs one stream's
    messages one at a time and the merger closes runs left running past the function's timeout).
    """
    record = RunRecord(run_id=new_run_id(job.source), source=job.source, stream=job.stream,
                       sync_type=job.sync_type, trigger=trigger)
    watermarks = job.watermarks or SyncStateStore(warehouse)
    rows_by_table: dict[str, int] = {}
    written = PartitionsWritten()
    stop_reason: str | None = None
    ends_invocation = False
    deadline = clock() + settings.run_time_budget_seconds if deadline is None else deadline

    def failure_context() -> dict[str, Any]:
        return {"stream": job.stream, "sync_type": job.sync_type, "rows_loaded": record.rows_loaded,
                "watermark": record.watermark_after}

    with log_context(run_id=record.run_id, source=job.source, stream=job.stream):
        terms = LeaseTerms.of(settings) if leased else None
        if terms and not claim_stream(warehouse, record, terms, sweep=sweep_abandoned):
            return _summary(job, record, {}, record.error_message)
        with tracked_run(warehouse, publisher, record, failure_context, terms):
            record.watermark_before = record.watermark_after = (
                resume if resume is not None else watermarks.read(job.source, job.stream))
            log.info("run started", extra={"json_fields": {"sync_type": job.sync_type,
                                                           "watermark": record.watermark_before}})
            merges = warehouse.merge_batcher(settings.merge_flush_rows)
            checkpoint: tuple[str | None, str] = (None, record.run_id)  # the newest watermark, its batch
            try:
                try:
                    with prefetched(job.fetch_pages(record.watermark_before), depth=1) as pages:
                        for number, page in enumerate(pages):
                            batch_id = f"{record.run_id}_{number}"
                            _load_page(job, page, batch_id, merges, record, rows_by_table, written,
                                       settings.merge_batch_size)
                            if record.details.get("lease_lost"):  # another run has the stream: its watermark rules
                                stop_reason = LEASE_LOST
                                break
                            if page.watermark is not None:
                                checkpoint = (page.watermark, batch_id)
                            out_of_time = clock() >= deadline and not page.final
                            _checkpoint(job, merges, watermarks, record, *checkpoint, force=page.final or out_of_time)
                            if out_of_time:
                                stop_reason = "time budget reached"
                                break
                except StopSync as stop:
                    stop_reason, ends_invocation = str(stop), stop.ends_invocation
                finally:
                    record.api_calls = job.api_calls()
                # The stream's end, the budget or a clean stop: what is staged is merged, the watermark follows.
                _checkpoint(job, merges, watermarks, record, *checkpoint, force=True)
            finally:
                merges.discard()  # a failed run's staged rows: never merged, and no staging table left
                if written.seen:  # read when the run is recorded, failed or not
                    record.details["partitions_written"] = written.as_details()
            # In place: the lease keeper's thread may still add to it.
            record.details.update({**job.details(), "rows_by_table": rows_by_table,
                                   **({"stop_reason": stop_reason} if stop_reason else {})})
            record.status = "partial" if stop_reason else "success"
        log.info("run finished", extra={"json_fields": {"status": record.status, "rows_loaded": record.rows_loaded,
                                                        "rows_rejected": record.rows_rejected,
                                                        "stop_reason": stop_reason}})
    return _summary(job, record, rows_by_table, stop_reason, ends_invocation)


def _summary(job: SyncJob, record: RunRecord, rows_by_table: dict[str, int], stop_reason: str | None,
             ends_invocation: bool = False) -> RunSummary:
    return RunSummary(
        run_id=record.run_id, source=job.source, stream=job.stream, sync_type=job.sync_type, status=record.status,
        rows_fetched=record.rows_fetched, rows_loaded=record.rows_loaded, rows_rejected=record.rows_rejected,
        rows_by_table=rows_by_table, api_calls=record.api_calls, watermark_before=record.watermark_before,
        watermark_after=record.watermark_after, duration_seconds=record.duration_seconds or 0.0,
        stop_reason=stop_reason, details=record.details, ends_invocation=ends_invocation)


# A source's stream as run_jobs builds it: given the deadline of its share of the budget, its SyncJob.
JobFactory = Callable[[float], SyncJob]


def run_jobs(source: str, jobs: Sequence[JobFactory], *, warehouse: Warehouse, publisher: ErrorPublisher,
             settings: Settings, trigger: str = "http", clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Runs a source's streams one after another within one time budget; every source answers this way.

    Each stream gets an equal share of the time left when it starts (time one does not use passes on to the
    ones after it) and, past its share, ends partial and resumes next time, so no stream starves the rest.
    The one partial rule: a stream stopped for a reason that holds for the whole source (StopSync with
    ends_invocation, e.g. the org's daily API budget) leaves the streams after it for the next invocation.
    The answer: {"source", "status" (overall_status), "runs" (each RunSummary), "rows_loaded", "api_calls"}.
    """
    runs: list[dict[str, Any]] = []
    for factory, deadline in zip(jobs, time_shares(len(jobs), settings.run_time_budget_seconds, clock)):
        summary = run_sync(factory(deadline), warehouse=warehouse, publisher=publisher, settings=settings,
                           trigger=trigger, clock=clock, deadline=deadline, sweep_abandoned=not runs)
        runs.append(summary.to_dict())
        if summary.ends_invocation:
            break
    return {"source": source, "status": overall_status(runs, expected=len(jobs)), "runs": runs,
            "rows_loaded": sum(run["rows_loaded"] for run in runs), "api_calls": sum(run["api_calls"] for run in runs)}


def time_shares(count: int, budget_seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[float]:
    """Deadlines (on clock) for `count` runs sharing one budget, each taken when its run starts: an equal
    share of the time left then, so time one run does not use passes on to the ones after it."""
    end = clock() + budget_seconds
    for position in range(count):
        yield clock() + max(0.0, end - clock()) / (count - position)


def overall_status(runs: Sequence[Mapping[str, Any]], expected: int | None = None) -> str:
    """One status for an invocation's runs: success when all (and all expected) succeeded, skipped when
    every one was skipped, partial otherwise."""
    statuses = {run["status"] for run in runs}
    if statuses == {"skipped"}:
        return "skipped"
    if statuses == {"success"} and (expected is None or len(runs) == expected):
        return "success"
    return "partial"
