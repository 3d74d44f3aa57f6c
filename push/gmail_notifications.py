"""Gmail's push notifications: the Pub/Sub message users.watch makes Gmail publish, into the mailbox's work.

Gmail publishes `{"emailAddress": ..., "historyId": ...}` (base64 in the Pub/Sub message's data) when a watched
mailbox changes, at most about one a second per mailbox, and may drop some. A notification becomes an incremental
work message for that mailbox (the history cursor and its 404 fallback as in every incremental run); a burst
coalesces in the worker (push/coalesce.py). A dropped notification is caught up by the next scheduled run, which
reads the history from the stored cursor whatever was notified.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from config.settings import Settings
from observability.logger import get_logger
from pipeline.work_queue import WorkMessage, WorkQueue
from transform.email_normalizer import normalize_email

log = get_logger(__name__)


class NotANotification(ValueError):
    """A message on the Gmail push topic that is not Gmail's notification: acknowledged, logged, never retried."""


def notification_message(event_data: dict[str, Any], mailboxes: list[str]) -> WorkMessage | None:
    """The work message of a Pub/Sub push event's data (`{"message": {"data": base64, ...}, ...}`); None for a
    mailbox that is not configured (a watch left from an older configuration)."""
    try:
        body = json.loads(base64.b64decode(event_data["message"]["data"], validate=True))
        mailbox, history_id = body["emailAddress"], body["historyId"]
    except (KeyError, TypeError, ValueError):
        raise NotANotification("not a Gmail notification: {emailAddress, historyId} expected") from None
    address = normalize_email(mailbox) if isinstance(mailbox, str) else None
    if address is None or not isinstance(history_id, (int, str)) or not str(history_id).isdigit():
        raise NotANotification("a Gmail notification with a malformed emailAddress or historyId")
    if address not in mailboxes:
        return None
    return WorkMessage("gmail", address, reason="push", hint={"history_id": str(history_id)})


def notification_data(mailbox: str, history_id: int | str) -> bytes:
    """The data Gmail publishes for a mailbox change (what the sandbox publishes)."""
    return json.dumps({"emailAddress": mailbox, "historyId": int(history_id)}).encode()


def publish_notification(event_data: dict[str, Any], settings: Settings, queue: WorkQueue) -> str | None:
    """Publishes the mailbox's work for a notification; returns the work message id (None when nothing was
    published: a mailbox not configured, or a message that is not a notification, both logged and acknowledged)."""
    try:
        message = notification_message(event_data, settings.mailboxes)
    except NotANotification as refusal:
        log.warning("gmail notification ignored", extra={"json_fields": {"reason": str(refusal)}})
        return None
    if message is None:
        log.warning("gmail notification for a mailbox not in MAILBOXES ignored")
        return None
    return queue.publish([message])[0]
