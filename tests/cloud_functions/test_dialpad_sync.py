"""Dialpad sync end to end: functions-framework HTTP entry -> requests -> loopback Dialpad -> DuckDB."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from cloud_functions.dialpad_sync.records import TRANSCRIPT, call_row, transcript_row
from pipeline.runner import RejectedRecord
from sandbox.dialpad import DialpadSandbox
from tests.helpers import SMALL_ROW_BYTES, TEXT_POISONS, matches, poison_reason_pattern, poisoned_text, pull_messages
from tests.helpers import point_at as aim

DS = "sales_intelligence"


@pytest.fixture
def sandbox():
    with DialpadSandbox(120, malformed=4) as sb:
        yield sb


def point_at(runtime, sandbox, monkeypatch, **overrides):
    return aim(runtime, sandbox, monkeypatch, **{"dialpad_lookback_hours": 0.5, **overrides})


def snapshot(warehouse):
    return warehouse.query(f"SELECT * EXCEPT (ingested_at) FROM {DS}.dialpad_calls ORDER BY call_id")


class TestSync:
    def test_full_incremental_and_repeat_over_http(self, runtime, sandbox, monkeypatch, function_server):
        """Full stores every call and transcript once; incremental adds only the new; a repeat changes nothing."""
        from transform.values import epoch_ms, to_datetime

        point_at(runtime, sandbox, monkeypatch)
        server = function_server("dialpad_sync")
        response = server.post({"sync_type": "full", "days": 5})
        assert response.status_code == 200, response.text
        body = response.json()
        valid = [c for c in sandbox.state.calls if c.get("call_id") and str(c.get("date_started")).isdigit()
                 and int(c["date_started"]) < 30_000_000_000_000]
        rows = snapshot(runtime.warehouse)
        assert len(rows) == len({r["call_id"] for r in rows}) == len(valid)
        transcripts = runtime.warehouse.query(
            f"SELECT t.call_id, t.started_at, c.started_at AS call_started_at, t.transcript_text "
            f"FROM {DS}.dialpad_transcripts AS t JOIN {DS}.dialpad_calls AS c USING (call_id)")
        assert {r["call_id"] for r in transcripts} == set(sandbox.state.transcripts)
        assert all(r["started_at"] == r["call_started_at"] and r["transcript_text"] for r in transcripts)
        assert "transcript_text" not in rows[0]  # the calls' rows stay narrow (entity resolution updates them)
        assert body["runs"][0]["details"]["transcripts_fetched"] == len(sandbox.state.transcripts)
        assert body["runs"][0]["rows_rejected"] == 1  # the call without an id
        assert sandbox.server.requests.by_route["call_get"] == 0  # never one request per call

        assert sandbox.state.untranscribed  # recorded, answered without lines: asked for, no row
        added = sandbox.state.add_calls(6)
        requests_before = sandbox.server.requests.by_route["transcript"]
        response = server.post({"sync_type": "incremental"})
        assert response.status_code == 200, response.text
        new_ids = {str(c["call_id"]) for c in added}
        after = snapshot(runtime.warehouse)
        assert len(after) == len(rows) + 6 and new_ids <= {r["call_id"] for r in after}
        # Asked again: the new recorded calls, and the run's earlier recorded calls that still have no transcript
        low = epoch_ms(to_datetime(body["runs"][0]["watermark_after"]) - timedelta(hours=0.5))
        unstored = (new_ids & {str(c["call_id"]) for c in added if c["was_recorded"]}) | set(sandbox.state.untranscribed)
        asked = {str(c["call_id"]) for c in sandbox.state.calls
                 if str(c.get("call_id")) in unstored and (sandbox.state.started(c) or 0) >= low}
        assert sandbox.server.requests.by_route["transcript"] - requests_before == len(asked)
        unchanged = snapshot(runtime.warehouse)
        assert server.post({"sync_type": "incremental"}).status_code == 200
        assert snapshot(runtime.warehouse) == unchanged

    def test_rate_limit_is_never_exceeded_and_429s_are_retried(self, runtime, sandbox, monkeypatch):
        """The sandbox's busiest second holds at most 20 requests; injected 429s are retried to success."""
        from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync

        point_at(runtime, sandbox, monkeypatch)
        sandbox.server.faults.fail_next(3, status=429, path_pattern=r"/api/v2/(call|transcripts)")
        result = run_dialpad_sync(DialpadSyncRequest(sync_type="full", days=5), runtime)
        assert result["status"] == "success"
        assert sandbox.server.requests.statuses[429] == 3
        assert sandbox.state.rate_limited == 0
        assert sandbox.server.requests.max_in_window(1.0) <= 20
        counts = runtime.warehouse.table_counts()
        assert counts["dialpad_calls"] == result["runs"][0]["rows_by_table"]["dialpad_calls"]
        assert counts["dialpad_transcripts"] == result["runs"][0]["rows_by_table"]["dialpad_transcripts"] == len(sandbox.state.transcripts)

    @pytest.mark.emulator
    def test_bad_token_fails_fast_publishes_and_marks_failed(self, runtime, sandbox, monkeypatch,
                                                             pubsub_subscription, function_server):
        """A rejected key is not retried: HTTP 500, a Pub/Sub message, etl_runs failed."""
        settings, subscriber, subscription = pubsub_subscription
        runtime.publisher = type(runtime.publisher)(settings)
        point_at(runtime, sandbox, monkeypatch)
        monkeypatch.setenv("DIALPAD_API_KEY", "wrong-key-value")
        response = function_server("dialpad_sync").post({})
        assert response.status_code == 500 and response.json()["error_type"] == "HTTPError"
        assert sandbox.server.requests.statuses[401] == 1
        (message,) = pull_messages(subscriber, subscription)
        assert json.loads(message.data)["source"] == "dialpad" and message.attributes["source"] == "dialpad"
        assert "wrong-key-value" not in message.data.decode()
        (run,) = runtime.warehouse.query(f"SELECT status, error_type FROM {DS}.etl_runs")
        assert run == {"status": "failed", "error_type": "HTTPError"}


def _utc(text):
    """A sandbox line time as UTC (timezone-less ones are UTC: README, Assumptions about the APIs)."""
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=timezone.utc)


class TestTranscriptsAsSaid:
    def test_stored_text_is_what_people_said_in_time_order(self, runtime, sandbox, monkeypatch):
        """Moments (price_inquiry, ...) are not in transcript_text but in transcript_moments; lines listed out of
        order are stored in time order; timezone-less times with microseconds are read as UTC, to the microsecond."""
        from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync

        point_at(runtime, sandbox, monkeypatch)
        assert run_dialpad_sync(DialpadSyncRequest(sync_type="full", days=5), runtime)["status"] == "success"
        stored = {r["call_id"]: r for r in runtime.warehouse.query(
            f"SELECT call_id, transcript_text, transcript_lines, transcript_moments FROM {DS}.dialpad_transcripts")}
        sent = sandbox.state.transcripts
        assert stored.keys() == sent.keys()
        assert any(line["type"] != "transcript" for t in sent.values() for line in t["lines"])
        assert any([_utc(x["time"]) for x in t["lines"]] != sorted(_utc(x["time"]) for x in t["lines"]) for t in sent.values())
        for call_id, transcript in sent.items():
            said = sorted((x for x in transcript["lines"] if x["type"] == "transcript"), key=lambda x: _utc(x["time"]))
            moments = sorted((x for x in transcript["lines"] if x["type"] != "transcript"), key=lambda x: _utc(x["time"]))
            row = stored[call_id]
            assert row["transcript_text"] == "\n".join(f"{x['name']}: {x['content']}" for x in said)
            assert [(x["content"], x["time"]) for x in row["transcript_lines"]] == [(x["content"], _utc(x["time"])) for x in said]
            assert [(x["type"], x["content"], x["time"]) for x in row["transcript_moments"]] == [
                (x["type"], x["content"], _utc(x["time"])) for x in moments]


class TestPaging:
    def test_an_incremental_run_reads_only_its_window_over_several_pages(self, runtime, monkeypatch):
        """The sandbox's cursor holds only the position: every page is asked with the window's date filters, so an
        incremental run over several pages reads the calls of its window, not the whole call history."""
        from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync
        from transform.values import epoch_ms, to_datetime

        with DialpadSandbox(120, page_size=5, malformed=4) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            (full,) = run_dialpad_sync(DialpadSyncRequest(sync_type="full", days=5), runtime)["runs"]
            sandbox.state.add_calls(12)
            sandbox.state.list_queries.clear()
            (run,) = run_dialpad_sync(DialpadSyncRequest(), runtime)["runs"]
            low = epoch_ms(to_datetime(full["watermark_after"]) - timedelta(hours=0.5))
            window = [c for c in sandbox.state.calls if low <= (sandbox.state.started(c) or 0) <= epoch_ms(datetime.now(timezone.utc))]
            assert run["status"] == "success" and run["rows_fetched"] == len(window) < len(sandbox.state.calls) // 4
            queries = sandbox.state.list_queries
            assert sum(1 for q in queries if q["cursor"]) >= 3
            assert all(q["started_after"] and q["started_before"] for q in queries)


def stored_texts(call):
    """(holder, key) of every text of a call that reaches its row as sent."""
    texts = [(call, key) for key in ("direction", "state", "external_number", "internal_number")]
    texts += [(call[part], key) for part in ("target", "contact") for key in ("id", "name", "phone") if call[part].get(key)]
    return texts + [(call["labels"], n) for n in range(len(call["labels"]))]


class TestPoison:
    @pytest.mark.parametrize("seed", range(2))
    @pytest.mark.parametrize("kind", TEXT_POISONS)
    def test_a_poison_call_is_rejected_and_the_watermark_moves_past_it(self, runtime, monkeypatch, kind, seed):
        """A lone surrogate (valid JSON), NUL or oversized text at a random field of one new call: it is rejected
        with the reason, the other calls are merged, the run succeeds and its watermark passes the call. (Runs
        within the lookback read it again by design, as they read every call there: a call is listed only once it
        ends.)"""
        from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync
        from transform.values import to_datetime

        monkeypatch.setattr("transform.values.MAX_ROW_BYTES", SMALL_ROW_BYTES)
        rng = random.Random(f"{kind} {seed}")
        with DialpadSandbox(20, transcript_share=0.0) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            run_dialpad_sync(DialpadSyncRequest(sync_type="full", days=5), runtime)
            added = sandbox.state.add_calls(5)
            bad = rng.choice(added)
            holder, key = rng.choice(stored_texts(bad))
            holder[key] = poisoned_text(holder[key], kind, rng)  # the sandbox serves the dict it holds
            (run,) = run_dialpad_sync(DialpadSyncRequest(), runtime)["runs"]
            assert (run["status"], run["rows_rejected"], run["rows_loaded"]) == ("success", 1, run["rows_fetched"] - 1)
            (rejected,) = runtime.warehouse.query(f"SELECT record_key, reason FROM {DS}.rejected_records")
            assert rejected["record_key"] == str(bad["call_id"]) and matches(poison_reason_pattern(kind), rejected["reason"])
            stored = {r["call_id"] for r in snapshot(runtime.warehouse)}
            assert {str(c["call_id"]) for c in added} - stored == {str(bad["call_id"])}
            assert to_datetime(run["watermark_after"]) > to_datetime(int(bad["date_started"]))


BASE = {"call_id": "4000000001", "date_started": "1767000000000", "external_number": "+14155550123"}


class TestCallRows:
    @pytest.mark.parametrize("call, expected", [
        (BASE, {"call_id": "4000000001", "external_number_e164": "+14155550123"}),
        ({**BASE, "call_id": 4000000001, "date_started": 1767000000000}, {"call_id": "4000000001"}),
        ({**BASE, "external_number": "anonymous"}, {"external_number": "anonymous", "external_number_e164": None}),
        ({**BASE, "external_number": "+1 (555) CALL-NOW"}, {"external_number_e164": None}),
        ({**BASE, "external_number": "(415) 555-0123"}, {"external_number_e164": "+14155550123"}),
        ({**BASE, "date_ended": -5, "duration": "n/a"}, {"ended_at": None, "duration_ms": None}),
        ({**BASE, "date_connected": "32503680000000"}, {"connected_at": None}),
        ({**BASE, "contact": {"email": "not an email", "name": " Ann "}}, {"contact_email": None, "contact_name": "Ann"}),
        ({**BASE, "was_recorded": "maybe", "labels": None}, {"was_recorded": None, "labels": []}),
    ])
    def test_messy_calls_become_rows_with_nulls(self, call, expected):
        """Strings or numbers, junk numbers, impossible secondary dates: a row, with NULL where nothing is known."""
        row = call_row(call, "US")
        assert {k: row[k] for k in expected} == expected

    @pytest.mark.parametrize("transcript, expected", [
        ({"lines": [{"content": "Hi", "name": "Sam", "time": "2026-01-01T10:00:00Z"},
                    {"content": "Hello", "name": None, "time": "garbage"}]},
         {"call_id": "4000000001", "transcript_text": "Sam: Hi\n?: Hello"}),
        ({"lines": []}, None),
        (None, None),
    ])
    def test_a_transcript_becomes_its_own_row(self, transcript, expected):
        """A transcript with lines is a dialpad_transcripts row on the call's id and start; none without lines."""
        call = {**BASE, TRANSCRIPT: transcript}
        row = transcript_row(call, call_row(call, "US"))
        if expected is None:
            assert row is None
        else:
            assert {k: row[k] for k in expected} == expected
            assert row["started_at"] == call_row(call, "US")["started_at"] and len(row["transcript_lines"]) == 2

    @pytest.mark.parametrize("lines, text, moments", [
        ([{"content": "b", "name": "B", "time": "2026-01-01T10:00:02.500000"},
          {"content": "a", "name": "A", "time": "2026-01-01T10:00:01.000001Z"}], "A: a\nB: b", []),
        ([{"content": "late", "name": "B", "time": None, "type": "transcript"},
          {"content": "x", "name": "A", "time": "2026-01-01T10:00:03", "type": "transcript"}], "A: x\nB: late", []),
        ([{"content": "price_inquiry", "name": "A", "time": "2026-01-01T10:00:00", "type": "moment", "user_id": 2},
          {"content": "Why?", "name": "A", "time": "2026-01-01T09:59:00", "type": "ai_question", "user_id": "2"}],
         None, [("ai_question", "Why?", "2"), ("moment", "price_inquiry", "2")]),
        ([{"content": "hi", "name": "A", "time": "2026-01-01T10:00:00", "type": "transcript"},
          {"content": "next_steps", "name": "A", "time": "2026-01-01T10:00:01", "type": "some_future_kind"}],
         "A: hi", [("some_future_kind", "next_steps", None)]),
    ])
    def test_transcript_text_is_speech_in_time_order(self, lines, text, moments):
        """Untyped lines count as speech, lines without a time go last, every other line type (any int64 user id)
        is a moment kept apart: a transcript of moments alone has no text."""
        call = {**BASE, TRANSCRIPT: {"call_id": 4000000001, "lines": lines}}
        row = transcript_row(call, call_row(call, "US"))
        assert row["transcript_text"] == text
        assert [(m["type"], m["content"], m["user_id"]) for m in row["transcript_moments"]] == moments

    @pytest.mark.parametrize("sent, read", [
        ("2018-05-08T21:33:19.300000", datetime(2018, 5, 8, 21, 33, 19, 300000, tzinfo=timezone.utc)),
        ("2018-05-08T21:33:19.3", datetime(2018, 5, 8, 21, 33, 19, 300000, tzinfo=timezone.utc)),
        ("2018-05-08T21:33:19", datetime(2018, 5, 8, 21, 33, 19, tzinfo=timezone.utc)),
        ("2018-05-08T21:33:19.300Z", datetime(2018, 5, 8, 21, 33, 19, 300000, tzinfo=timezone.utc)),
        ("2018-05-08T21:33:19.300000+02:00", datetime(2018, 5, 8, 19, 33, 19, 300000, tzinfo=timezone.utc)),
    ])
    def test_line_times_without_a_timezone_are_utc(self, sent, read):
        """A line time without an offset (the spec's form, any fraction digits) is UTC; an offset is honoured."""
        call = {**BASE, TRANSCRIPT: {"lines": [{"content": "hi", "name": "A", "time": sent, "type": "transcript"}]}}
        assert transcript_row(call, call_row(call, "US"))["transcript_lines"][0]["time"] == read

    def test_a_transcript_answer_without_lines_is_no_transcript(self):
        """Dialpad's answer for an untranscribed call (its call id alone) writes no dialpad_transcripts row."""
        call = {**BASE, TRANSCRIPT: {"call_id": "4000000001"}}
        assert transcript_row(call, call_row(call, "US")) is None

    @pytest.mark.parametrize("call, reason", [
        ({"date_started": "1767000000000"}, "missing call_id"),
        ({"call_id": "x1", "date_started": "1767000000000"}, "missing call_id"),
        ({"call_id": "1"}, "missing date_started"),
        ({"call_id": "1", "date_started": "32503680000000"}, "impossible date_started"),
        ({"call_id": "1", "date_started": "0"}, "impossible date_started"),
    ])
    def test_calls_without_id_or_start_are_rejected(self, call, reason):
        """No id or no possible start: rejected with the reason."""
        with pytest.raises(RejectedRecord, match=reason):
            call_row(call, "US")


class TestConnectionCheck:
    def test_check_over_http_reads_one_page_and_writes_nothing(self, runtime, sandbox, monkeypatch, function_server):
        """`{"check": true}`: 200 with status ok and what it read, one request to the API, no run recorded; with the
        key revoked, status failed naming the secret to renew; entity resolution has no check (400)."""
        point_at(runtime, sandbox, monkeypatch)
        server = function_server("dialpad_sync")
        ok = server.post({"check": True})
        assert ok.status_code == 200 and ok.json()["status"] == "ok", ok.text
        (found,) = ok.json()["checks"]
        assert found["ok"] and found["target"] == "one page of calls" and sandbox.server.requests.total == 1
        monkeypatch.setenv("DIALPAD_API_KEY", "a-revoked-key-000")
        runtime.secrets = type(runtime.secrets)(runtime.settings)
        refused = server.post({"check": True}).json()
        assert refused["status"] == "failed" and "dialpad-api-key" in refused["checks"][0]["fix"]
        assert "a-revoked-key-000" not in json.dumps(refused)
        assert runtime.warehouse.query(f"SELECT * FROM {DS}.etl_runs") == []
        unchecked = function_server("entity_resolution").post({"check": True})
        assert unchecked.status_code == 400 and "no connection check" in unchecked.json()["error"]
