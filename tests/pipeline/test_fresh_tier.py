"""The fresh tier for real: push runs through the Pub/Sub emulator land rows the merger appends to <table>_fresh
(free load jobs), <table>_live shows them at once, and a fold merges them into the tables; on DuckDB and on the
BigQuery emulator."""
from __future__ import annotations

import uuid

import pytest

from pipeline.fresh_tier import LoadBudget
from pipeline.runtime import Runtime
from sandbox.gmail import NOT_MAIL, GmailSandbox
from scripts.fan_out import LocalFanOut
from tests.helpers import point_at
from warehouse.fresh import fresh_spec, latest_rows, live_view_sql
from warehouse.schemas import table_spec

MAILBOX = "alex@ourcompany.example"


@pytest.fixture(params=["duckdb", "bigquery"])
def queue_runtime(request, settings, pubsub_emulator, monkeypatch):
    """A runtime in queue mode on the Pub/Sub emulator, over DuckDB or the BigQuery emulator."""
    import pipeline.runtime

    if request.param == "duckdb":
        warehouse = request.getfixturevalue("warehouse")
    else:
        warehouse = request.getfixturevalue("bigquery_warehouse")
        settings = request.getfixturevalue("bigquery_settings")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    tag = uuid.uuid4().hex[:6]
    settings = settings.model_copy(update={
        "dispatch": "queue", "work_topic_prefix": f"work-{tag}-", "landing_topic": f"landed-{tag}",
        "work_dead_letter_topic": f"dead-{tag}", "merge_interval_seconds": 0.5})
    runtime = Runtime.around(settings, warehouse)
    monkeypatch.setattr(pipeline.runtime, "_runtime", runtime)
    return runtime


def ids(warehouse, table):
    return {r["message_id"] for r in warehouse.query(
        f"SELECT message_id FROM `{warehouse.dataset}.{table}` WHERE mailbox = @m", {"m": MAILBOX})}


def mail(sandbox):
    return {m.id for m in sandbox.state.mailboxes[MAILBOX].messages.values() if not set(m.labels) & set(NOT_MAIL)}


class Writes:
    """Counts the statements that change a table (MERGEs and DML) a warehouse runs; DDL is free and not counted."""

    def __init__(self, warehouse, monkeypatch):
        self.merges: list[str] = []
        self.dml: list[str] = []
        merge, execute = warehouse.merge, warehouse.execute

        def counted_merge(table, rows, **kwargs):
            self.merges.append(table)
            return merge(table, rows, **kwargs)

        def counted_execute(sql, params=None):
            # DDL is free; the merger's sweep of abandoned runs (every 10 minutes of the wall clock) is the
            # schedule's, not the pushes'.
            if not sql.lstrip().upper().startswith(("CREATE", "DROP", "ALTER")) and "'abandoned'" not in sql:
                self.dml.append(sql.split("\n", 1)[0])
            return execute(sql, params)

        monkeypatch.setattr(warehouse, "merge", counted_merge)
        monkeypatch.setattr(warehouse, "execute", counted_execute)


class TestFreshTier:
    def test_pushed_mail_is_live_at_once_and_folded_later(self, queue_runtime, monkeypatch):
        """After a full sync, two pushes each bringing a message: neither is in gmail_messages (no MERGE, no DML ran
        for them), both are in gmail_messages_live and gmail_participants_live; the second run started from the
        first one's watermark, read from the fresh tier (it fetched one message, not two); a fold puts both in the
        tables and empties the fresh tables, the live view unchanged."""
        warehouse = queue_runtime.warehouse
        with GmailSandbox([MAILBOX], messages_per_mailbox=8) as sandbox:
            point_at(queue_runtime, sandbox, monkeypatch)
            with LocalFanOut(queue_runtime, ["gmail"], workers=1) as fan:
                fan.enqueue("gmail", "full")
                assert fan.wait_until_done(timeout=120)
                fan.drain()  # the merger's thread stops: from here on each drain() merges what is left
                before = ids(warehouse, "gmail_messages")
                assert before == mail(sandbox)
                writes = Writes(warehouse, monkeypatch)
                pushed = []
                for _ in range(2):
                    pushed.append(sandbox.state.add_message(MAILBOX).id)
                    fan.enqueue("gmail", "incremental", [MAILBOX], reason="push")
                    assert fan.wait_until_done(timeout=120)
                    fan.drain()
            assert {t for t in writes.merges if not t.endswith("_fresh")} == set() and writes.dml == []
            assert ids(warehouse, "gmail_messages") == before
            assert ids(warehouse, "gmail_messages_live") == before | set(pushed)
            participants = warehouse.query(f"SELECT DISTINCT message_id FROM `{warehouse.dataset}.gmail_participants_live`"
                                           " WHERE mailbox = @m", {"m": MAILBOX})
            assert set(pushed) <= {r["message_id"] for r in participants}
            runs = warehouse.query(f"SELECT rows_fetched, status FROM `{warehouse.dataset}.push_runs_live` "
                                   "WHERE trigger = 'queue-push' ORDER BY started_at")
            assert [(r["rows_fetched"], r["status"]) for r in runs] == [(1, "success"), (1, "success")]
            folded = fan.merger.fold(force=True)
            assert {"gmail_messages", "gmail_participants", "gmail_sync_state", "push_runs"} <= set(folded)
            assert ids(warehouse, "gmail_messages") == before | set(pushed)
            assert ids(warehouse, "gmail_messages_live") == before | set(pushed)
            for table in folded:
                assert warehouse.read_rows(f"{table}_fresh") == []
            # A push run's record is in push_runs, not etl_runs (what resolution and the sweeps read).
            assert len(warehouse.query(f"SELECT run_id FROM `{warehouse.dataset}.push_runs` "
                                       "WHERE trigger = 'queue-push'")) == 2
            assert warehouse.query(f"SELECT run_id FROM `{warehouse.dataset}.etl_runs` "
                                   "WHERE trigger = 'queue-push'") == []


@pytest.fixture(params=["duckdb", "bigquery"])
def any_warehouse(request):
    return request.getfixturevalue("warehouse" if request.param == "duckdb" else "bigquery_warehouse")


class TestLiveView:
    def test_a_fresh_row_overrides_only_its_supplied_columns_and_only_when_newer(self, any_warehouse):
        """A fresh row supplying some columns shows them over the stored row; an older fresh row shows nothing;
        a key only in the fresh table appears; the watermark read (latest_rows) agrees with the view."""
        from datetime import datetime, timedelta, timezone

        warehouse = any_warehouse
        now = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)
        warehouse.merge("sync_state", [{"source": "s", "stream": "a", "watermark": "w1", "run_id": "r1",
                                        "updated_at": now}])
        warehouse.create_table(fresh_spec(table_spec("sync_state")))
        warehouse.execute(live_view_sql(table_spec("sync_state"), warehouse.dataset))
        fresh = "sync_state_fresh"
        warehouse.append(fresh, [
            {"source": "s", "stream": "a", "watermark": "w2", "updated_at": now + timedelta(minutes=1),
             "_landed_ns": 1, "_seq": 0, "_supplied": ",source,stream,watermark,updated_at,"},
            {"source": "s", "stream": "b", "watermark": "x1", "updated_at": now,
             "_landed_ns": 1, "_seq": 1, "_supplied": ",source,stream,watermark,updated_at,"}], batch_id="t1")
        live = {r["stream"]: r for r in warehouse.query(f"SELECT * FROM {warehouse.dataset}.sync_state_live")}
        assert live["a"]["watermark"] == "w2" and live["a"]["run_id"] == "r1" and live["b"]["watermark"] == "x1"
        assert latest_rows(warehouse, "sync_state", {"stream": "a"})[0]["watermark"] == "w2"
        warehouse.merge("sync_state", [{"source": "s", "stream": "c", "watermark": "c5", "run_id": "r5",
                                        "updated_at": now}])
        warehouse.append(fresh, [{"source": "s", "stream": c, "watermark": w, "updated_at": now - timedelta(days=1),
                                  "_landed_ns": 2, "_seq": i, "_supplied": ",source,stream,watermark,updated_at,"}
                                 for i, (c, w) in enumerate([("a", "w0"), ("c", "c4")])], batch_id="t2")
        live = {r["stream"]: r for r in warehouse.query(f"SELECT * FROM {warehouse.dataset}.sync_state_live")}
        assert live["a"]["watermark"] == "w2"  # a later landed but older version: not over the newer fresh row
        assert live["c"]["watermark"] == "c5"  # a fresh row older than the stored one
        assert latest_rows(warehouse, "sync_state", {"stream": "a"})[0]["watermark"] == "w2"
        assert latest_rows(warehouse, "sync_state", {"stream": "c"})[0]["watermark"] == "c5"
        # A later row supplying some columns only: those from it, the others from the row before it.
        warehouse.append(fresh, [{"source": "s", "stream": "b", "run_id": "rb2", "updated_at": now + timedelta(hours=1),
                                  "_landed_ns": 3, "_seq": 0, "_supplied": ",source,stream,run_id,updated_at,"}],
                         batch_id="t3")
        live = {r["stream"]: r for r in warehouse.query(f"SELECT * FROM {warehouse.dataset}.sync_state_live")}
        assert (live["b"]["watermark"], live["b"]["run_id"]) == ("x1", "rb2")
        latest = latest_rows(warehouse, "sync_state", {"stream": "b"})[0]
        assert (latest["watermark"], latest["run_id"]) == ("x1", "rb2")


class TestLoadBudget:
    def test_spends_a_burst_then_refills_at_its_daily_rate(self):
        """60 loads at once, then one more only after a day's share of time has passed (86,400 / 1,400 s)."""
        now = [0.0]
        budget = LoadBudget(clock=lambda: now[0])
        assert all(budget.take("t") for _ in range(60))
        assert not budget.take("t") and budget.take("other")
        now[0] += 86_400 / 1_400 + 0.01
        assert budget.take("t") and not budget.take("t")


def publish_landed(settings, table, rows, push=True):
    """Lands rows as a worker's run would (a push run's when push), on the test's landing topic."""
    from google.cloud import pubsub_v1

    from pipeline.run_origin import push_run
    from scripts.fan_out import ensure_topology
    from warehouse.landing import encode_batches, landing_topic

    ensure_topology(settings, [])
    spec = table_spec(table)
    publisher = pubsub_v1.PublisherClient()
    with push_run(push):
        for data in encode_batches(spec, rows, key=spec.primary_key, version=spec.version, batch_id=uuid.uuid4().hex):
            publisher.publish(landing_topic(settings), data).result()


STATE = {"source": "dialpad", "stream": "calls", "watermark": "w1", "run_id": "r1",
         "updated_at": "2026-12-07T08:00:00+00:00"}


@pytest.mark.parametrize("queue_runtime", ["duckdb"], indirect=True)
class TestFreshTierFailures:
    def test_a_pushed_group_that_cannot_be_read_is_rejected_and_the_rest_appended(self, queue_runtime):
        """A pushed batch carrying a column its table lacks goes to rejected_records; the good one of the same
        cycle is appended to the fresh table; nothing is delivered again."""
        from pipeline.merger import Merger

        settings, warehouse = queue_runtime.settings, queue_runtime.warehouse
        publish_landed(settings, "sync_state", [STATE])
        publish_landed(settings, "sync_state", [{**STATE, "stream": "other", "bogus": 1}])
        merger = Merger(warehouse, settings)
        result = merger.cycle()
        assert result.fresh == {"sync_state": 1} and result.rejected == 1
        assert [r["stream"] for r in warehouse.read_rows("sync_state_fresh")] == ["calls"]
        assert "bogus" in warehouse.query(f"SELECT reason FROM {warehouse.dataset}.rejected_records")[0]["reason"]
        assert merger.cycle().messages == 0

    def test_a_table_out_of_load_budget_waits_for_a_later_cycle(self, queue_runtime):
        """With no load left for sync_state its pushed rows are handed back, not merged: the next cycle with a load
        appends them; the table itself is untouched until the fold."""
        from pipeline.fresh_tier import FreshTier
        from pipeline.merger import Merger

        settings, warehouse = queue_runtime.settings, queue_runtime.warehouse
        now = [0.0]
        budget = LoadBudget(per_day=86_400, burst=1, clock=lambda: now[0])
        assert budget.take("sync_state")  # spent
        merger = Merger(warehouse, settings)
        merger.fresh = FreshTier(warehouse, settings.fresh_fold_seconds, budget=budget)
        publish_landed(settings, "sync_state", [STATE])
        first = merger.cycle()
        assert first.messages == 1 and first.fresh == {} and warehouse.read_rows("sync_state_fresh") == []
        now[0] += 1.5  # a load's worth of budget
        second = merger.cycle()
        assert second.messages == 1 and second.fresh == {"sync_state": 1}
        assert warehouse.query(f"SELECT * FROM {warehouse.dataset}.sync_state") == []
        assert merger.fold(force=True) == {"sync_state": 1}
        assert [r["watermark"] for r in warehouse.query(f"SELECT watermark FROM {warehouse.dataset}.sync_state")] == ["w1"]


class TestFoldInterval:
    def test_no_table_waits_longer_than_its_sources_schedule_gave(self):
        """Gmail's tables fold hourly (its schedule's gap), Salesforce's, Dialpad's and the bookkeeping tables at
        FRESH_FOLD_SECONDS; a shorter FRESH_FOLD_SECONDS wins for all."""
        from warehouse.fresh import fold_seconds

        assert [fold_seconds(t, 7200) for t in ("gmail_messages", "gmail_sync_state", "sf_contacts",
                                                 "dialpad_calls", "sync_state", "push_runs")] == \
            [3600, 3600, 7200, 7200, 7200, 7200]
        assert fold_seconds("gmail_messages", 900) == 900
