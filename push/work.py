"""Running a work message with its source's existing run function, then resolving what it brought.

Until the fan-out worker (pipeline/worker.py, issue 24) runs work messages, this is what the tests and
bench/freshness.py consume the work topics with: a push message whose stream ran since it was published is
acknowledged without a run (push/coalesce.py); any other runs its one stream exactly as a scheduled run of that
stream would (gmail_sync for one mailbox, salesforce_sync for one object, dialpad_sync, HubSpot's enrollments).
Entity resolution then runs incrementally: it reads, for rows never examined, only the partitions that the runs
since its last one wrote, so it costs in proportion to what the push brought, not to the tables.
"""
from __future__ import annotations

from typing import Any

from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync
from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync
from cloud_functions.hubspot_sync.sync import SOURCE as HUBSPOT, client_for as hubspot_client, enrollments_job, \
    sequences_job
from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync
from entity_resolution.matcher import ResolutionRequest, resolve_entities
from pipeline.runner import run_jobs
from pipeline.runtime import Runtime
from pipeline.work_queue import WorkMessage
from push.coalesce import superseded


def _hubspot_stream(message: WorkMessage, runtime: Runtime) -> dict[str, Any]:
    settings, client = runtime.settings, hubspot_client(runtime)
    job = (enrollments_job(client, message.sync_type, settings.hubspot_lookback_seconds)
           if message.stream == "enrollments" else sequences_job(client, message.sync_type))
    return run_jobs(HUBSPOT, [lambda _deadline: job], warehouse=runtime.warehouse, publisher=runtime.publisher,
                    settings=settings, trigger="local")


def run_stream(message: WorkMessage, runtime: Runtime) -> dict[str, Any]:
    """Runs the message's one stream with its source's run function; answers the run's summary."""
    kind = message.sync_type
    if message.source == "gmail":
        return run_gmail_sync(GmailSyncRequest(mailbox_email=message.stream, sync_type=kind, trigger="local"), runtime)
    if message.source == "salesforce":
        return run_salesforce_sync(SalesforceSyncRequest(object_type=message.stream, sync_type=kind,
                                                         trigger="local"), runtime)
    if message.source == "dialpad":
        return run_dialpad_sync(DialpadSyncRequest(sync_type=kind, trigger="local"), runtime)
    if message.source == HUBSPOT:
        return _hubspot_stream(message, runtime)
    raise ValueError(f"no run function for source {message.source!r}")


def run_message(message: WorkMessage, runtime: Runtime) -> dict[str, Any] | None:
    """The run of a work message, or None when it was superseded (coalesced into a run that started after it)."""
    if superseded(message, runtime.warehouse):
        return None
    return run_stream(message, runtime)


def resolve_pushed(runtime: Runtime) -> dict[str, Any]:
    """Incremental entity resolution of what the runs since the last resolution wrote."""
    return resolve_entities(ResolutionRequest(sync_type="incremental", trigger="local"), runtime)
