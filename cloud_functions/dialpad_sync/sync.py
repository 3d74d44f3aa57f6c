"""Dialpad calls as a SyncJob: time windows oldest first, pages newest first within a window.

The watermark is the end of the last window read completely. Calls are listed only once they end, so
an incremental run starts settings.dialpad_lookback_hours before the watermark: a call that started
before it and finished after the last run is still found; MERGE absorbs the overlap. Transcripts are
fetched for recorded calls that do not have one stored yet, a page at a time, concurrently, and written
to dialpad_transcripts (not dialpad_calls, whose rows entity resolution updates: see tables.yaml).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, cast

from pydantic import Field

from api_clients.connection_check import Check, check
from cloud_functions.dialpad_sync.auth import api_key
from cloud_functions.dialpad_sync.client import DialpadClient
from cloud_functions.dialpad_sync.records import TRANSCRIPT, call_row, transcript_row
from http_entry.validation import SyncRequest
from pipeline.process_memory import remembered
from pipeline.run_origin import in_push_run
from pipeline.runner import Page, SyncJob, per_record, run_jobs
from pipeline.runtime import Runtime
from pipeline.stored_transcripts import KnownTranscripts
from pipeline.streams import single_stream
from transform.values import epoch_ms, to_bool, to_datetime

SOURCE = "dialpad"
STREAM = "calls"


class DialpadSyncRequest(SyncRequest):
    """Body of a dialpad_sync call."""

    days: int | None = Field(None, ge=1, le=3650, description="Days a full sync reads (default from settings).")


def windows(start: datetime, end: datetime, hours: float) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of `hours`, oldest first."""
    cuts, step = [], timedelta(hours=hours)
    while start < end:
        cuts.append((start, min(start + step, end)))
        start += step
    return cuts



class CallReader:
    """Pages of calls (with transcripts attached) for run_sync."""

    def __init__(self, client: DialpadClient, runtime: Runtime, request: DialpadSyncRequest):
        self.client, self.runtime, self.request = client, runtime, request
        self.transcripts_fetched = 0
        self.known = remembered(runtime.warehouse, "dialpad_transcripts", KnownTranscripts)

    def pages(self, watermark: str | None) -> Iterator[Page]:
        settings = self.runtime.settings
        now = datetime.now(timezone.utc)
        if self.request.sync_type == "full" or watermark is None:
            start = now - timedelta(days=self.request.days or settings.dialpad_full_days)
        else:
            start = cast(datetime, to_datetime(watermark)) - timedelta(hours=settings.dialpad_lookback_hours)
        for window_start, window_end in windows(start, now, settings.dialpad_window_hours):
            # A push run asks the warehouse nothing (a billed query on every push) about a window this process
            # looked up before: what it does not know there has no transcript stored (KnownTranscripts).
            from_memory = in_push_run() and self.known.covers(window_start, window_end)
            for calls in self.client.call_pages(epoch_ms(window_start) - 1, epoch_ms(window_end)):
                self._attach_transcripts(calls, window_start, window_end, from_memory)
                yield Page(calls)
            if not from_memory:
                self.known.looked_up(window_start, None if window_end == now else window_end)
            yield Page([], window_end.isoformat())

    def _attach_transcripts(self, calls: list[dict[str, Any]], window_start: datetime, window_end: datetime,
                            from_memory: bool) -> None:
        recorded = [str(c["call_id"]) for c in calls if c.get("call_id") is not None and _recorded(c)]
        if from_memory:
            stored = self.known.stored(recorded)
        else:
            stored = self._stored_transcripts(recorded, window_start, window_end)
            self.known.add(stored)
        wanted = sorted(set(recorded) - stored)
        found = self.client.transcripts(wanted)
        self.known.add(found)  # merged with the call on this page
        self.transcripts_fetched += len(found)
        for call in calls:
            call_id = str(call.get("call_id"))
            if call_id in wanted:
                call[TRANSCRIPT] = found.get(call_id)

    def _stored_transcripts(self, call_ids: list[str], window_start: datetime, window_end: datetime) -> set[str]:
        """Calls of the window whose transcript is stored. The started_at bounds (a day either side of the
        window the calls were listed for) keep BigQuery to those partitions of dialpad_transcripts."""
        if not call_ids:
            return set()
        warehouse = self.runtime.warehouse
        rows = warehouse.query(
            f"SELECT call_id FROM `{warehouse.dataset}.dialpad_transcripts` "
            f"WHERE started_at >= @low AND started_at < @high AND call_id IN UNNEST(@ids)",
            {"ids": call_ids, "low": window_start - timedelta(days=1), "high": window_end + timedelta(days=1)})
        return {r["call_id"] for r in rows}

    def details(self) -> dict[str, Any]:
        return {"transcripts_fetched": self.transcripts_fetched}


def _recorded(call: dict[str, Any]) -> bool:
    try:
        return bool(to_bool(call.get("was_recorded")))
    except ValueError:
        return False


def _to_rows(call: dict[str, Any], region: str) -> dict[str, list[dict[str, Any]]]:
    row = call_row(call, region)
    transcript = transcript_row(call, row)  # None when not fetched this time (or not there yet): none written
    return {"dialpad_calls": [row], **({"dialpad_transcripts": [transcript]} if transcript else {})}


def calls_job(client: DialpadClient, runtime: Runtime, request: DialpadSyncRequest) -> SyncJob:
    """Calls (and their transcripts) of the request's window."""
    reader = CallReader(client, runtime, request)
    region = runtime.settings.default_phone_region
    return SyncJob(source=SOURCE, stream=STREAM, sync_type=request.sync_type, fetch_pages=reader.pages,
                   transform_page=per_record(lambda call: _to_rows(call, region)),
                   record_key=lambda call: str(call["call_id"]) if call.get("call_id") is not None else None,
                   api_calls=lambda: client.api_calls, details=reader.details)


def client_for(runtime: Runtime) -> DialpadClient:
    """The Dialpad client of the runtime's key and settings."""
    return DialpadClient(api_key(runtime.secrets), runtime.settings)


# Queue mode (pipeline/worker.py): one stream.
requested_streams, stream_job = single_stream(
    SOURCE, STREAM, lambda runtime, sync_type: calls_job(client_for(runtime), runtime, DialpadSyncRequest(sync_type=sync_type)))  # type: ignore[arg-type]


def run_dialpad_sync(request: DialpadSyncRequest, runtime: Runtime, client: DialpadClient | None = None) -> dict[str, Any]:
    """Syncs Dialpad calls and transcripts (pipeline.runner.run_jobs, one stream); answers the run."""
    client = client or client_for(runtime)
    return run_jobs(SOURCE, [lambda _deadline: calls_job(client, runtime, request)], warehouse=runtime.warehouse,
                    publisher=runtime.publisher, settings=runtime.settings, trigger=request.trigger)


def check_dialpad(runtime: Runtime) -> list[Check]:
    """The connection check: the key read, and one page of the last hour's calls (one request, nothing written)."""
    def read() -> str:
        now = datetime.now(timezone.utc)
        page = next(iter(client_for(runtime).call_pages(epoch_ms(now - timedelta(hours=1)), epoch_ms(now))), [])
        return f"key accepted; {len(page)} calls on the first page of the last hour"

    return [check(SOURCE, "one page of calls", read)]
