"""Salesforce objects as SyncJobs for run_sync: which pages to read, from where, by which API.

Incremental: queryAll from the stored SystemModstamp minus a look-back, ordered by (SystemModstamp, Id),
so deletions arrive as IsDeleted rows and rows sharing the last timestamp are not lost; MERGE absorbs
the overlap. Full (or no watermark yet): Bulk API 2.0 above the size threshold, REST paging below it or
when Bulk is unavailable. Pages stream through: memory does not grow with the object's size.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Iterator, Literal

import pyarrow as pa
import pyarrow.compute as pc
from simple_salesforce.exceptions import SalesforceError

from cloud_functions.salesforce_sync.client import SalesforceClient, SalesforceCredentials
from cloud_functions.salesforce_sync.objects import CURSOR, OBJECTS, SalesforceObject
from utils import columns
from utils.logger import get_logger
from utils.runtime import Runtime
from utils.sync_runner import Page, SyncJob, overall_status, run_sync
from utils.validation import SyncRequest
from utils.values import to_datetime

log = get_logger(__name__)
SOURCE = "salesforce"
ObjectName = Literal["Account", "Contact", "Lead", "Opportunity", "Task", "Event", "EmailMessage", "all"]


class SalesforceSyncRequest(SyncRequest):
    """Body of a salesforce_sync call."""

    object_type: ObjectName = "all"


def soql_datetime(watermark: str, lookback_seconds: int) -> str:
    """The inclusive lower bound for an incremental read: the watermark minus the look-back, whole seconds."""
    since = to_datetime(watermark) - timedelta(seconds=lookback_seconds)
    return since.strftime("%Y-%m-%dT%H:%M:%SZ")


def _max_stamp(page: pa.Table | list[dict[str, Any]], current: str | None) -> str | None:
    """The newest SystemModstamp of a page (CSV cells or JSON records) and the current watermark."""
    cells = page if isinstance(page, pa.Table) else columns.text_table(page, [CURSOR])
    if CURSOR not in cells.column_names:
        return current
    stamps, _ = columns.timestamp(cells.column(CURSOR).combine_chunks())
    found = [s for s in (pc.max(stamps).as_py(), to_datetime(current)) if s is not None]
    return max(found).isoformat() if found else current


class ObjectReader:
    """Reads one object's pages for run_sync and remembers which API it used."""

    def __init__(self, obj: SalesforceObject, client: SalesforceClient, runtime: Runtime, sync_type: str):
        self.obj, self.client, self.settings, self.sync_type = obj, client, runtime.settings, sync_type
        self.api = "rest"

    def pages(self, watermark: str | None) -> Iterator[Page]:
        if self.sync_type == "full" or watermark is None:
            yield from self._full()
            return
        since = soql_datetime(watermark, self.settings.salesforce_lookback_seconds)
        yield from self._rest(self.obj.soql(since), watermark)

    def _rest(self, soql: str, watermark: str | None) -> Iterator[Page]:
        for records in self.client.query_pages(soql, include_deleted=True):
            watermark = _max_stamp(records, watermark)
            yield Page(records, watermark)

    def _full(self) -> Iterator[Page]:
        total = self.client.count(self.obj.name)
        if total > self.settings.salesforce_bulk_threshold:
            try:
                pages = self.client.bulk_query_pages(self.obj.soql(ordered=False), include_deleted=True)
                first = next(pages, [])
                self.api = "bulk2"
            except SalesforceError as error:
                log.warning("Bulk API 2.0 unavailable, paging with REST instead",
                            extra={"json_fields": {"object": self.obj.name, "error": str(error)[:300]}})
            else:
                # Bulk results are unordered: the watermark is set once, after the last page is merged.
                newest = _max_stamp(first, None)
                yield Page(first)
                for records in pages:
                    newest = _max_stamp(records, newest)
                    yield Page(records)
                yield Page([], newest)
                return
        yield from self._rest(self.obj.soql(), None)

    def details(self) -> dict[str, Any]:
        usage = self.client.api_usage()
        return {"api": self.api, **({"api_usage": {"used": usage[0], "limit": usage[1]}} if usage else {})}


def _transformed(obj: SalesforceObject, page: Any, region: str) -> tuple[dict[str, pa.Table], list[tuple[Any, str]]]:
    rows, rejected = obj.transform(page, region)
    return {obj.table: rows}, rejected


def object_names(object_type: str) -> list[str]:
    return list(OBJECTS) if object_type == "all" else [object_type]


def run_salesforce_sync(request: SalesforceSyncRequest, runtime: Runtime,
                        client: SalesforceClient | None = None) -> dict[str, Any]:
    """Syncs the requested objects one after another; returns every run's summary."""
    settings = runtime.settings
    client = client or SalesforceClient(SalesforceCredentials.from_secrets(runtime.secrets, settings), settings)
    region = settings.default_phone_region
    summaries = []
    for name in object_names(request.object_type):
        obj = OBJECTS[name]
        reader = ObjectReader(obj, client, runtime, request.sync_type)
        calls_before = client.api_calls
        job = SyncJob(source=SOURCE, stream=name, sync_type=request.sync_type, fetch_pages=reader.pages,
                      transform_page=lambda page, obj=obj: _transformed(obj, page, region),
                      record_key=lambda record: record.get("Id"),
                      api_calls=lambda before=calls_before: client.api_calls - before, details=reader.details)
        summary = run_sync(job, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=settings,
                           trigger=request.trigger)
        summaries.append(summary.to_dict())
        if summary.status == "partial":
            break  # out of time or API budget: the remaining objects wait for the next run
    status = overall_status(summaries, expected=len(object_names(request.object_type)))
    return {"source": SOURCE, "status": status, "runs": summaries,
            "rows_loaded": sum(s["rows_loaded"] for s in summaries), "api_calls": client.api_calls}
