"""HTTP entry point: POST {"sync_type": "incremental"|"full", "days": N}."""
from __future__ import annotations

import functions_framework

from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, check_dialpad, run_dialpad_sync
from http_entry.handler import handle_request
from http_entry.work_entry import handle_work


@functions_framework.http
def dialpad_sync(request):
    """Syncs Dialpad calls and transcripts into the warehouse; answers the run's JSON summary."""
    return handle_request(request, DialpadSyncRequest, run_dialpad_sync, source="dialpad", check=check_dialpad)


@functions_framework.http
def dialpad_worker(request):
    """Runs one stream of a dialpad work message (a Pub/Sub push delivery of work-dialpad); 2xx acknowledges it."""
    return handle_work(request, source="dialpad")
