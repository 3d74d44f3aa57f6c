"""Every Cloud Functions entry point, re-exported from the source root.

Cloud Functions deploys with --source=. --entry-point=<name>, and the entry point must be a name in
this file: `--entry-point=cloud_functions.salesforce_sync.main.salesforce_sync` does not work.
"""
from cloud_functions.entity_resolution.main import entity_resolution
from cloud_functions.salesforce_sync.main import salesforce_sync

__all__ = ["entity_resolution", "salesforce_sync"]
