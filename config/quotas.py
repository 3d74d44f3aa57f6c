"""How many instances of each queue-mode worker may run at once, from the quotas they share (the arithmetic
config/functions.yaml's max_instances must agree with; a test compares them).

A worker instance runs one stream at a time (one request per instance), so max_instances is how many streams of
a source run at once, and each limit below is kept by the instance count or by a division of the per-instance
rate, never by luck:
- Gmail: the project's 1,200,000 units a minute over one mailbox's 6,000 (GMAIL_QUOTA_UNITS_PER_MINUTE, which
  each worker's client spends no faster) = 200 mailboxes at full speed at once. The project's daily units
  (GMAIL_DAILY_QUOTA_UNITS) are summed from etl_runs when a run starts (runs past them stop partial); runs already
  under way do not see each other's, so they can overshoot the figure by what they spend.
- Salesforce: the org's concurrent long-running requests (25 in production orgs; a Bulk query job counts)
  are shared with the org's users and other integrations: the pipeline takes at most 10 of them (one per
  worker), and never more than its streams (the synced objects). The daily API budget is the org's own,
  read by every worker from its /limits (the client stops at SALESFORCE_API_RESERVE).
- Dialpad: one company-wide rate (DIALPAD_REQUESTS_PER_SECOND) that two instances' limiters cannot share:
  one instance.
- HubSpot: two streams (sequences, enrollments) and one private-app limit (HUBSPOT_REQUESTS_PER_10S, and the
  search limit): two instances, each client limited to half of both in queue mode (hubspot_client_limits).
- The merger: one, the only writer of the tables (its MERGEs stay within BigQuery's DML limits by being one).
- Any other source's worker (Zoom, Meet: one stream each): one instance, its declaration's size (config/functions.py).
"""
from __future__ import annotations

from config.settings import Settings

# Gmail API: units per minute per project, and per mailbox (the setting's default: projects since 2026-05-01).
GMAIL_PROJECT_UNITS_PER_MINUTE = 1_200_000
GMAIL_MAILBOX_UNITS_PER_MINUTE = Settings.model_fields["gmail_quota_units_per_minute"].default
GMAIL_WORKERS = GMAIL_PROJECT_UNITS_PER_MINUTE // GMAIL_MAILBOX_UNITS_PER_MINUTE  # 1,200,000 / 6,000 = 200

# Salesforce: the org's concurrent long-running requests (production orgs), the share the pipeline takes of
# them, and its streams (cloud_functions/salesforce_sync/records.py OBJECTS, counted by a test).
SALESFORCE_ORG_LONG_RUNNING_REQUESTS = 25
SALESFORCE_LONG_RUNNING_SHARE = 10  # 15 of 25 left to the org's users, reports and other integrations
SALESFORCE_STREAMS = 9
SALESFORCE_WORKERS = min(SALESFORCE_LONG_RUNNING_SHARE, SALESFORCE_STREAMS)  # min(10, 9) = 9

# Dialpad: one company-wide requests-per-second limit, enforced by one limiter in one instance.
DIALPAD_WORKERS = 1

# HubSpot: one instance per stream, each with an equal share of the private app's limits.
HUBSPOT_STREAMS = ("sequences", "enrollments")
HUBSPOT_WORKERS = len(HUBSPOT_STREAMS)  # 2

# The merger: exactly one.
MERGER_INSTANCES = 1

# Entry point => the max_instances config/functions.yaml must give it.
MAX_INSTANCES = {
    "gmail_worker": GMAIL_WORKERS,
    "salesforce_worker": SALESFORCE_WORKERS,
    "dialpad_worker": DIALPAD_WORKERS,
    "hubspot_worker": HUBSPOT_WORKERS,
    "landing_merger": MERGER_INSTANCES,
}


def hubspot_client_limits(settings: Settings) -> tuple[float, float]:
    """(requests per 10 s, searches per second) one HubSpot client may spend: the private app's whole limits
    inline (one hubspot_sync instance runs every stream), 1/HUBSPOT_WORKERS of each in queue mode, where that
    many hubspot_worker instances run at once."""
    share = HUBSPOT_WORKERS if settings.dispatch == "queue" else 1
    return settings.hubspot_requests_per_10s / share, settings.hubspot_search_per_second / share
