"""Every Cloud Functions entry point, re-exported from the source root.

Cloud Functions deploys with --source=. --entry-point=<name>, and the entry point must be a name in
this file: `--entry-point=cloud_functions.salesforce_sync.main.salesforce_sync` does not work.
"""
from cloud_functions.account_recommendations.main import account_recommendations
from cloud_functions.dialpad_sync.main import dialpad_sync, dialpad_worker
from cloud_functions.entity_resolution.main import entity_resolution
from cloud_functions.gmail_sync.main import gmail_sync, gmail_worker
from cloud_functions.hubspot_sync.main import hubspot_sync, hubspot_worker
from cloud_functions.landing_merger.main import landing_merger
from cloud_functions.push.main import dialpad_webhook, gmail_push, gmail_watch, hubspot_webhook, salesforce_probe
from cloud_functions.salesforce_sync.main import salesforce_sync, salesforce_worker

__all__ = ["account_recommendations", "dialpad_sync", "dialpad_webhook", "dialpad_worker", "entity_resolution",
           "gmail_push", "gmail_sync", "gmail_watch", "gmail_worker", "hubspot_sync", "hubspot_webhook",
           "hubspot_worker", "landing_merger", "salesforce_probe", "salesforce_sync", "salesforce_worker"]
