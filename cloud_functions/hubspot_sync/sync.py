"""HubSpot as two SyncJobs: sequences (every owner's, read whole each run) and enrollments (per contact,
from contact searches by lastmodifieddate, the watermark being the last modification merged)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from api_clients.connection_check import Check, check
from cloud_functions.hubspot_sync.auth import access_token
from cloud_functions.hubspot_sync.client import HubSpotClient
from cloud_functions.hubspot_sync.records import enrollment_rows, sequence_row
from http_entry.validation import BadRequest, SyncRequest
from pipeline.runner import Page, SyncJob, calls_from_now, per_record, run_jobs
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


def sequences_job(client: HubSpotClient, sync_type: str) -> SyncJob:
    """Every owner's sequences, read whole each run."""
    return SyncJob(source=SOURCE, stream="sequences", sync_type=sync_type,
                   fetch_pages=lambda _watermark: sequence_pages(client),
                   transform_page=per_record(lambda sequence: {"hubspot_sequences": [sequence_row(sequence)]}),
                   record_key=lambda sequence: sequence.get("id"), api_calls=calls_from_now(client))


def enrollments_job(client: HubSpotClient, sync_type: str, lookback_seconds: int) -> SyncJob:
    """Enrollments of the contacts modified since the watermark (less the look-back; all of them when full)."""
    return SyncJob(source=SOURCE, stream="enrollments", sync_type=sync_type,
                   fetch_pages=lambda watermark: enrollment_pages(client, watermark, lookback_seconds,
                                                                  sync_type == "full"),
                   transform_page=per_record(lambda record: {"hubspot_sequence_enrollments": enrollment_rows(record)}),
                   record_key=lambda record: record["contact"]["id"], api_calls=calls_from_now(client))


def client_for(runtime: Runtime) -> HubSpotClient:
    """The HubSpot client of the runtime's key and settings."""
    return HubSpotClient(access_token(runtime.secrets), runtime.settings)


def requested_streams(request: HubSpotSyncRequest, _runtime: Runtime) -> list[str]:
    """The streams a request names (pipeline.worker enqueues one work message each)."""
    return ["sequences", "enrollments"] if request.include_enrollments else ["sequences"]


def stream_job(stream: str, sync_type: str, runtime: Runtime, _deadline: float) -> SyncJob:
    """One stream's SyncJob (a work message's), with a client of its own; BadRequest for an unknown stream."""
    if stream == "sequences":
        return sequences_job(client_for(runtime), sync_type)
    if stream == "enrollments":
        return enrollments_job(client_for(runtime), sync_type, runtime.settings.hubspot_lookback_seconds)
    raise BadRequest(f"hubspot's streams are sequences and enrollments, not {stream!r}")


def run_hubspot_sync(request: HubSpotSyncRequest, runtime: Runtime, client: HubSpotClient | None = None) -> dict[str, Any]:
    """Syncs sequences, then enrollments (pipeline.runner.run_jobs); answers both runs."""
    settings = runtime.settings
    client = client or client_for(runtime)
    jobs = [lambda _deadline: sequences_job(client, request.sync_type)]
    if request.include_enrollments:
        jobs.append(lambda _deadline: enrollments_job(client, request.sync_type, settings.hubspot_lookback_seconds))
    return run_jobs(SOURCE, jobs, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=settings,
                    trigger=request.trigger)


def check_hubspot(runtime: Runtime) -> list[Check]:
    """The connection check: the key read, and the owners listed (whose sequences the sync reads; nothing written)."""
    def read() -> str:
        owners = client_for(runtime).owner_user_ids()
        return f"key accepted; {len(owners)} owners whose sequences are read"

    return [check(SOURCE, "owners", read)]
