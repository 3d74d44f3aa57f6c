"""Gmail mailboxes as SyncJobs: full (list + batched raw gets) or incremental (history), resumable.

The resume point lives in gmail_sync_state, one row per mailbox: the mode in progress, its page token,
and the historyId to continue from. A full sync notes the mailbox's historyId before listing, so once
it is done the incremental runs start there and miss nothing added during it. Every page's state is
written only after its rows are merged; a run cut at its time budget continues from the page token.
An expired historyId (404) falls back to a full sync and says so in the run's details.

Drafts, spam and trash are no mail here (records.NOT_MAIL_LABELS): never stored; a stored message moved
into spam or trash is flagged is_deleted (by the label history, or the full sync's listing and labels),
and mail again once moved back. The project's daily quota units are counted in each run's etl_runs
details (`quota_units`); a run gets what today's runs (Pacific time, Google's quota day) left.
"""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from pydantic import field_validator

from api_clients.connection_check import Check, check
from cloud_functions.gmail_sync.auth import KEY_SECRET, batch_uri, delegated_credentials, gmail_service
from cloud_functions.gmail_sync.client import GmailClient, HistoryExpired
from cloud_functions.gmail_sync.records import MessageStateChange, is_mail, message_rows, message_state_rows, moved_out_of_mail
from config.settings import SettingMissing
from http_entry.validation import BadRequest, SyncRequest
from observability.logger import get_logger
from pipeline.process_memory import remembered
from pipeline.run_origin import in_push_run
from pipeline.runner import Page, SyncJob, per_record, run_jobs
from pipeline.runtime import Runtime
from transform.email_normalizer import normalize_email
from warehouse import Warehouse
from warehouse.fresh import latest_rows

log = get_logger(__name__)
SOURCE = "gmail"
QUOTA_DAY_ZONE = ZoneInfo("America/Los_Angeles")  # Google's daily quotas reset at midnight Pacific time
KNOWN_STORED = 5_000  # messages a mailbox's memory keeps the sent_at of (about 100 bytes each): weeks of new mail


class GmailSyncRequest(SyncRequest):
    """Body of a gmail_sync call: one mailbox, or every configured one."""

    mailbox_email: str | None = None

    @field_validator("mailbox_email")
    @classmethod
    def _normalised(cls, value: str | None) -> str | None:
        if value is None:
            return None
        email = normalize_email(value)
        if email is None:
            raise ValueError("not an email address")
        return email


class GmailStateStore:
    """gmail_sync_state as the runner's watermark store: the watermark is the row as JSON."""

    def __init__(self, warehouse: Warehouse):
        self._warehouse = warehouse

    def read(self, source: str, stream: str) -> str | None:
        # Read without a query (free on BigQuery), the fresh tier's newer row over it (warehouse/fresh.py).
        rows = latest_rows(self._warehouse, "gmail_sync_state", {"mailbox": stream})
        return json.dumps({c: rows[0].get(c) for c in ("history_id", "page_token", "sync_mode")}) if rows else None

    def write(self, source: str, stream: str, watermark: str, run_id: str) -> None:
        state = json.loads(watermark)
        now = datetime.now(timezone.utc)
        row = {"mailbox": stream, "history_id": state.get("history_id"), "page_token": state.get("page_token"),
               "sync_mode": state.get("sync_mode"), "updated_at": now}
        if state.get("sync_mode") == "incremental" and state.get("full_completed"):
            row["last_full_sync_at"] = now
        self._warehouse.merge("gmail_sync_state", [row], batch_id=f"{run_id}_gmail_state")


def _state(**fields: Any) -> str:
    return json.dumps(fields)


class KnownMessages:
    """What this process knows of a mailbox's messages (pipeline.process_memory), so a push run asks the warehouse
    nothing about a deletion it can tell alone: the ids it saw added as drafts, spam or trash and never saw moved
    (never stored: Gmail deletes a draft's previous message at every save, so most deletions are drafts'), and the
    sent_at of the last KNOWN_STORED messages it stored (their deletion flagged in their partition, even before
    the fresh tier is folded into gmail_messages). What another process stored and this one did not see is flagged
    deleted by the daily full sync at the latest."""

    def __init__(self) -> None:
        self._not_mail: set[str] = set()
        self._stored: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def stored(self, message_id: str, sent_at: datetime) -> None:
        with self._lock:
            self._stored[message_id] = sent_at
            self._stored.move_to_end(message_id)
            while len(self._stored) > KNOWN_STORED:
                self._stored.popitem(last=False)

    def deletions(self, page: dict[str, Any]) -> tuple[list[MessageStateChange], list[str]]:
        """The page's deletions this process can tell (a push run's), and the ids left to look up; the page's
        drafts, spam and trash remembered, its moved and deleted ones forgotten."""
        with self._lock:
            self._not_mail.update(page["not_mail"])
            self._not_mail.difference_update(page["moved"])
            known: list[MessageStateChange] = []
            wanted: list[str] = []
            for message_id in page["deleted"]:
                sent_at = self._stored.pop(message_id, None)
                if not in_push_run():
                    wanted.append(message_id)
                elif sent_at is not None:
                    known.append(MessageStateChange(message_id, sent_at, True))
                elif message_id not in self._not_mail:
                    wanted.append(message_id)
            self._not_mail.difference_update(page["deleted"])
            return known, wanted


class MailboxReader:
    """Pages of one mailbox's messages for run_sync."""

    def __init__(self, client: GmailClient, runtime: Runtime, mailbox: str, sync_type: str):
        self.client, self.runtime, self.mailbox, self.sync_type = client, runtime, mailbox, sync_type
        self.notes: dict[str, Any] = {}
        self.known = remembered(runtime.warehouse, f"gmail_messages {mailbox}", KnownMessages)

    def pages(self, watermark: str | None) -> Iterator[Page]:
        state = json.loads(watermark) if watermark else {}
        if state.get("sync_mode") == "full" and state.get("page_token"):
            self.notes["resumed_full_sync"] = True
            yield from self._full(state["history_id"], state["page_token"])
        elif self.sync_type == "full" or not state.get("history_id"):
            yield from self._full(self.client.history_id(), None)
        else:
            try:
                yield from self._incremental(state["history_id"])
            except HistoryExpired as expired:
                log.warning("history expired, falling back to a full sync", extra={"json_fields": {"error": str(expired)}})
                self.notes["history_expired"] = str(expired)
                yield from self._full(self.client.history_id(), None)

    def _query(self) -> str | None:
        days = self.runtime.settings.gmail_full_sync_days
        if not days:
            return None
        return f"after:{int((datetime.now(timezone.utc) - timedelta(days=days)).timestamp())}"

    def _full(self, history_id: str, page_token: str | None) -> Iterator[Page]:
        """The mailbox listed again: new messages fetched whole; of stored ones only what changed is written
        (labels from format=minimal; deletions once the whole mailbox was listed in this run), so the daily
        reconciliation rewrites no history."""
        self.notes["mode"] = "full"
        stored = self._stored()
        whole_mailbox = page_token is None and self._query() is None
        listed: set[str] = set()
        while True:
            ids, next_token = self.client.list_page(self._query(), page_token)
            listed.update(ids)
            records: list[Any] = self._mail(self.client.get_raw([i for i in ids if i not in stored]))
            self._count("new", len(records))
            records += self._label_changes([i for i in ids if i in stored], stored)
            if next_token:
                yield Page(records, _state(sync_mode="full", page_token=next_token, history_id=history_id))
                page_token = next_token
            else:
                if whole_mailbox:
                    gone = [MessageStateChange(i, state["sent_at"], True) for i, state in stored.items()
                            if i not in listed and not state["is_deleted"]]
                    self._count("deleted", len(gone))
                    records += gone
                yield Page(records, _state(sync_mode="incremental", history_id=history_id, page_token=None,
                                            full_completed=True), final=True)
                return

    def _stored(self, ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """The mailbox's stored messages (all, or these ids): id -> sent_at, label_ids, is_deleted (a few narrow
        columns, no bodies). Only whole rows: a push run may have written the flagged-deleted row of a message never
        stored (spam moved to trash), which is fetched whole if it comes back as mail. The table, not
        gmail_messages_live: a pushed message not folded yet is not stored here (README "Push freshness")."""
        warehouse = self.runtime.warehouse
        only = " AND message_id IN UNNEST(@ids)" if ids is not None else ""
        rows = warehouse.query(
            f"SELECT message_id, sent_at, label_ids, is_deleted FROM `{warehouse.dataset}.gmail_messages` "
            f"WHERE mailbox = @mailbox AND size_bytes IS NOT NULL{only}",
            {"mailbox": self.mailbox, **({"ids": ids} if ids is not None else {})})
        return {r["message_id"]: r for r in rows}

    def _mail(self, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The mail among fetched messages; drafts, spam and trash are counted in the details and left out."""
        mail = [r for r in resources if is_mail(r.get("labelIds"))]
        self._count("not_mail", len(resources) - len(mail))
        return mail

    def _label_changes(self, ids: list[str], stored: dict[str, dict[str, Any]]) -> list[MessageStateChange]:
        """Stored messages whose labels differ now (moved to spam or trash: flagged deleted; back, or came back
        from deletion: not)."""
        changes = []
        for resource in self.client.get_labels(ids) if ids else []:
            state, labels = stored[resource["id"]], tuple(sorted(resource.get("labelIds") or []))
            gone = not is_mail(labels)
            if labels != tuple(sorted(state["label_ids"] or [])) or state["is_deleted"] != gone:
                changes.append(MessageStateChange(resource["id"], state["sent_at"], gone, labels))
        self._count("label_changes", len(changes))
        return changes

    def _count(self, name: str, count: int) -> None:
        self.notes[name] = self.notes.get(name, 0) + count

    def _incremental(self, start: str) -> Iterator[Page]:
        self.notes["mode"] = "incremental"
        page_token = None
        while True:
            page = self.client.history_page(start, page_token)
            messages = self._moved_fetched(page) if in_push_run() else self._moved_looked_up(page)
            known, wanted = self.known.deletions(page)
            # Permanently deleted mail this process did not store stays a look-up, in push runs too: rare (a few a
            # mailbox a day), and only the stored row's sent_at finds its partition.
            messages += known + (self._deleted(wanted) if wanted else [])
            self._count("deleted", len(known))
            page_token = page["next"]
            if page_token:
                yield Page(messages, None)
            else:
                yield Page(messages, _state(sync_mode="incremental", history_id=page["history_id"], page_token=None),
                           final=True)
                return

    def _moved_looked_up(self, page: dict[str, Any]) -> list[Any]:
        """A history page's added mail, and its moved messages by their stored state (one query): a stored one's
        labels fetched (format=minimal) and written if changed; one never stored fetched whole if it is mail now."""
        stored = self._stored(page["moved"]) if page["moved"] else {}
        # Moved out of spam or trash and never stored: mail now, fetched whole like an added message.
        fetch = page["added"] + [i for i in page["moved"] if i not in stored]
        messages: list[Any] = self._mail(self.client.get_raw(fetch))
        return messages + self._label_changes(list(stored), stored)

    def _moved_fetched(self, page: dict[str, Any]) -> list[Any]:
        """A push run's look at a history page, with no warehouse query (a billed one on every push): its moved
        messages fetched whole with the added ones (messages.get costs 5 units whatever the format). A moved one
        that is mail now is its full row; one in spam or trash now is kept as a resource that mailbox_job's to_rows
        turns into a row flagged deleted, in its full row's partition."""
        moved = set(page["moved"])
        resources = self.client.get_raw(page["added"] + page["moved"])
        self._count("label_changes", sum(r["id"] in moved for r in resources))
        return self._mail([r for r in resources if r["id"] not in moved]) + [r for r in resources if r["id"] in moved]

    def _deleted(self, message_ids: list[str]) -> list[MessageStateChange]:
        """Deletions of stored messages, as rows the runner merges into their own partitions."""
        warehouse = self.runtime.warehouse
        rows = warehouse.query(
            f"SELECT message_id, sent_at FROM `{warehouse.dataset}.gmail_messages` "
            f"WHERE mailbox = @mailbox AND message_id IN UNNEST(@ids)", {"mailbox": self.mailbox, "ids": message_ids})
        self._count("deleted", len(rows))
        return [MessageStateChange(r["message_id"], r["sent_at"], True) for r in rows]

    def details(self) -> dict[str, Any]:
        return {**self.notes, "quota_units": self.client.quota_units}


def mailboxes_for(request: GmailSyncRequest, configured: list[str]) -> list[str]:
    """The mailboxes this request syncs; a mailbox outside the configured list is refused."""
    if request.mailbox_email is None:
        if not configured:
            raise SettingMissing("no mailboxes configured: set MAILBOXES (environment, .env, or Terraform's "
                                 "mailboxes variable)")
        return list(configured)
    if request.mailbox_email not in configured:
        raise BadRequest(f"mailbox {request.mailbox_email} is not one of the configured mailboxes")
    return [request.mailbox_email]


def mailbox_job(mailbox: str, client: GmailClient, runtime: Runtime, sync_type: str) -> SyncJob:
    reader = MailboxReader(client, runtime, mailbox, sync_type)
    cap = runtime.settings.gmail_body_max_chars
    def to_rows(record: Any) -> dict[str, list[dict[str, Any]]]:
        if isinstance(record, MessageStateChange):
            return message_state_rows(record, mailbox)
        if not is_mail(record.get("labelIds")):  # a push run's moved message, in spam or trash now
            return message_state_rows(moved_out_of_mail(record), mailbox)
        rows = message_rows(record, mailbox, cap)
        reader.known.stored(record["id"], rows["gmail_messages"][0]["sent_at"])
        return rows

    def record_key(record: Any) -> str | None:
        return record.message_id if isinstance(record, MessageStateChange) else record.get("id")

    return SyncJob(source=SOURCE, stream=mailbox, sync_type=sync_type, fetch_pages=reader.pages,
                   transform_page=per_record(to_rows), record_key=record_key, api_calls=lambda: client.api_calls,
                   details=reader.details, watermarks=GmailStateStore(runtime.warehouse))


def quota_units_spent_today(warehouse: Warehouse, now: datetime | None = None) -> int:
    """Gmail quota units the runs of the current quota day (from midnight Pacific time) have recorded."""
    day = (now or datetime.now(timezone.utc)).astimezone(QUOTA_DAY_ZONE)
    start = day.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)
    rows = warehouse.query(
        f"SELECT SUM(CAST(JSON_VALUE(details, '$.quota_units') AS INT64)) AS units FROM `{warehouse.dataset}.etl_runs` "
        f"WHERE source = @source AND started_at >= @start", {"source": SOURCE, "start": start})
    return int(rows[0]["units"] or 0) if rows else 0


def client_for(mailbox: str, runtime: Runtime) -> GmailClient:
    settings = runtime.settings
    credentials = delegated_credentials(runtime.secrets.get(KEY_SECRET), mailbox)
    budget = settings.gmail_daily_quota_units
    # A push run spends tens of units (a history page, a few gets) of the 80,000,000 a day: reading what today's
    # runs spent (a billed query of etl_runs) would cost more than the cap saves. Scheduled runs keep the cap.
    left = max(0, budget - quota_units_spent_today(runtime.warehouse)) if budget and not in_push_run() else None
    return GmailClient(gmail_service(credentials, settings.gmail_api_endpoint), batch_uri(settings.gmail_api_endpoint),
                       settings, left)


def requested_streams(request: GmailSyncRequest, runtime: Runtime) -> list[str]:
    """The streams a request names (pipeline.worker enqueues one work message each): its mailboxes."""
    return mailboxes_for(request, runtime.settings.mailboxes)


def stream_job(mailbox: str, sync_type: str, runtime: Runtime, _deadline: float) -> SyncJob:
    """One mailbox's SyncJob (a work message's stream); BadRequest when it is not a configured mailbox."""
    mailboxes_for(GmailSyncRequest(mailbox_email=mailbox), runtime.settings.mailboxes)
    return mailbox_job(mailbox, client_for(mailbox, runtime), runtime, sync_type)


def run_gmail_sync(request: GmailSyncRequest, runtime: Runtime) -> dict[str, Any]:
    """Syncs each requested mailbox in turn within one time budget (pipeline.runner.run_jobs: each mailbox its
    share, so the invocation ends before the function's timeout however many mailboxes); answers every run."""
    jobs = [partial(stream_job, mailbox, request.sync_type, runtime) for mailbox in requested_streams(request, runtime)]
    return run_jobs(SOURCE, jobs, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=runtime.settings,
                    trigger=request.trigger)


def check_gmail(runtime: Runtime) -> list[Check]:
    """The connection check: each configured mailbox's profile read through domain-wide delegation (one request
    each, nothing written)."""
    def profile(mailbox: str) -> str:
        return f"delegation works; history id {client_for(mailbox, runtime).history_id()}"

    if not runtime.settings.mailboxes:
        return [Check(SOURCE, "mailboxes", False, "no mailbox is configured",
                      "set MAILBOXES to the mailboxes to read, comma-separated")]
    return [check(SOURCE, f"profile of {mailbox}", partial(profile, mailbox)) for mailbox in runtime.settings.mailboxes]
