"""Gmail push end to end: users.watch on the sandbox, its notifications on the Pub/Sub emulator, gmail_push under
functions-framework turning them into work, a burst coalesced into one run, and dropped notifications caught up."""
from __future__ import annotations

import base64
import json
import uuid

import pytest
import requests

import push.receivers
from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync
from pipeline.work_queue import WorkMessage
from push.gmail_watch import renew_watches
from push.receivers import Receiver
from push.work import run_message
from sandbox.gmail import GmailSandbox
from sandbox.server import Faults
from tests.helpers import point_at

pytestmark = pytest.mark.emulator
DS = "sales_intelligence"


@pytest.fixture
def watched(work_topics, runtime, monkeypatch):
    """A one-mailbox Gmail sandbox publishing to the emulator, fully synced, its watch registered; (sandbox, topics)."""
    settings, topics = work_topics
    faults = Faults()
    with GmailSandbox(messages_per_mailbox=12, faults=faults) as sandbox:
        sandbox.faults = faults
        mailbox = next(iter(sandbox.state.mailboxes))
        point_at(runtime, sandbox, monkeypatch, mailboxes=[mailbox], work_topic_prefix=settings.work_topic_prefix,
                 gmail_push_topic=settings.gmail_push_topic)
        monkeypatch.setattr(push.receivers, "_receiver", Receiver.from_settings(runtime.settings))
        publisher = sandbox.publish_to_emulator()
        assert run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["status"] == "success"
        yield sandbox, topics
        publisher.stop()


def deliver(server, data: bytes) -> requests.Response:
    """POSTs a Pub/Sub message to a CloudEvent function as Eventarc does (binary content mode)."""
    headers = {"ce-id": uuid.uuid4().hex, "ce-specversion": "1.0", "ce-source": "//pubsub.googleapis.com/t",
               "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "Content-Type": "application/json"}
    body = {"message": {"data": base64.b64encode(data).decode(), "messageId": uuid.uuid4().hex},
            "subscription": "projects/p/subscriptions/s"}
    return requests.post(server.url, data=json.dumps(body), headers=headers, timeout=30)


def stored(runtime) -> set[str]:
    return {r["message_id"] for r in runtime.warehouse.query(f"SELECT message_id FROM {DS}.gmail_messages")}


def runs(runtime, reason_sql: str = "TRUE") -> list[dict]:
    return runtime.warehouse.query(f"SELECT status, sync_type FROM {DS}.etl_runs WHERE source = 'gmail' "
                                   f"AND {reason_sql} ORDER BY started_at")


class TestWatch:
    def test_watch_registered_with_expiry_kept(self, watched, runtime):
        """gmail_watch registers users.watch on the push topic and keeps its expiry (7 days on) with the mailbox."""
        sandbox, _topics = watched
        mailbox = next(iter(sandbox.state.mailboxes))
        answer = renew_watches(runtime)
        assert answer["status"] == "success"
        assert sandbox.state.mailboxes[mailbox].watch[0] == \
            f"projects/{runtime.settings.gcp_project}/topics/{runtime.settings.gmail_push_topic}"
        (row,) = runtime.warehouse.query(f"SELECT watch_expires_at, watch_renewed_at, history_id "
                                         f"FROM {DS}.gmail_sync_state WHERE mailbox = @m", {"m": mailbox})
        days = (row["watch_expires_at"] - row["watch_renewed_at"]).total_seconds() / 86400
        assert 6.9 < days <= 7.0 and row["history_id"]  # the sync's cursor is kept beside it

    def test_failed_renewal_is_recorded_and_published(self, watched, runtime):
        """A renewal Gmail refuses is a failed etl_runs row for the mailbox and a published error."""
        sandbox, _topics = watched
        sandbox.faults.fail_next(3, status=400, path_pattern=r".*/watch")
        answer = renew_watches(runtime)
        mailbox = next(iter(sandbox.state.mailboxes))
        assert answer["status"] == "failed" and "failed_run_id" in answer["mailboxes"][mailbox]
        (row,) = runtime.warehouse.query(f"SELECT status, stream FROM {DS}.etl_runs WHERE sync_type = 'watch'")
        assert (row["status"], row["stream"]) == ("failed", mailbox)
        published = [json.loads(line) for line in runtime.settings.errors_file.read_text().splitlines()]
        assert [p["source"] for p in published] == ["gmail"]


class TestNotifications:
    def test_burst_of_notifications_is_one_run(self, watched, runtime, function_server):
        """Three messages arriving: three notifications through gmail_push become three work messages; the first
        run brings all three messages, the other two messages are superseded and run nothing."""
        sandbox, topics = watched
        renew_watches(runtime)
        mailbox = next(iter(sandbox.state.mailboxes))
        before = stored(runtime)
        new = [sandbox.state.add_message(mailbox).id for _ in range(3)]
        notifications = topics.pull("gmail-push", 3, decode=lambda data: data)
        assert [json.loads(n)["emailAddress"] for n in notifications] == [mailbox] * 3
        server = function_server("gmail_push")
        assert all(deliver(server, data).status_code == 200 for data in notifications)
        work = topics.pull("gmail", 3)
        assert [(m.stream, m.reason) for m in work] == [(mailbox, "push")] * 3
        incremental_before = len(runs(runtime))
        results = [run_message(message, runtime) for message in work]
        assert results[0] is not None and results[0]["status"] == "success"
        assert results[1:] == [None, None]
        assert stored(runtime) == before | set(new)
        assert len(runs(runtime)) == incremental_before + 1

    def test_notification_for_unknown_mailbox_or_garbage_publishes_nothing(self, watched, runtime, function_server):
        """A notification naming a mailbox not configured, or data that is not one, is acknowledged (2xx) and
        publishes no work; the next real one does."""
        sandbox, topics = watched
        server = function_server("gmail_push")
        mailbox = next(iter(sandbox.state.mailboxes))
        assert deliver(server, json.dumps({"emailAddress": "x@elsewhere.com", "historyId": 5}).encode()).ok
        assert deliver(server, b"not json").ok
        assert deliver(server, json.dumps({"emailAddress": mailbox, "historyId": 9}).encode()).ok
        assert [m.hint for m in topics.pull("gmail", 1)] == [{"history_id": "9"}]


class TestDroppedNotifications:
    def test_next_scheduled_run_catches_up(self, watched, runtime):
        """Notifications dropped, then the watch lapsed: no work is published for the new mail, and the next
        scheduled incremental run brings every message from the stored cursor; the next push after a renewal
        brings only what came since."""
        sandbox, topics = watched
        renew_watches(runtime)
        mailbox = next(iter(sandbox.state.mailboxes))
        sent_before = sandbox.state.notifications_sent
        sandbox.state.drop_notifications = True
        dropped = sandbox.state.add_message(mailbox).id
        sandbox.state.drop_notifications = False
        sandbox.state.lapse_watch(mailbox)
        lapsed = sandbox.state.add_message(mailbox).id
        assert sandbox.state.notifications_sent == sent_before  # nothing was published for either
        assert {dropped, lapsed}.isdisjoint(stored(runtime))
        scheduled = run_gmail_sync(GmailSyncRequest(sync_type="incremental", trigger="scheduler"), runtime)
        assert scheduled["status"] == "success"
        assert {dropped, lapsed} <= stored(runtime)
        renew_watches(runtime)
        later = sandbox.state.add_message(mailbox).id
        (notification,) = topics.pull("gmail-push", 1, decode=lambda data: data)
        message = WorkMessage("gmail", mailbox, reason="push",
                              hint={"history_id": str(json.loads(notification)["historyId"])})
        pushed = run_message(message, runtime)
        assert pushed is not None and pushed["rows_loaded"] > 0
        assert later in stored(runtime)
