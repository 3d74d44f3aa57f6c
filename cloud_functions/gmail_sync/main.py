"""HTTP entry point: POST {"mailbox_email": "...", "sync_type": "incremental"|"full"} (no mailbox: all)."""
from __future__ import annotations

import functions_framework

from cloud_functions.gmail_sync.sync import GmailSyncRequest, check_gmail, run_gmail_sync
from http_entry.handler import handle_request
from http_entry.work_entry import handle_work


@functions_framework.http
def gmail_sync(request):
    """Syncs Gmail mailboxes into the warehouse; answers the runs' JSON summary."""
    return handle_request(request, GmailSyncRequest, run_gmail_sync, source="gmail", check=check_gmail)


@functions_framework.http
def gmail_worker(request):
    """Runs one stream of a gmail work message (a Pub/Sub push delivery of work-gmail); 2xx acknowledges it."""
    return handle_work(request, source="gmail")
