"""HTTP entry point: POST {"object_type": "Account"|...|"OpportunityFieldHistory"|"all",
"sync_type": "incremental"|"full"}."""
from __future__ import annotations

import functions_framework

from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, check_salesforce, run_salesforce_sync
from http_entry.handler import handle_request


@functions_framework.http
def salesforce_sync(request):
    """Syncs Salesforce objects into the warehouse; answers the runs' JSON summary."""
    return handle_request(request, SalesforceSyncRequest, run_salesforce_sync, source="salesforce", check=check_salesforce)
