"""Queue mode for real: work messages on the Pub/Sub emulator, workers landing rows, the merger writing them."""
from __future__ import annotations

import json

import pytest

from sandbox.gmail import NOT_MAIL, GmailSandbox
from scripts.fan_out import LocalFanOut
from tests.helpers import point_at

DS = "sales_intelligence"
MAILBOXES = ["alex@ourcompany.example", "sam@ourcompany.example", "kim@ourcompany.example"]


@pytest.fixture
def queue_runtime(runtime, pubsub_emulator, monkeypatch):
    """The test's runtime in queue mode on the emulator, with topics of its own."""
    import uuid

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    tag = uuid.uuid4().hex[:6]
    runtime.settings = runtime.settings.model_copy(update={
        "dispatch": "queue", "work_topic_prefix": f"work-{tag}-", "landing_topic": f"landed-{tag}",
        "work_dead_letter_topic": f"dead-{tag}", "merge_interval_seconds": 0.5})
    return runtime


def stored(warehouse):
    rows = warehouse.query(f"SELECT mailbox, message_id FROM {DS}.gmail_messages")
    ids = [(r["mailbox"], r["message_id"]) for r in rows]
    assert len(ids) == len(set(ids)), "a message stored twice"
    return set(ids)


def mail_of(sandbox):
    return {(address, m.id) for address, box in sandbox.state.mailboxes.items() for m in box.messages.values()
            if not set(m.labels) & set(NOT_MAIL)}


def runs(warehouse):
    return warehouse.query(f"SELECT stream, status, trigger, rows_fetched, watermark_after FROM {DS}.etl_runs "
                           f"ORDER BY started_at")


class TestFanOut:
    def test_every_mailbox_synced_by_workers_and_written_by_the_merger_alone(self, queue_runtime, monkeypatch):
        """One message per mailbox, two workers: every message stored once; the workers ran no statement that
        changes a table (their warehouse refuses one); one successful run per mailbox."""
        with GmailSandbox(MAILBOXES, messages_per_mailbox=25) as sandbox:
            point_at(queue_runtime, sandbox, monkeypatch, gmail_list_page_size=10)
            with LocalFanOut(queue_runtime, ["gmail"], workers=2) as fan:
                assert fan.enqueue("gmail", "full") == MAILBOXES
                assert fan.wait_until_done(timeout=120)
                fan.drain()
            assert stored(queue_runtime.warehouse) == mail_of(sandbox)
            finished = [r for r in runs(queue_runtime.warehouse) if r["status"] != "running"]
            assert sorted(r["stream"] for r in finished) == sorted(MAILBOXES)
            assert {r["status"] for r in finished} == {"success"} and {r["trigger"] for r in finished} == {"queue-manual"}
            assert fan.stats.done == 3 and fan.stats.retried == 0
            assert sum(c.merges for c in fan.stats.cycles) >= 1

    def test_a_run_cut_by_its_budget_continues_itself_back_to_back(self, queue_runtime, monkeypatch):
        """A tiny time budget: each run stops after a page and publishes its continuation; the chain ends in
        success with every message read once."""
        with GmailSandbox(MAILBOXES[:1], messages_per_mailbox=40) as sandbox:
            point_at(queue_runtime, sandbox, monkeypatch, gmail_list_page_size=10, run_time_budget_seconds=0.0001)
            with LocalFanOut(queue_runtime, ["gmail"], workers=2) as fan:
                fan.enqueue("gmail", "full")
                assert fan.wait_until_done(timeout=120)
                fan.drain()
            assert stored(queue_runtime.warehouse) == mail_of(sandbox)
            statuses = [r["status"] for r in runs(queue_runtime.warehouse)]
            assert statuses.count("partial") >= 3 and statuses[-1] == "success"
            assert fan.stats.continued == statuses.count("partial")
            fetched = sum(r["rows_fetched"] for r in runs(queue_runtime.warehouse))
            assert fetched == len(mail_of(sandbox)) + sum(1 for _ in [])  # nothing read twice

    def test_duplicate_and_reordered_deliveries_add_nothing(self, queue_runtime, monkeypatch):
        """The same work published three times, and a stale continuation after the stream finished: no message
        stored twice, and the final watermark is the newest."""
        from pipeline.work_queue import WorkMessage, WorkQueue

        with GmailSandbox(MAILBOXES[:2], messages_per_mailbox=20) as sandbox:
            point_at(queue_runtime, sandbox, monkeypatch, gmail_list_page_size=10)
            with LocalFanOut(queue_runtime, ["gmail"], workers=2) as fan:
                for _ in range(3):
                    fan.enqueue("gmail", "full")
                assert fan.wait_until_done(timeout=120)
                stale = json.dumps({"sync_mode": "full", "page_token": "10", "history_id": "1"})
                WorkQueue(queue_runtime.settings).publish([WorkMessage("gmail", MAILBOXES[0], "incremental",
                                                                       "continuation", stale, chain=1)])
                fan.stats.open_streams.add(f"gmail/{MAILBOXES[0]}")
                assert fan.wait_until_done(timeout=120)
                fan.drain()
            assert stored(queue_runtime.warehouse) == mail_of(sandbox)
            (state,) = queue_runtime.warehouse.query(
                f"SELECT sync_mode, page_token FROM {DS}.gmail_sync_state WHERE mailbox = @m", {"m": MAILBOXES[0]})
            assert state == {"sync_mode": "incremental", "page_token": None}

    def test_a_poison_stream_is_dead_lettered_and_recorded_while_the_rest_finish(self, queue_runtime, monkeypatch,
                                                                                 capsys):
        """A mailbox whose every run fails (delegation refused) is given up after WORK_MAX_ATTEMPTS and recorded
        in work_dead_letters; a message naming no configured mailbox goes there at once; the others complete;
        the report lists both dead letters."""
        from pipeline.work_queue import WorkMessage, WorkQueue
        from scripts.run_local import report
        from scripts.run_report import report_data, to_html

        broken = "gone@ourcompany.example"
        with GmailSandbox(MAILBOXES[:2], messages_per_mailbox=15) as sandbox:
            point_at(queue_runtime, sandbox, monkeypatch)
            queue_runtime.settings = queue_runtime.settings.model_copy(
                update={"mailboxes": [*MAILBOXES[:2], broken]})
            with LocalFanOut(queue_runtime, ["gmail"], workers=2) as fan:
                fan.enqueue("gmail", "full")
                WorkQueue(queue_runtime.settings).publish([WorkMessage("gmail", "stranger@elsewhere.example")])
                fan.stats.open_streams.add("gmail/stranger@elsewhere.example")
                assert fan.wait_until_done(timeout=180)
                fan.drain()
            assert stored(queue_runtime.warehouse) == mail_of(sandbox)
            dead = queue_runtime.warehouse.query(
                f"SELECT stream, attempts, error_type FROM {DS}.work_dead_letters ORDER BY stream")
            assert [(d["stream"], d["attempts"]) for d in dead] == [(broken, 5), ("stranger@elsewhere.example", 1)]
            assert dead[1]["error_type"] == "PoisonMessage"
            failed = [r for r in runs(queue_runtime.warehouse) if r["stream"] == broken]
            assert [r["status"] for r in failed] == ["failed"] * 5
            data = report_data(queue_runtime.warehouse)
            assert sorted(d["stream"] for d in data["dead_letters"]) == [broken, "stranger@elsewhere.example"]
            assert 'id="dead-letters"' in to_html(data)
            report(queue_runtime.warehouse)
            printed = capsys.readouterr().out
            assert "2 work message(s) dead-lettered" in printed and f"gmail/{broken} after 5 attempt(s)" in printed


class TestOverHttp:
    def test_a_trigger_in_queue_mode_enqueues_one_message_per_stream(self, queue_runtime, monkeypatch, function_server):
        """POST to gmail_sync with DISPATCH=queue runs nothing: it answers `queued` with the mailboxes, and the
        work topic holds one message per mailbox, keyed by its stream."""
        from google.cloud import pubsub_v1

        from scripts.fan_out import ensure_topology, worker_subscription

        with GmailSandbox(MAILBOXES, messages_per_mailbox=5) as sandbox:
            point_at(queue_runtime, sandbox, monkeypatch)
            ensure_topology(queue_runtime.settings, ["gmail"])
            answer = function_server("gmail_sync").post({"sync_type": "full", "trigger": "scheduler"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "queued" and answer.json()["streams"] == MAILBOXES
            subscriber = pubsub_v1.SubscriberClient()
            pulled = subscriber.pull(subscription=worker_subscription(queue_runtime.settings, "gmail"),
                                     max_messages=10, timeout=10).received_messages
            bodies = [(json.loads(m.message.data), m.message.ordering_key) for m in pulled]
            assert sorted((b["stream"], b["sync_type"], b["reason"], key) for b, key in bodies) == sorted(
                (mailbox, "full", "schedule", f"gmail/{mailbox}") for mailbox in MAILBOXES)
            assert stored(queue_runtime.warehouse) == set()

    def test_pubsub_pushes_work_to_the_worker_function(self, queue_runtime, monkeypatch, function_server):
        """A push subscription on the emulator delivers a work message to gmail_worker under functions-framework;
        the worker lands the mailbox's rows and the merger stores them."""
        from google.cloud import pubsub_v1

        from pipeline.merger import Merger
        from pipeline.work_queue import WorkMessage, WorkQueue, work_topic
        from scripts.fan_out import ensure_topology

        with GmailSandbox(MAILBOXES[:1], messages_per_mailbox=12) as sandbox:
            point_at(queue_runtime, sandbox, monkeypatch)
            settings = queue_runtime.settings
            ensure_topology(settings, [])
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
            publisher.create_topic(name=work_topic(settings, "gmail"))
            worker = function_server("gmail_worker")
            subscriber.create_subscription(request={
                "name": f"projects/{settings.gcp_project}/subscriptions/push-{settings.landing_topic}",
                "topic": work_topic(settings, "gmail"), "push_config": {"push_endpoint": worker.url},
                "enable_message_ordering": True})
            WorkQueue(settings).publish([WorkMessage("gmail", MAILBOXES[0], "full")])
            merger = Merger(queue_runtime.warehouse, settings)
            for _ in range(120):
                merger.cycle()
                if stored(queue_runtime.warehouse) == mail_of(sandbox):
                    break
            assert stored(queue_runtime.warehouse) == mail_of(sandbox)
            assert [r["status"] for r in runs(queue_runtime.warehouse)] == ["success"]


class TestWithoutTheQueue:
    def test_a_work_message_in_inline_mode_is_merged_by_its_run(self, runtime, monkeypatch):
        """DISPATCH=inline (a message left queued after switching back, or a push): the worker runs the stream
        under its lease and merges its rows itself, since no merger runs then."""
        from http_entry import work_entry
        from pipeline.work_queue import WorkMessage

        with GmailSandbox(MAILBOXES[:1], messages_per_mailbox=8) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            assert work_entry.worker_runtime() is runtime
            body, status, _ = work_entry.deliver(WorkMessage("gmail", MAILBOXES[0], "full").encode(), 1, "m1",
                                                 "gmail", runtime)
            assert status == 200 and json.loads(body)["status"] == "success"
            assert stored(runtime.warehouse) == mail_of(sandbox)
            assert runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {DS}.stream_leases")[0]["n"] == 0  # released

    def test_the_merger_sweeps_once_per_ten_minutes_of_the_wall_clock(self, runtime, monkeypatch):
        """Each scheduled invocation makes a new Merger: the sweep of runs left running happens once per 600 s of the
        wall clock, not once per invocation."""
        from pipeline import merger as merger_module
        from pipeline.merger import CycleResult, Merger

        monkeypatch.setattr(merger_module, "_last_sweep_slot", None)
        swept = []
        for wall in (6000.0, 6060.0, 6590.0, 6600.0):
            merger = Merger(runtime.warehouse, runtime.settings, subscriber=object(), wall=lambda wall=wall: wall)
            merger._sweep(CycleResult())
            swept.append(sum(1 for table, _, _ in merger.window.statements if table == "etl_runs"))
        assert swept == [len(merger_module.WORK_SOURCES), 0, 0, len(merger_module.WORK_SOURCES)]


class TestMergerFailures:
    def test_a_group_that_cannot_merge_is_kept_as_rejected_and_does_not_stall_the_others(self, queue_runtime):
        """A landed batch whose rows cannot be merged (a column the table lacks) goes to rejected_records with the
        reason; the good batch of the same cycle is merged and nothing is delivered again."""
        from google.cloud import pubsub_v1

        from pipeline.merger import Merger
        from scripts.fan_out import ensure_topology
        from warehouse.landing import encode_batches, landing_topic

        settings, warehouse = queue_runtime.settings, queue_runtime.warehouse
        ensure_topology(settings, [])
        spec = warehouse.spec_of("sync_state")
        good = {"source": "dialpad", "stream": "calls", "watermark": "w1", "run_id": "r1", "updated_at": "2026-12-07T08:00:00+00:00"}
        publisher = pubsub_v1.PublisherClient()
        for rows in ([good], [{**good, "stream": "other", "bogus": 1}]):
            for data in encode_batches(spec, rows, key=spec.primary_key, version=spec.version, batch_id="b"):
                publisher.publish(landing_topic(settings), data).result()
        merger = Merger(warehouse, settings)
        result = merger.cycle()
        assert (result.merges, result.rejected) == (1, 1)
        assert warehouse.query(f"SELECT stream FROM {DS}.sync_state") == [{"stream": "calls"}]
        (reject,) = warehouse.query(f"SELECT stream, reason FROM {DS}.rejected_records")
        assert reject["stream"] == "sync_state" and "bogus" in reject["reason"]
        assert merger.cycle().messages == 0
