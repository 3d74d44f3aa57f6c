"""HTTP entry point: POST {"object_type": "Account"|...|"OpportunityFieldHistory"|"all",
"sync_type": "incremental"|"full"}."""
from __future__ import annotations

import functions_framework

from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, check_salesforce, run_salesforce_sync
from http_entry.handler import handle_request
from http_entry.work_entry import handle_work


@functions_framework.http
def salesforce_sync(request):
    """Syncs Salesforce objects into the warehouse; answers the runs' JSON summary."""
    return handle_request(request, SalesforceSyncRequest, run_salesforce_sync, source="salesforce", check=check_salesforce)


@functions_framework.http
def salesforce_worker(request):
    """Runs one stream of a salesforce work message (a Pub/Sub push delivery of work-salesforce); 2xx acknowledges it."""
    return handle_work(request, source="salesforce")
