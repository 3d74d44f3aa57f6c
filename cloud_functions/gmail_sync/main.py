"""HTTP entry point: POST {"mailbox_email": "...", "sync_type": "incremental"|"full"} (no mailbox: all)."""
from __future__ import annotations

import functions_framework

from cloud_functions.gmail_sync.sync import GmailSyncRequest, check_gmail, run_gmail_sync
from http_entry.handler import handle_request


@functions_framework.http
def gmail_sync(request):
    """Syncs Gmail mailboxes into the warehouse; answers the runs' JSON summary."""
    return handle_request(request, GmailSyncRequest, run_gmail_sync, source="gmail", check=check_gmail)
