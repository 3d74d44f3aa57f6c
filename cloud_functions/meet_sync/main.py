"""HTTP entry point: POST {"sync_type": "incremental"|"full", "days": N, "users": [...]}."""
from __future__ import annotations

import functions_framework

from cloud_functions.meet_sync.sync import MeetSyncRequest, check_meet, run_meet_sync
from http_entry.handler import handle_request
from http_entry.work_entry import handle_work


@functions_framework.http
def meet_sync(request):
    """Syncs Google Meet conferences, participants and transcripts into the warehouse; answers the runs' summary."""
    return handle_request(request, MeetSyncRequest, run_meet_sync, source="meet", check=check_meet)


@functions_framework.http
def meet_worker(request):
    """Runs one stream of a meet work message (a Pub/Sub push delivery of work-meet); 2xx acknowledges it."""
    return handle_work(request, source="meet")
