"""run_sync: runs, rejects, watermarks, time budget, failure handling."""
from __future__ import annotations

import json

import pytest

from observability.monitoring import ErrorPublisher
from pipeline.runner import StopSync, per_record, run_sync
from tests.helpers import ListSource, poisoned_text


def rows(warehouse, sql: str) -> list[dict]:
    return warehouse.query(sql)


def run(source_job, warehouse, settings, **kwargs):
    return run_sync(source_job, warehouse=warehouse, publisher=ErrorPublisher(settings), settings=settings, **kwargs)


def account_ids(warehouse) -> list[str]:
    return [r["id"] for r in warehouse.query("SELECT id FROM sales_intelligence.sf_accounts ORDER BY id")]


class TestSuccessfulRun:
    def test_loads_every_record_and_records_the_run(self, warehouse, settings):
        """A clean run loads every record, advances the watermark and closes etl_runs as success."""
        source = ListSource(35, page_size=10)
        summary = run(source.job(), warehouse, settings)
        assert summary.status == "success"
        assert (summary.rows_fetched, summary.rows_loaded, summary.rows_rejected) == (35, 35, 0)
        assert len(account_ids(warehouse)) == 35
        assert summary.watermark_after == "34"
        (record,) = warehouse.query("SELECT * FROM sales_intelligence.etl_runs")
        assert record["status"] == "success" and record["rows_loaded"] == 35 and record["api_calls"] == 4
        assert record["watermark_after"] == "34" and record["ended_at"] is not None

    def test_next_run_starts_at_the_watermark(self, warehouse, settings):
        """A second run reads nothing already covered by the stored watermark."""
        source = ListSource(20, page_size=10)
        run(source.job(), warehouse, settings)
        source.records += [{"Id": f"001{i:015d}", "Name": f"Account {i}", "n": i} for i in range(20, 25)]
        before = source.requests
        summary = run(source.job(), warehouse, settings)
        assert summary.rows_fetched == 5 and source.requests - before == 1
        assert len(account_ids(warehouse)) == 25

    def test_sync_state_names_the_run_that_wrote_it(self, warehouse, settings):
        """sync_state.run_id is the run id of the etl_runs row whose checkpoint wrote the watermark (joins)."""
        source = ListSource(25, page_size=10)
        summary = run(source.job(), warehouse, settings)
        joined = warehouse.query("SELECT e.run_id FROM sales_intelligence.sync_state s "
                                 "JOIN sales_intelligence.etl_runs e ON e.run_id = s.run_id")
        assert joined == [{"run_id": summary.run_id}]

    def test_bad_records_are_kept_with_their_reason(self, warehouse, settings):
        """A record the transform refuses goes to rejected_records and is counted; the run succeeds."""
        summary = run(ListSource(12, broken={3, 7}).job(), warehouse, settings)
        assert summary.status == "success" and summary.rows_rejected == 2 and summary.rows_loaded == 10
        rejected = warehouse.query("SELECT record_key, reason, raw_record FROM sales_intelligence.rejected_records "
                                   "ORDER BY record_key")
        assert [r["reason"] for r in rejected] == ["missing Name", "missing Name"]
        assert json.loads(rejected[0]["raw_record"])["n"] == 3


class TestInterruptedRun:
    def test_failure_keeps_merged_pages_and_the_rerun_completes(self, warehouse, settings):
        """A run failing at page 2 keeps pages 0-1 and their watermark; the rerun ends with every record once."""
        source = ListSource(50, page_size=10)
        source.fail_at_page = 2
        with pytest.raises(ConnectionAbortedError) as failure:
            run(source.job(), warehouse, settings)
        assert failure.value.run_id.startswith("testsource-")
        assert len(account_ids(warehouse)) == 20
        assert warehouse.query("SELECT watermark FROM sales_intelligence.sync_state") == [{"watermark": "19"}]
        (failed,) = warehouse.query("SELECT status, error_type, error_message FROM sales_intelligence.etl_runs")
        assert failed == {"status": "failed", "error_type": "ConnectionAbortedError",
                          "error_message": "injected failure at page 2"}
        source.fail_at_page = None
        assert run(source.job(), warehouse, settings).rows_fetched == 30
        ids = account_ids(warehouse)
        assert len(ids) == len(set(ids)) == 50

    def test_failure_is_published_to_the_error_sink(self, warehouse, settings):
        """Without Pub/Sub configured the error lands in the local JSONL file, structured."""
        source = ListSource(10, page_size=5)
        source.fail_at_page = 0
        with pytest.raises(ConnectionAbortedError):
            run(source.job(), warehouse, settings)
        (message,) = [json.loads(line) for line in settings.errors_file.read_text().splitlines()]
        assert message["source"] == "testsource" and message["error_type"] == "ConnectionAbortedError"
        assert message["context"]["stream"] == "Account" and message["run_id"].startswith("testsource-")

    def test_time_budget_ends_partial_and_next_run_resumes(self, warehouse, settings):
        """Past the time budget the run stops after the page in hand, partial; the next run continues."""
        ticks = iter(range(1000))
        budget = settings.model_copy(update={"run_time_budget_seconds": 2})
        source = ListSource(40, page_size=10)
        first = run(source.job(), warehouse, budget, clock=lambda: next(ticks))
        assert first.status == "partial" and "time budget" in first.stop_reason
        assert first.rows_fetched == 20
        second = run(source.job(), warehouse, settings)
        assert second.status == "success" and second.rows_fetched == 20
        assert len(account_ids(warehouse)) == 40

    def test_stop_sync_ends_partial(self, warehouse, settings):
        """A source that raises StopSync (e.g. API budget spent) ends partial, keeping what it merged."""
        source = ListSource(30, page_size=10)

        def pages(watermark):
            for number, page in enumerate(source.pages(watermark)):
                if number == 1:
                    raise StopSync("daily API budget below reserve")
                yield page

        job = source.job()
        job.fetch_pages = pages
        summary = run(job, warehouse, settings)
        assert summary.status == "partial" and summary.stop_reason == "daily API budget below reserve"
        assert len(account_ids(warehouse)) == 10
        (record,) = warehouse.query("SELECT status, details FROM sales_intelligence.etl_runs")
        assert record["status"] == "partial"
        assert record["details"]["stop_reason"] == "daily API budget below reserve"


class TestPartitionsWritten:
    @staticmethod
    def calls(*days):
        from datetime import datetime, timedelta, timezone

        start = datetime(2027, 6, 1, 9, tzinfo=timezone.utc)
        return [{"call_id": f"c{d}", "started_at": start + timedelta(days=d)} for d in days]

    def test_the_run_records_the_partitions_its_rows_fell_in(self, warehouse, settings):
        """Rows on days 0, 1 and 5 of dialpad_calls: two spans of whole days in etl_runs.details; an unpartitioned
        table is not listed."""
        from pipeline.runner import Page, SyncJob

        job = SyncJob(source="dialpad", stream="calls", fetch_pages=lambda _w: iter([Page(self.calls(0, 1, 5))]),
                      transform_page=per_record(lambda r: {"dialpad_calls": [r], "hubspot_sequences": [
                          {"sequence_id": r["call_id"], "updated_at": r["started_at"]}]}),
                      record_key=lambda r: r["call_id"])
        run(job, warehouse, settings)
        (record,) = warehouse.query("SELECT details FROM sales_intelligence.etl_runs")
        assert record["details"]["partitions_written"] == {"dialpad_calls": {"spans": [
            ["2027-06-01T00:00:00+00:00", "2027-06-03T00:00:00+00:00"],
            ["2027-06-06T00:00:00+00:00", "2027-06-07T00:00:00+00:00"]], "has_null": False}}

    def test_rows_without_the_column_or_with_other_values_say_any_partition(self):
        """A merge that leaves the partition column as stored (rows without it), or values that are not times:
        null, which tells a reader to assume any partition; a NULL value is the NULL partition."""
        from pipeline.runner import PartitionsWritten

        written = PartitionsWritten()
        written.add("gmail_messages", [{"mailbox": "a@x.com", "message_id": "m1", "is_deleted": True}])
        written.add("hubspot_sequence_enrollments", [{"enrollment_id": "e1", "enrolled_at": "2027-06-01"}])
        written.add("dialpad_calls", [{"call_id": "c1", "started_at": None}])
        assert written.as_details() == {"gmail_messages": None, "hubspot_sequence_enrollments": None,
                                        "dialpad_calls": {"spans": [], "has_null": True}}

    def test_a_failed_run_records_what_it_merged_before_failing(self, warehouse, settings):
        """A run failing at its second page still says which partitions its first page wrote."""
        from pipeline.runner import Page, SyncJob

        def pages(_watermark):
            yield Page(self.calls(3), "w1")
            raise ConnectionAbortedError("injected")

        job = SyncJob(source="dialpad", stream="calls", fetch_pages=pages, transform_page=per_record(lambda r: {"dialpad_calls": [r]}),
                      record_key=lambda r: r["call_id"])
        with pytest.raises(ConnectionAbortedError):
            run(job, warehouse, settings)
        (record,) = warehouse.query("SELECT status, details FROM sales_intelligence.etl_runs")
        assert record["status"] == "failed"
        assert record["details"]["partitions_written"]["dialpad_calls"]["spans"] == [
            ["2027-06-04T00:00:00+00:00", "2027-06-05T00:00:00+00:00"]]


def test_per_record_turns_record_functions_into_one_page_transform():
    """per_record: each record's rows gathered per table; a RejectedRecord, an unforeseen error and a rejected
    part each become a Reject (the parts under their own key), the other records' rows kept."""
    from pipeline.runner import REJECTED_PARTS, Reject, RejectedRecord, per_record

    def to_rows(record):
        if record == "refused":
            raise RejectedRecord("no id")
        if record == "broken":
            raise KeyError("id")
        return {"t": [{"id": record}], REJECTED_PARTS: [Reject({"part": record}, "bad part", key=f"{record}:0")]}

    rows, rejected = per_record(to_rows)(["a", "refused", "broken", "b"])
    assert rows == {"t": [{"id": "a"}, {"id": "b"}]}
    assert [(r.raw, r.reason, r.key) for r in rejected] == [
        ({"part": "a"}, "bad part", "a:0"), ("refused", "no id", None), ("broken", "KeyError: 'id'", None),
        ({"part": "b"}, "bad part", "b:0")]


def _poisoned(record, rng):
    """record with one poison value at a random text field (nested ones included; keys and dates left alone, and
    addresses stored only normalised: an unreadable one is NULL there, as any junk address is)."""
    untouched = {"call_id", "id", "date_started", "enrolledAt", "email", "enrolledByEmail"}
    fields = [(record, key) for key, value in record.items() if isinstance(value, str) and key not in untouched]
    fields += [(value, key) for value in record.values() if isinstance(value, dict)
               for key, inner in value.items() if isinstance(inner, str) and key not in untouched]
    holder, key = rng.choice(fields)
    holder[key] = poisoned_text(holder[key], rng.choice(("lone surrogate", "NUL")), rng)
    return record


class TestPoisonRecords:
    @staticmethod
    def dialpad(i):
        from cloud_functions.dialpad_sync.records import TRANSCRIPT

        return {"call_id": str(1000 + i), "date_started": str(1767000000000 + i), "external_number": "+14155550123",
                "direction": "inbound", "state": "hangup", "target": {"id": "u1", "name": "Alex Sales"},
                "contact": {"name": "Jürgen", "email": "j@x.com"}, TRANSCRIPT: {"lines": [{"content": "hallo", "name": "J"}]}}

    @staticmethod
    def hubspot(i):
        return {"contact": {"id": str(i)}, "enrollment": {
            "id": f"e{i}", "enrolledAt": "2026-01-01T00:00:00Z", "sequenceId": "s1", "sequenceName": "Welcome",
            "toEmail": f"p{i}@x.com", "enrolledByEmail": "alex@ourcompany.example"}}

    @pytest.mark.parametrize("seed", range(6))
    @pytest.mark.parametrize("source", ["dialpad", "hubspot"])
    def test_one_poison_value_rejects_its_record_only(self, warehouse, settings, source, seed):
        """A lone surrogate or NUL at a random field: that record is rejected with the reason, the other
        records merge, the run succeeds and the next run starts past it."""
        import random

        from cloud_functions.dialpad_sync.records import call_row, transcript_row
        from cloud_functions.hubspot_sync.records import enrollment_rows
        from pipeline.runner import Page, SyncJob

        rng = random.Random(seed)
        make = getattr(self, source)
        records = [make(i) for i in range(5)]
        bad = rng.randrange(5)
        _poisoned(records[bad], rng)
        to_rows = {"dialpad": lambda r: {"dialpad_calls": [row := call_row(r, "US")],
                                         "dialpad_transcripts": [transcript_row(r, row)]},
                   "hubspot": lambda r: {"hubspot_sequence_enrollments": enrollment_rows(r)}}[source]
        reads = []

        def pages(watermark):
            reads.append(watermark)
            yield Page([] if watermark else records, "page-1")

        job = SyncJob(source=source, stream="poison", fetch_pages=pages, transform_page=per_record(to_rows),
                      record_key=lambda r: r.get("call_id") or r["contact"]["id"])
        summary = run(job, warehouse, settings)
        assert (summary.status, summary.rows_rejected) == ("success", 1)
        assert summary.rows_by_table == {"dialpad": {"dialpad_calls": 4, "dialpad_transcripts": 4},
                                         "hubspot": {"hubspot_sequence_enrollments": 4}}[source]
        (rejected,) = warehouse.query("SELECT record_key, reason, raw_record FROM sales_intelligence.rejected_records")
        assert rejected["reason"].startswith("unstorable value: ")
        assert rejected["record_key"] == (records[bad].get("call_id") or records[bad]["contact"]["id"])
        assert run(job, warehouse, settings).rows_fetched == 0 and reads == [None, "page-1"]


class TestTimeShares:
    def test_each_run_gets_an_equal_share_of_the_time_left_when_it_starts(self):
        """Three runs in 90 s: the first may use 30 s; if it takes 10, the next two share the 80 left."""
        from pipeline.runner import time_shares

        now = [100.0]
        shares = time_shares(3, 90.0, clock=lambda: now[0])
        assert next(shares) == 130.0
        now[0] = 110.0
        assert next(shares) == 150.0
        now[0] = 150.0
        assert next(shares) == 190.0

    def test_a_run_past_the_budget_leaves_the_rest_no_time_but_their_turn(self):
        """A budget already spent gives the later runs a deadline of now: they still start (one page each)."""
        from pipeline.runner import time_shares

        now = [0.0]
        shares = time_shares(2, 10.0, clock=lambda: now[0])
        next(shares)
        now[0] = 25.0
        assert next(shares) == 25.0
