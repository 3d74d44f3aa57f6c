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
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from pydantic import field_validator

from api_clients.connection_check import Check, check
from cloud_functions.gmail_sync.auth import KEY_SECRET, batch_uri, delegated_credentials, gmail_service
from cloud_functions.gmail_sync.client import GmailClient, HistoryExpired
from cloud_functions.gmail_sync.records import MessageStateChange, is_mail, message_rows, message_state_rows
from config.settings import SettingMissing
from http_entry.validation import BadRequest, SyncRequest
from observability.logger import get_logger
from pipeline.runner import Page, SyncJob, per_record, run_jobs
from pipeline.runtime import Runtime
from transform.email_normalizer import normalize_email
from warehouse import Warehouse
from warehouse.fresh import latest_rows

log = get_logger(__name__)
SOURCE = "gmail"
QUOTA_DAY_ZONE = ZoneInfo("America/Los_Angeles")  # Google's daily quotas reset at midnight Pacific time


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


class MailboxReader:
    """Pages of one mailbox's messages for run_sync."""

    def __init__(self, client: GmailClient, runtime: Runtime, mailbox: str, sync_type: str):
        self.client, self.runtime, self.mailbox, self.sync_type = client, runtime, mailbox, sync_type
        self.notes: dict[str, Any] = {}

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
        columns, no bodies)."""
        warehouse = self.runtime.warehouse
        only = " AND message_id IN UNNEST(@ids)" if ids is not None else ""
        rows = warehouse.query(
            f"SELECT message_id, sent_at, label_ids, is_deleted FROM `{warehouse.dataset}.gmail_messages` "
            f"WHERE mailbox = @mailbox{only}", {"mailbox": self.mailbox, **({"ids": ids} if ids is not None else {})})
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
            stored = self._stored(page["moved"]) if page["moved"] else {}
            # Moved out of spam or trash and never stored: mail now, fetched whole like an added message.
            fetch = page["added"] + [i for i in page["moved"] if i not in stored]
            messages: list[Any] = self._mail(self.client.get_raw(fetch))
            messages += self._label_changes(list(stored), stored)
            messages += self._deleted(page["deleted"]) if page["deleted"] else []
            page_token = page["next"]
            if page_token:
                yield Page(messages, None)
            else:
                yield Page(messages, _state(sync_mode="incremental", history_id=page["history_id"], page_token=None),
                           final=True)
                return

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
        return message_rows(record, mailbox, cap)

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
    left = max(0, budget - quota_units_spent_today(runtime.warehouse)) if budget else None
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
