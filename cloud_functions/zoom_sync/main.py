"""HTTP entry point: POST {"sync_type": "incremental"|"full", "days": N}."""
from __future__ import annotations

import functions_framework

from cloud_functions.zoom_sync.sync import ZoomSyncRequest, check_zoom, run_zoom_sync
from http_entry.handler import handle_request
from http_entry.work_entry import handle_work


@functions_framework.http
def zoom_sync(request):
    """Syncs Zoom meetings, participants and transcripts into the warehouse; answers the run's JSON summary."""
    return handle_request(request, ZoomSyncRequest, run_zoom_sync, source="zoom", check=check_zoom)


@functions_framework.http
def zoom_worker(request):
    """Runs one stream of a zoom work message (a Pub/Sub push delivery of work-zoom); 2xx acknowledges it."""
    return handle_work(request, source="zoom")
