"""HubSpot as two SyncJobs: sequences (every owner's, read whole each run) and enrollments (per contact,
from contact searches by lastmodifieddate, the watermark being the last modification merged)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from cloud_functions.hubspot_sync.client import HubSpotClient
from cloud_functions.hubspot_sync.records import enrollment_rows, sequence_row
from http_entry.validation import SyncRequest
from pipeline.runner import Page, SyncJob, overall_status, run_sync
from pipeline.runtime import Runtime

SOURCE = "hubspot"


class HubSpotSyncRequest(SyncRequest):
    """Body of a hubspot_sync call."""

    include_enrollments: bool = True


def sequence_pages(client: HubSpotClient) -> Iterator[Page]:
    for user_id in client.owner_user_ids():
        for sequences in client.sequences(user_id):
            yield Page(sequences)


def enrollment_pages(client: HubSpotClient, watermark: str | None, lookback_seconds: int, full: bool) -> Iterator[Page]:
    since = datetime.fromtimestamp(0, tz=timezone.utc)
    if watermark and not full:
        since = datetime.fromisoformat(watermark) - timedelta(seconds=lookback_seconds)
    for contacts in client.modified_contacts(int(since.timestamp() * 1000)):
        records = [{"contact": c, "enrollment": client.enrollment(c["id"])} for c in contacts]
        newest = max(c["modified_ms"] for c in contacts)
        yield Page(records, datetime.fromtimestamp(newest / 1000, tz=timezone.utc).isoformat())


def run_hubspot_sync(request: HubSpotSyncRequest, runtime: Runtime, client: HubSpotClient | None = None) -> dict[str, Any]:
    """Syncs sequences, then enrollments; returns both runs' summaries."""
    settings = runtime.settings
    client = client or HubSpotClient(runtime.secrets.get("hubspot-api-key"), settings)
    jobs = [SyncJob(source=SOURCE, stream="sequences", sync_type=request.sync_type,
                    fetch_pages=lambda _watermark: sequence_pages(client),
                    to_rows=lambda sequence: {"hubspot_sequences": [sequence_row(sequence)]},
                    record_key=lambda sequence: sequence.get("id"), api_calls=lambda: client.api_calls)]
    if request.include_enrollments:
        jobs.append(SyncJob(
            source=SOURCE, stream="enrollments", sync_type=request.sync_type,
            fetch_pages=lambda watermark: enrollment_pages(client, watermark, settings.hubspot_lookback_seconds,
                                                           request.sync_type == "full"),
            to_rows=lambda record: {"hubspot_sequence_enrollments": enrollment_rows(record)},
            record_key=lambda record: record["contact"]["id"], api_calls=lambda: client.api_calls))
    runs = []
    for position, job in enumerate(jobs):
        before = client.api_calls
        job.api_calls = lambda before=before: client.api_calls - before
        runs.append(run_sync(job, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=settings,
                             trigger=request.trigger, sweep_abandoned=position == 0).to_dict())
    return {"source": SOURCE, "status": overall_status(runs), "runs": runs, "api_calls": client.api_calls}
