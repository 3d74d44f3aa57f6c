"""Push entry points: the two webhooks (HTTP, the only functions reachable without a Google identity), Gmail's
notifications (Pub/Sub), the daily Gmail watch renewal and the Salesforce probe (HTTP, from Cloud Scheduler)."""
from __future__ import annotations

import functions_framework

from http_entry.handler import handle_request
from http_entry.validation import RequestModel
from push.gmail_notifications import publish_notification
from push.gmail_watch import renew_watches
from push.receivers import accept_dialpad, accept_hubspot, process_receiver, receive
from push.salesforce_probe import ProbeRequest, probe_salesforce


@functions_framework.http
def hubspot_webhook(request):
    """HubSpot's signed webhook (signature v3): the contacts named become enrollment work; 401 when not verified."""
    return receive(request, process_receiver(), "hubspot", accept_hubspot)


@functions_framework.http
def dialpad_webhook(request):
    """Dialpad's call events (a JWT signed HS256): the call becomes calls work; 401 when not verified."""
    return receive(request, process_receiver(), "dialpad", accept_dialpad)


@functions_framework.cloud_event
def gmail_push(cloud_event):
    """A Gmail notification ({emailAddress, historyId}) from the push topic into the mailbox's incremental work."""
    receiver = process_receiver()
    publish_notification(cloud_event.data, receiver.settings, receiver.queue)


@functions_framework.http
def gmail_watch(request):
    """Registers or renews users.watch for every configured mailbox (daily); failures recorded and alerted."""
    return handle_request(request, RequestModel, lambda parsed, runtime: renew_watches(runtime, parsed.trigger),
                          source="gmail")


@functions_framework.http
def salesforce_probe(request):
    """Asks each Salesforce object for changes every SALESFORCE_PROBE_SECONDS within its minute; publishes work for
    the objects that changed."""
    return handle_request(request, ProbeRequest, probe_salesforce, source="salesforce")
