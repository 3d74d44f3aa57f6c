"""users.watch for every configured mailbox, renewed daily: Gmail publishes each mailbox's changes to
GMAIL_PUSH_TOPIC, whose subscription triggers gmail_push.

A watch lapses 7 days after its last users.watch call; the scheduled job (gmail-watch-renewal, daily) calls it
again for every mailbox, which renews it. The expiry Gmail answers is kept with the mailbox's state
(gmail_sync_state.watch_expires_at, watch_renewed_at). A renewal that fails is recorded like a run that failed
before it started (a failed etl_runs row for the mailbox, the error published, the alert policy's log line), so
it is alerted on days before the watch lapses; and a lapsed watch loses nothing: the scheduled incremental runs
read the history from the stored cursor whatever was notified.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from cloud_functions.gmail_sync.sync import client_for
from pipeline.etl_runs import record_failed_invocation
from pipeline.runtime import Runtime
from pipeline.work_queue import topic_path
from transform.values import epoch_ms, to_datetime

SOURCE = "gmail"


def push_topic(runtime: Runtime) -> str:
    """The fully qualified topic users.watch names."""
    return topic_path(runtime.settings, runtime.settings.gmail_push_topic)


def renew_watch(mailbox: str, runtime: Runtime) -> datetime:
    """Registers (or renews) the mailbox's watch and keeps its expiry in gmail_sync_state; returns the expiry."""
    answer = client_for(mailbox, runtime).watch(push_topic(runtime))
    expires = to_datetime(answer.get("expiration"))  # epoch milliseconds, as text
    if expires is None:
        raise ValueError(f"users.watch of {mailbox} answered no expiration")
    now = datetime.now(timezone.utc)
    # No updated_at: it is the row's version, and a newer one would hide the push runs' history ids that wait in
    # the fresh tier (warehouse/fresh.py latest_rows); without it only the watch's columns are written.
    runtime.warehouse.merge("gmail_sync_state", [{"mailbox": mailbox, "watch_expires_at": expires,
                                                  "watch_renewed_at": now}],
                            batch_id=f"gmail_watch_{mailbox}_{epoch_ms(now)}")
    return expires


def renew_watches(runtime: Runtime, trigger: str | None = None) -> dict[str, Any]:
    """Renews every configured mailbox's watch; a mailbox that fails is recorded and published, the others go on.
    Answers each mailbox's expiry or failed run id, and `status` failed when any failed."""
    mailboxes: dict[str, dict[str, Any]] = {}
    for mailbox in runtime.settings.mailboxes:
        try:
            mailboxes[mailbox] = {"watch_expires_at": renew_watch(mailbox, runtime).isoformat()}
        except Exception as error:  # recorded: a failed row, the error published, the alert's log line
            run_id = record_failed_invocation(runtime.warehouse, runtime.publisher, source=SOURCE, error=error,
                                              stream=mailbox, sync_type="watch", trigger=trigger)
            mailboxes[mailbox] = {"failed_run_id": run_id, "error_type": type(error).__name__}
    failed = any("failed_run_id" in m for m in mailboxes.values())
    return {"source": SOURCE, "status": "failed" if failed else "success", "mailboxes": mailboxes}


def stop_watches(runtime: Runtime) -> None:
    """users.stop for every configured mailbox (push turned off)."""
    for mailbox in runtime.settings.mailboxes:
        client_for(mailbox, runtime).stop()
