"""HTTP entry point: POST {"sync_type": "incremental"|"full", "days": N}."""
from __future__ import annotations

import functions_framework

from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, check_dialpad, run_dialpad_sync
from http_entry.handler import handle_request


@functions_framework.http
def dialpad_sync(request):
    """Syncs Dialpad calls and transcripts into the warehouse; answers the run's JSON summary."""
    return handle_request(request, DialpadSyncRequest, run_dialpad_sync, source="dialpad", check=check_dialpad)
