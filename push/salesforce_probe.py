"""The Salesforce fast path: every object asked "changed since?" twice a minute, work published for those that were.

Salesforce pushes nothing we can use cheaply (README "Push freshness": Change Data Capture needs a long-lived gRPC
stream and covers 5 entities by default; Outbound Messages are SOAP per object and workflow). So the probe asks
instead: one `queryAll` `SELECT Id FROM <object> WHERE <cursor> >= <since> LIMIT 1` per object, which reads
no warehouse table and bills nothing there; only an object that answers a row gets a work message (an
incremental run from its stored cursor, as the 6-hourly schedule runs it). Opportunity's history objects change
only with an opportunity (Salesforce writes them itself), so they are not asked: they get work when Opportunity
does. Cloud Scheduler fires at most once a minute, so one invocation probes every SALESFORCE_PROBE_SECONDS
within its minute, each window starting where the last one did (less a margin for late commits).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from cloud_functions.salesforce_sync.client import SalesforceClient
from cloud_functions.salesforce_sync.records import OBJECTS
from cloud_functions.salesforce_sync.sync import client_for
from http_entry.validation import RequestModel
from pipeline.runtime import Runtime
from pipeline.work_queue import WorkMessage, WorkQueue

SOURCE = "salesforce"
FOLLOWERS = {"Opportunity": ("OpportunityHistory", "OpportunityFieldHistory")}
PROBED = tuple(name for name in OBJECTS if name not in {f for names in FOLLOWERS.values() for f in names})
MARGIN_SECONDS = 10  # a record committed a little after its SystemModstamp is still in the next window
MINUTE = 60


class ProbeRequest(RequestModel):
    """Body of a salesforce_probe call (from Cloud Scheduler, every minute)."""

    once: bool = False  # one probe, not one every SALESFORCE_PROBE_SECONDS for a minute (tests, by hand)


def soql_instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def changed_objects(client: SalesforceClient, since: datetime) -> list[str]:
    """The probed objects with a record whose cursor is at or after since (deleted records included)."""
    changed = []
    for name in PROBED:
        obj = OBJECTS[name]
        soql = f"SELECT Id FROM {name} WHERE {obj.cursor} >= {soql_instant(since)} LIMIT 1"
        records, _last = next(iter(client.query_pages(soql)))
        if records:
            changed.append(name)
    return changed


def work_for(changed: list[str]) -> list[WorkMessage]:
    """One push message per changed object, and its followers'."""
    names = [n for name in changed for n in (name, *FOLLOWERS.get(name, ()))]
    return [WorkMessage(SOURCE, name, reason="push") for name in names]


def probe_once(client: SalesforceClient, queue: WorkQueue, since: datetime) -> list[str]:
    """One probe from since: publishes the changed objects' work; returns their names."""
    messages = work_for(changed_objects(client, since))
    if messages:
        queue.publish(messages)
    return [m.stream for m in messages]


def probe_salesforce(request: ProbeRequest, runtime: Runtime, queue: WorkQueue | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Probes once, or every SALESFORCE_PROBE_SECONDS for a minute; answers the objects published per probe."""
    interval = runtime.settings.salesforce_probe_seconds
    client, queue = client_for(runtime), queue or WorkQueue(runtime.settings)
    since = datetime.now(timezone.utc) - timedelta(seconds=MINUTE + MARGIN_SECONDS)
    probes = []
    for index in range(1 if request.once else max(1, MINUTE // interval)):
        if index:
            sleep(interval)
        started = datetime.now(timezone.utc)
        probes.append(probe_once(client, queue, since))
        since = started - timedelta(seconds=MARGIN_SECONDS)
    return {"source": SOURCE, "status": "success", "published": probes, "api_calls": client.api_calls}
