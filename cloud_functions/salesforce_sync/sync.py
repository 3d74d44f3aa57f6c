"""Salesforce objects as SyncJobs for run_sync: which pages to read, from where, by which API.

Incremental: queryAll from the stored cursor (SystemModstamp; CreatedDate for an object without one) minus a
look-back, ordered by (cursor, Id),
so deletions arrive as IsDeleted rows and rows sharing the last timestamp are not lost; MERGE absorbs
the overlap. Full (or no watermark yet): Bulk API 2.0 above the size threshold, REST paging below it or
when Bulk is unavailable. Pages stream through: memory does not grow with the object's size.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Callable, Iterator, Literal, cast

import pyarrow as pa
import pyarrow.compute as pc
from simple_salesforce.exceptions import SalesforceError

from api_clients.connection_check import Check, check
from cloud_functions.salesforce_sync.auth import SalesforceCredentials
from cloud_functions.salesforce_sync.client import BULK_ENDED, BulkJobEnded, SalesforceClient
from cloud_functions.salesforce_sync.fields import with_org_fields
from cloud_functions.salesforce_sync.records import OBJECTS, SalesforceObject
from config.settings import Settings
from http_entry.validation import BadRequest, SyncRequest
from observability.logger import get_logger
from pipeline.run_origin import in_push_run
from pipeline.runner import Page, PageRows, Reject, SyncJob, calls_from_now, run_jobs
from pipeline.runtime import Runtime
from transform import columns
from transform.values import to_datetime
from warehouse import Warehouse
from warehouse.sql_text import quoted

log = get_logger(__name__)
SOURCE = "salesforce"
ObjectName = Literal["Account", "Contact", "Lead", "Opportunity", "Task", "Event", "EmailMessage",
                     "OpportunityHistory", "OpportunityFieldHistory", "all"]


class SalesforceSyncRequest(SyncRequest):
    """Body of a salesforce_sync call."""

    object_type: ObjectName = "all"


def soql_datetime(watermark: str, lookback_seconds: int) -> str:
    """The inclusive lower bound for an incremental read: the watermark minus the look-back, whole seconds."""
    since = cast(datetime, to_datetime(watermark)) - timedelta(seconds=lookback_seconds)
    return since.strftime("%Y-%m-%dT%H:%M:%SZ")


def _max_stamp(page: pa.Table | list[dict[str, Any]], current: str | None, cursor: str) -> str | None:
    """The newest cursor value of a page (CSV cells or JSON records) and the current watermark."""
    cells = page if isinstance(page, pa.Table) else columns.text_table(page, [cursor])
    if cursor not in cells.column_names:
        return current
    stamps, _ = columns.timestamp(cells.column(cursor).combine_chunks())
    found = [s for s in (pc.max(stamps).as_py(), to_datetime(current)) if s is not None]
    return max(found).isoformat() if found else current


class ObjectReader:
    """Reads one object's pages for run_sync and remembers which API it used.

    A Bulk 2.0 load keeps its place in the stream's watermark, as JSON (job id, the locator of the next
    results page, the newest cursor value so far, the watermark before it began): Salesforce keeps a
    job's results for days, so a load cut at the time budget continues there in the next run, and only a
    job that is gone (or failed) is started again. Polling for the job stops at the deadline too.

    A job that ends Failed or Aborted is started again once; when that one ends so too, the object is read by
    REST queryAll for the rest of the run (details: bulk_jobs_ended, bulk_fallback). A job that fails the same
    way every time (a query timeout on a large object) would otherwise fail every full sync of the object. The
    count of ended jobs is kept with the load, so a job found ended when a later run resumes it counts too.
    """

    def __init__(self, obj: SalesforceObject, client: SalesforceClient, runtime: Runtime, sync_type: str,
                 deadline: float):
        self.obj, self.client, self.settings, self.sync_type = obj, client, runtime.settings, sync_type
        self.deadline = deadline
        self.warehouse = runtime.warehouse
        self.api = "rest"
        self.notes: dict[str, Any] = {}

    def pages(self, watermark: str | None) -> Iterator[Page]:
        # Inside the run: a refused schema change fails the run, recorded and published like any failure.
        self.obj, schema = with_org_fields(self.obj, self.client, self.warehouse, self.settings)
        self.notes.update(schema)
        load = bulk_load(watermark)
        if load is not None:
            yield from self._bulk(load, resumed=True)
        elif self.sync_type == "full" or watermark is None:
            yield from self._full(watermark)
        else:
            since = soql_datetime(watermark, self.settings.salesforce_lookback_seconds)
            yield from self._rest(self.obj.soql(since), watermark)

    def _rest(self, soql: str, watermark: str | None) -> Iterator[Page]:
        for records, last in self.client.query_pages(soql, include_deleted=True):
            watermark = _max_stamp(records, watermark, self.obj.cursor)
            yield Page(records, watermark, final=last)

    def _full(self, previous: str | None) -> Iterator[Page]:
        if self.client.count(self.obj.name) > self.settings.salesforce_bulk_threshold:
            try:
                load = self._new_bulk_load(previous)
            except SalesforceError as error:
                log.warning("Bulk API 2.0 unavailable, paging with REST instead",
                            extra={"json_fields": {"object": self.obj.name, "error": str(error)[:300]}})
            else:
                yield from self._bulk(load, resumed=False)
                return
        yield from self._rest(self.obj.soql(), None)

    def _new_bulk_load(self, previous: str | None, ended: int = 0) -> dict[str, Any]:
        job = self.client.start_bulk_query(self.obj.soql(ordered=False), include_deleted=True)
        return {"mode": BULK_MODE, "job": job, "locator": "", "newest": None, "previous": previous, "ended": ended}

    def _bulk(self, load: dict[str, Any], resumed: bool) -> Iterator[Page]:
        self.api = "bulk2"
        state = self.client.bulk_job_state(load["job"]) if resumed else None
        if resumed and state in (None, *BULK_ENDED):
            ended = load.get("ended", 0) + (state in BULK_ENDED)
            if state in BULK_ENDED:
                self.notes.setdefault("bulk_jobs_ended", []).append({"job": load["job"], "state": state})
            log.warning("the stored Bulk job is gone or ended, starting a new one",
                        extra={"json_fields": {"job": load["job"], "state": state}})
            self.notes["bulk_job_restarted"] = load["job"]
            if ended >= BULK_TRIES:
                yield from self._fall_back_to_rest()
                return
            load, resumed = self._new_bulk_load(load["previous"], ended), False
        self.notes.update(bulk_job=load["job"], **({"resumed_at_locator": load["locator"]} if resumed else {}))
        load, outcome = self._completed_job(load)
        if outcome == "ended":
            yield from self._fall_back_to_rest()
            return
        if outcome == "waiting":
            self.notes["bulk_job_waiting"] = True
            yield Page([], json.dumps(load))  # the job id is kept; the runner stops here at its budget
            return
        locator = load["locator"]
        while locator is not None:
            records, locator = self.client.bulk_results(load["job"], locator)
            # Bulk results are unordered: the cursor's watermark is set once, with the last page.
            load = {**load, "locator": locator, "newest": _max_stamp(records, load["newest"], self.obj.cursor)}
            if locator is None:
                yield Page(records, _newer(load["newest"], load["previous"]), final=True)
            else:
                yield Page(records, json.dumps(load))

    def _fall_back_to_rest(self) -> Iterator[Page]:
        self.api = "rest"
        self.notes["bulk_fallback"] = "REST queryAll for this run: the Bulk job ended twice without results"
        yield from self._rest(self.obj.soql(), None)

    def _completed_job(self, load: dict[str, Any]) -> tuple[dict[str, Any], Literal["complete", "waiting", "ended"]]:
        """The load and its job's outcome: complete, still waiting at the deadline, or ended (Failed or Aborted)
        BULK_TRIES times in all (the load counts those of earlier runs); a job that ends before is replaced."""
        while load.get("ended", 0) < BULK_TRIES:
            try:
                return load, "complete" if self.client.wait_for_bulk_job(load["job"], self.deadline) else "waiting"
            except BulkJobEnded as ended:
                log.warning("Bulk job ended without results", extra={"json_fields": {
                    "object": self.obj.name, "job": ended.job_id, "state": ended.state, "error": ended.message[:300]}})
                self.notes.setdefault("bulk_jobs_ended", []).append(
                    {"job": ended.job_id, "state": ended.state, "error": ended.message[:300]})
                count = load.get("ended", 0) + 1
                if count >= BULK_TRIES:
                    return load, "ended"
                load = self._new_bulk_load(load["previous"], count)
                self.notes["bulk_job"] = load["job"]
        return load, "ended"

    def details(self) -> dict[str, Any]:
        usage = self.client.api_usage()
        return {"api": self.api, **self.notes,
                **({"api_usage": {"used": usage[0], "limit": usage[1]}} if usage else {})}


BULK_MODE = "bulk2"
BULK_TRIES = 2  # Bulk jobs of one load that may end Failed or Aborted before the object is read by REST


def _newer(first: str | None, second: str | None) -> str | None:
    found = [moment for moment in (to_datetime(first), to_datetime(second)) if moment is not None]
    return max(found).isoformat() if found else None


def bulk_load(watermark: str | None) -> dict[str, Any] | None:
    """The Bulk load in progress a watermark holds, if it holds one (else it is a cursor value)."""
    if not watermark or not watermark.startswith("{"):
        return None
    load = json.loads(watermark)
    return load if load.get("mode") == BULK_MODE else None


def _transformed(obj: SalesforceObject, page: Any, region: str) -> PageRows:
    rows, rejected = obj.transform(page, region)
    return {obj.table: rows}, [Reject(record, reason) for record, reason in rejected]


def object_names(object_type: str) -> list[str]:
    return list(OBJECTS) if object_type == "all" else [object_type]


def formula_refresh_due(name: str, warehouse: Warehouse, settings: Settings, now: datetime) -> bool:
    """Whether an object's opted-in formula fields call for a full sync: it has some, and no full sync of it has
    started (and succeeded, or ended partial: the runs after it complete it) within SALESFORCE_FORMULA_REFRESH_HOURS.

    A formula's value changes without touching SystemModstamp, so only a full read brings every record's up to
    date; this turns the object's next scheduled incremental run into that full read once the interval is past.
    """
    if not settings.salesforce_formula_fields.get(name):
        return False
    since = now - timedelta(hours=settings.salesforce_formula_refresh_hours)
    (row,) = warehouse.query(
        f"SELECT COUNT(*) AS n FROM {quoted(warehouse.dataset, 'etl_runs')} WHERE started_at >= @since AND "
        "source = @source AND stream = @stream AND sync_type = 'full' AND status IN ('success', 'partial')",
        {"since": since, "source": SOURCE, "stream": name})
    return row["n"] == 0


def object_sync_type(name: str, requested: str, runtime: Runtime) -> str:
    """The sync an object gets: the one requested, or full when its formula fields are due a refresh. A push run
    stays incremental without asking (a billed query of etl_runs on every push): the refresh is the schedule's."""
    if requested == "full" or in_push_run() or not formula_refresh_due(name, runtime.warehouse, runtime.settings,
                                                      datetime.now(timezone.utc)):
        return requested
    log.info("formula fields due a refresh: a full sync instead", extra={"json_fields": {"object": name}})
    return "full"


def object_job(name: str, client: SalesforceClient, runtime: Runtime, requested: str, deadline: float) -> SyncJob:
    """One object's SyncJob: its reader (which API, from where) and its column-wise page transform."""
    sync_type = object_sync_type(name, requested, runtime)
    reader = ObjectReader(OBJECTS[name], client, runtime, sync_type, deadline)
    if sync_type != requested:
        reader.notes["formula_refresh"] = f"no full sync in {runtime.settings.salesforce_formula_refresh_hours:g} h"
    region = runtime.settings.default_phone_region
    return SyncJob(source=SOURCE, stream=name, sync_type=sync_type, fetch_pages=reader.pages,
                   transform_page=lambda page: _transformed(reader.obj, page, region),
                   record_key=lambda record: record.get("Id"),
                   api_calls=calls_from_now(client), details=reader.details)


def client_for(runtime: Runtime) -> SalesforceClient:
    """The Salesforce client of the runtime's configured login and settings."""
    return SalesforceClient(SalesforceCredentials.from_secrets(runtime.secrets, runtime.settings), runtime.settings)


def requested_streams(request: SalesforceSyncRequest, _runtime: Runtime) -> list[str]:
    """The streams a request names (pipeline.worker enqueues one work message each): its objects."""
    return object_names(request.object_type)


def stream_job(name: str, sync_type: str, runtime: Runtime, deadline: float) -> SyncJob:
    """One object's SyncJob (a work message's stream), with a client of its own; BadRequest for an unknown object."""
    if name not in OBJECTS:
        raise BadRequest(f"{name} is not one of the synced objects ({', '.join(OBJECTS)})")
    return object_job(name, client_for(runtime), runtime, sync_type, deadline)


def run_salesforce_sync(request: SalesforceSyncRequest, runtime: Runtime, client: SalesforceClient | None = None,
                        clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Syncs the requested objects one after another within one time budget (pipeline.runner.run_jobs: each
    object its share, so a large object cannot starve the rest); an exhausted API budget stops the objects
    after it. Answers every run's summary."""
    settings = runtime.settings
    client = client or client_for(runtime)
    jobs = [partial(object_job, name, client, runtime, request.sync_type) for name in object_names(request.object_type)]
    return run_jobs(SOURCE, jobs, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=settings,
                    trigger=request.trigger, clock=clock)


def check_salesforce(runtime: Runtime) -> list[Check]:
    """The connection check: logged in as configured, and the org's API limits read (nothing written)."""
    def read() -> str:
        daily = client_for(runtime).sf.limits()["DailyApiRequests"]
        return f"logged in; {daily['Remaining']:,} of {daily['Max']:,} daily API requests left"

    return [check(SOURCE, "login and API limits", read)]
