"""HTTP entry point: POST {"sync_type": "incremental"|"full", "include_enrollments": true}."""
from __future__ import annotations

import functions_framework

from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, check_hubspot, run_hubspot_sync
from http_entry.handler import handle_request


@functions_framework.http
def hubspot_sync(request):
    """Syncs HubSpot sequences and enrollments into the warehouse; answers the runs' JSON summary."""
    return handle_request(request, HubSpotSyncRequest, run_hubspot_sync, source="hubspot", check=check_hubspot)
