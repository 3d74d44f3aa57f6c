"""HTTP entry point: POST {"sync_type": "incremental"|"full", "include_enrollments": true}."""
from __future__ import annotations

import functions_framework

from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, check_hubspot, run_hubspot_sync
from http_entry.handler import handle_request
from http_entry.work_entry import handle_work


@functions_framework.http
def hubspot_sync(request):
    """Syncs HubSpot sequences and enrollments into the warehouse; answers the runs' JSON summary."""
    return handle_request(request, HubSpotSyncRequest, run_hubspot_sync, source="hubspot", check=check_hubspot)


@functions_framework.http
def hubspot_worker(request):
    """Runs one stream of a hubspot work message (a Pub/Sub push delivery of work-hubspot); 2xx acknowledges it."""
    return handle_work(request, source="hubspot")
