"""Every Cloud Functions entry point, re-exported from the source root.

Cloud Functions deploys with --source=. --entry-point=<name>, and the entry point must be a name in
this file: `--entry-point=cloud_functions.salesforce_sync.main.salesforce_sync` does not work. The sources'
entry points (<source>_sync, <source>_worker) come from the source registry (config/sources.py).
"""
from cloud_functions.account_recommendations.main import account_recommendations as account_recommendations
from cloud_functions.entity_resolution.main import entity_resolution as entity_resolution
from cloud_functions.file_drop.main import file_drop as file_drop
from cloud_functions.landing_merger.main import landing_merger as landing_merger
from cloud_functions.push.main import dialpad_webhook as dialpad_webhook
from cloud_functions.push.main import gmail_push as gmail_push
from cloud_functions.push.main import gmail_watch as gmail_watch
from cloud_functions.push.main import hubspot_webhook as hubspot_webhook
from cloud_functions.push.main import salesforce_probe as salesforce_probe
from config.sources import entry_points

_SOURCES = entry_points()
globals().update(_SOURCES)

__all__ = sorted(["account_recommendations", "entity_resolution", "file_drop", "landing_merger", "dialpad_webhook",
                  "gmail_push", "gmail_watch", "hubspot_webhook", "salesforce_probe", *_SOURCES])
