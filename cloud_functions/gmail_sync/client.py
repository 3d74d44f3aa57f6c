"""One mailbox through google-api-python-client: list and history pages, messages fetched in batches.

Every call passes the mailbox's quota limiter (list 5, get 5, history 2 units; the per-minute quota spent
evenly, a twelfth in any 5 s), the project's daily unit budget (past it: StopSync, the run ends partial),
and the retry policy (429, 5xx, 403 rateLimitExceeded / userRateLimitExceeded). A batch holds up to
settings.gmail_batch_size gets (at most 100, and half what the quota allows in 5 s); its inner calls
that fail transiently are fetched again in the next batch; a message deleted meanwhile (404) is skipped.
"""
from __future__ import annotations

import time
from typing import Any

from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from api_clients.metered import MeteredCalls
from api_clients.rate_limit import RateLimiter, Unlimited
from api_clients.retry import is_transient
from cloud_functions.gmail_sync.records import NOT_MAIL_LABELS
from config.settings import Settings
from observability.logger import get_logger
from pipeline.runner import StopSync

log = get_logger(__name__)
UNITS = {"list": 5, "get": 5, "history": 2, "profile": 1, "watch": 100, "stop": 50}


class HistoryExpired(Exception):
    """The stored startHistoryId is too old (HTTP 404): a full sync must take over."""


class DailyUnits:
    """The project's daily quota units as a limiter: counts what this client spends (every attempt, as Google
    counts) and stops the run (StopSync, for every mailbox) before a call would go past what is left today."""

    def __init__(self, left: int | None):
        self.left, self.spent = left, 0

    def acquire(self, units: float = 1.0) -> None:
        if self.left is not None and self.spent + units > self.left:
            raise StopSync(f"Gmail daily quota budget reached: {self.spent} units spent by this run, "
                           f"{self.left} were left today (GMAIL_DAILY_QUOTA_UNITS); the next run resumes",
                           ends_invocation=True)
        self.spent += int(units)


QUOTA_SLICE_SECONDS = 5  # two batches of 50 a slice; 1 s (a sixtieth each second) lost 13 % of the quota to the guard


class GmailClient:
    def __init__(self, service: Any, batch_uri: str, settings: Settings, units_left_today: int | None = None):
        self._service = service
        self._batch_uri = batch_uri
        # Gmail counts per minute: spent in slices of QUOTA_SLICE_SECONDS (a twelfth of the minute's units in any
        # 5 s), so a backfill never bursts into 429s.
        per_slice = settings.gmail_quota_units_per_minute * QUOTA_SLICE_SECONDS // 60
        self.daily = DailyUnits(units_left_today)
        self._calls = MeteredCalls(settings.retry_max_seconds,
                                   RateLimiter(per_slice, QUOTA_SLICE_SECONDS) if per_slice else Unlimited(), self.daily)
        # Two batches and a page's list call a slice (49 gets each of 6,000 a minute): a slice's units used whole; two
        # batches of 50 and the list call would not fit, and a page would leave half of one slice unused.
        size = ((per_slice - UNITS["list"]) // UNITS["get"] // 2 if per_slice else settings.gmail_batch_size)
        size = min(settings.gmail_batch_size, size)
        self._batch_size = max(1, size)
        self._page_size = settings.gmail_list_page_size

    @property
    def api_calls(self) -> int:
        """Requests made (every attempt counts)."""
        return self._calls.count

    @property
    def quota_units(self) -> int:
        """Quota units this client has spent (every attempt counts)."""
        return self.daily.spent

    def _execute(self, request: Any, units: int) -> Any:
        return self._calls(request.execute, units=units)

    def _users(self) -> Any:
        return self._service.users()

    def history_id(self) -> str:
        """The mailbox's current historyId."""
        return str(self._execute(self._users().getProfile(userId="me"), UNITS["profile"])["historyId"])

    def watch(self, topic: str) -> dict[str, Any]:
        """users.watch: Gmail publishes the mailbox's changes (every label) to topic; answers historyId and
        expiration (epoch ms, about 7 days on). Calling it again renews the watch."""
        return self._execute(self._users().watch(userId="me", body={"topicName": topic}), UNITS["watch"])

    def stop(self) -> None:
        """users.stop: no more notifications for the mailbox."""
        self._execute(self._users().stop(userId="me"), UNITS["stop"])

    def list_page(self, query: str | None, page_token: str | None) -> tuple[list[str], str | None]:
        """One page of message ids (newest first) and the next page token."""
        request = self._users().messages().list(userId="me", q=query or None, maxResults=self._page_size,
                                                pageToken=page_token or None)
        body = self._execute(request, UNITS["list"])
        return [m["id"] for m in body.get("messages") or []], body.get("nextPageToken")

    def history_page(self, start_history_id: str, page_token: str | None) -> dict[str, Any]:
        """One page of history since start: ids added (but those history shows as drafts, spam or trash, which are
        `not_mail`), deleted, and moved into or out of drafts, spam or trash; the next token, the current historyId."""
        request = self._users().history().list(
            userId="me", startHistoryId=start_history_id, maxResults=self._page_size, pageToken=page_token or None,
            historyTypes=["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"])
        try:
            body = self._execute(request, UNITS["history"])
        except HttpError as error:
            if error.resp.status == 404:
                raise HistoryExpired(f"startHistoryId {start_history_id} has expired") from None
            raise
        added: dict[str, None] = {}
        not_mail: set[str] = set()
        deleted: set[str] = set()
        moved: dict[str, None] = {}
        for entry in body.get("history") or []:
            for item in entry.get("messagesAdded") or []:
                # The labels history gives (when it gives them) spare fetching a draft or spam whole.
                if not NOT_MAIL_LABELS & set(item["message"].get("labelIds") or ()):
                    added.setdefault(item["message"]["id"])
                else:
                    not_mail.add(item["message"]["id"])
            for item in entry.get("messagesDeleted") or []:
                deleted.add(item["message"]["id"])
            for item in (entry.get("labelsAdded") or []) + (entry.get("labelsRemoved") or []):
                if NOT_MAIL_LABELS & set(item.get("labelIds") or ()):
                    moved.setdefault(item["message"]["id"])
        return {"added": [i for i in added if i not in deleted], "deleted": sorted(deleted),
                "moved": [i for i in moved if i not in deleted and i not in added], "not_mail": sorted(not_mail),
                "next": body.get("nextPageToken"), "history_id": str(body.get("historyId") or start_history_id)}

    def get_raw(self, message_ids: list[str]) -> list[dict[str, Any]]:
        """The `format=raw` resources of these messages, fetched in batches; deleted ones are left out."""
        return self.get_messages(message_ids, "raw")

    def get_labels(self, message_ids: list[str]) -> list[dict[str, Any]]:
        """The `format=minimal` resources (id, labelIds, ...) of these messages; deleted ones are left out."""
        return self.get_messages(message_ids, "minimal")

    def get_messages(self, message_ids: list[str], form: str) -> list[dict[str, Any]]:
        """messages.get in batches, in the given format; transient failures fetched again."""
        found: dict[str, dict[str, Any]] = {}
        pending = list(dict.fromkeys(message_ids))
        waits = iter((0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30))
        while pending:
            retry: list[str] = []
            for start in range(0, len(pending), self._batch_size):
                chunk = pending[start:start + self._batch_size]
                retry += self._batch(chunk, found, form)
            if retry:
                wait = next(waits, None)
                if wait is None:
                    raise RuntimeError(f"{len(retry)} Gmail messages still failing after retries")
                log.warning("batch parts failed transiently, fetching them again",
                            extra={"json_fields": {"count": len(retry), "wait_seconds": wait}})
                time.sleep(wait)
            pending = retry
        return [found[i] for i in message_ids if i in found]

    def _batch(self, chunk: list[str], found: dict[str, dict[str, Any]], form: str) -> list[str]:
        failed: list[str] = []

        def collect(request_id: str, response: Any, exception: Exception | None) -> None:
            if exception is None:
                found[request_id] = response
            elif isinstance(exception, HttpError) and exception.resp.status == 404:
                return  # deleted since it was listed
            elif is_transient(exception):
                failed.append(request_id)
            else:
                raise exception

        batch = BatchHttpRequest(callback=collect, batch_uri=self._batch_uri)
        for message_id in chunk:
            batch.add(self._users().messages().get(userId="me", id=message_id, format=form), request_id=message_id)
        self._execute(batch, UNITS["get"] * len(chunk))
        return failed
