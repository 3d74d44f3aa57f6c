"""Zoom sync end to end: functions-framework HTTP entry -> requests -> loopback Zoom (OAuth, report, recordings,
VTT downloads) -> DuckDB; the records and the webhook signature scheme."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cloud_functions.zoom_sync import webhooks
from cloud_functions.zoom_sync.client import path_uuid
from cloud_functions.zoom_sync.records import meeting_rows, vtt_cues
from pipeline.runner import RejectedRecord
from sandbox.zoom import ZoomSandbox, send_url_validation, vtt
from tests.helpers import point_at as aim

DS = "sales_intelligence"


@pytest.fixture
def sandbox():
    with ZoomSandbox(24, spacing_hours=8) as sb:
        yield sb


def point_at(runtime, sandbox, monkeypatch, **overrides):
    return aim(runtime, sandbox, monkeypatch, **{"zoom_lookback_hours": 4, **overrides})


def table(warehouse, name, order):
    return warehouse.query(f"SELECT * EXCEPT (ingested_at) FROM {DS}.{name} ORDER BY {order}")


class TestSync:
    def test_full_incremental_and_repeat_over_http(self, runtime, sandbox, monkeypatch, function_server):
        """Full stores every meeting, person and finished transcript once; incremental adds the new ones and the
        transcripts finished since; a repeat changes nothing."""
        point_at(runtime, sandbox, monkeypatch)
        server = function_server("zoom_sync")
        response = server.post({"sync_type": "full", "days": 10})
        assert response.status_code == 200, response.text
        run = response.json()["runs"][0]
        state = sandbox.state
        meetings = table(runtime.warehouse, "meetings", "meeting_id")
        assert {m["meeting_id"] for m in meetings} == set(state.uuids.values())
        completed = {state.uuids[m.index] for m in state.meetings if m.transcript == "completed"}
        transcripts = table(runtime.warehouse, "meeting_transcripts", "meeting_id")
        assert {t["meeting_id"] for t in transcripts} == completed and all(t["transcript_text"] for t in transcripts)
        assert run["details"]["transcripts_fetched"] == len(completed)
        statuses = {m["meeting_id"]: m["transcript_status"] for m in meetings}
        assert {statuses[state.uuids[m.index]] for m in state.meetings if not m.recorded} == {"none"}
        assert {statuses[state.uuids[m.index]] for m in state.meetings if m.transcript == "processing"} <= {"processing"}
        people = table(runtime.warehouse, "meeting_participants", "meeting_id, participant_key")
        joined = sum(1 + len([g for g in m.guests if g.joined]) for m in state.meetings)
        assert len(people) == joined  # a rejoin is one person
        assert any(p["phone_e164"] and p["email"] is None for p in people)  # a dial-in, matched by phone
        assert any(p["email"] is None and p["phone_e164"] is None for p in people)  # a guest Zoom has no email for
        assert sandbox.server.requests.statuses[404] == 0  # every double-encoded UUID found

        processing = [m for m in state.meetings if m.transcript == "processing"]
        assert processing and state.finish_transcripts() == len(processing)
        added = state.add_meetings(3)
        response = server.post({"sync_type": "incremental"})
        assert response.status_code == 200, response.text
        assert {m["meeting_id"] for m in table(runtime.warehouse, "meetings", "meeting_id")} == set(state.uuids.values())
        # Read again: the days from the watermark less the look-back (a transcript finished later than that is not)
        since = (datetime.fromisoformat(run["watermark_after"]) - timedelta(hours=4)).date()
        again = {state.uuids[m.index] for m in processing + added if m.transcript == "completed"
                 and m.started.date() >= since}
        after = {t["meeting_id"] for t in table(runtime.warehouse, "meeting_transcripts", "meeting_id")}
        assert after == completed | again
        before = [table(runtime.warehouse, t, "1, 2") for t in ("meetings", "meeting_participants", "meeting_transcripts")]
        downloads = sandbox.server.requests.by_route["download"]
        assert server.post({"sync_type": "incremental"}).status_code == 200
        assert [table(runtime.warehouse, t, "1, 2") for t in ("meetings", "meeting_participants",
                                                              "meeting_transcripts")] == before
        assert sandbox.server.requests.by_route["download"] == downloads  # a stored transcript is not downloaded again

    def test_each_warehouse_stores_the_meetings_once(self, org_runtime, sandbox, monkeypatch):
        """On DuckDB and on the BigQuery emulator: every meeting stored, and a second full run adds nothing."""
        from cloud_functions.zoom_sync.sync import ZoomSyncRequest, run_zoom_sync

        point_at(org_runtime, sandbox, monkeypatch)
        counts = []
        for _ in range(2):
            assert run_zoom_sync(ZoomSyncRequest(sync_type="full", days=10), org_runtime)["status"] == "success"
            counts.append({t: org_runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {org_runtime.warehouse.dataset}.{t}")[0]["n"]
                           for t in ("meetings", "meeting_participants", "meeting_transcripts")})
        assert counts[0] == counts[1] and counts[0]["meetings"] == len(sandbox.state.meetings)

    def test_daily_limit_ends_the_run_partial_and_qps_429s_are_retried(self, runtime, monkeypatch):
        """A 429 of type QPS is waited out and retried; Daily-limit ends the run partial with its watermark kept."""
        from cloud_functions.zoom_sync.sync import ZoomSyncRequest, run_zoom_sync

        with ZoomSandbox(12, spacing_hours=60, heavy_daily_limit=4) as sandbox:
            point_at(runtime, sandbox, monkeypatch, zoom_window_days=7)
            sandbox.server.faults.fail_next(2, status=429, path_pattern=r"/participants$",
                                            headers={"X-RateLimit-Category": "Medium", "X-RateLimit-Type": "QPS",
                                                     "Retry-After": "0"})
            answer = run_zoom_sync(ZoomSyncRequest(sync_type="full", days=30), runtime)
        run = answer["runs"][0]
        assert run["status"] == "partial" and "daily rate limit" in run["stop_reason"]
        assert run["watermark_after"] is not None  # the windows read before the limit are kept
        assert sandbox.state.heavy_today.refused == 1  # stopped at the first refusal, not retried all day

    def test_an_expired_token_is_replaced(self, runtime, monkeypatch):
        """A token the API refuses (401) is asked for again once and the call goes through."""
        from cloud_functions.zoom_sync.sync import ZoomSyncRequest, client_for, run_zoom_sync

        with ZoomSandbox(6, spacing_hours=8) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            client = client_for(runtime)
            client.users()
            sandbox.state.tokens.clear()  # every token issued so far is no longer valid
            answer = run_zoom_sync(ZoomSyncRequest(sync_type="full", days=5), runtime, client)
        assert answer["status"] == "success" and client.tokens.issued == 2


class TestCheck:
    def test_a_refused_app_names_the_secrets_and_the_guide(self, runtime, sandbox, monkeypatch):
        """The connection check with a wrong client secret fails, saying which secrets and which guide section."""
        from cloud_functions.zoom_sync.sync import check_zoom

        point_at(runtime, sandbox, monkeypatch)
        monkeypatch.setenv("ZOOM_CLIENT_SECRET", "not-the-secret")
        (result,) = check_zoom(runtime)
        assert not result.ok and "401" in result.detail and "not-the-secret" not in result.detail
        assert result.fix.startswith("the credential was refused: save the Server-to-Server OAuth app's")
        assert "(docs/SETUP.md, 6. Zoom)" in result.fix


class TestRecords:
    def test_vtt_cues_keep_speaker_text_and_times(self):
        """A Zoom VTT's cues become speaker, text and offsets; a cue without "Name: " keeps its text whole."""
        text = "WEBVTT\n\n1\n00:00:01.500 --> 00:00:04.000\nAna Ruiz: Hello: there\n\n2\n01:02:03.004 --> 01:02:05.000\nno speaker\n"
        assert vtt_cues(text) == [
            {"speaker": "Ana Ruiz", "text": "Hello: there", "start_ms": 1500, "end_ms": 4000},
            {"speaker": None, "text": "no speaker", "start_ms": 3_723_004, "end_ms": 3_725_000}]

    def test_rejoins_are_one_person_and_dial_ins_keep_their_number(self):
        """Two joins of one address are one row (first join, last leave, summed time); a number as name is a phone."""
        meeting = {"uuid": "u1==", "start_time": "2026-12-01T10:00:00Z", "user_email": "Alex@ourcompany.example"}
        joins = [
            {"id": "h", "name": "Alex", "user_email": "alex@ourcompany.example", "join_time": "2026-12-01T10:00:00Z",
             "leave_time": "2026-12-01T10:30:00Z", "duration": 1800},
            {"id": "g", "name": "Bo", "user_email": "BO@x.example", "join_time": "2026-12-01T10:01:00Z",
             "leave_time": "2026-12-01T10:10:00Z", "duration": 540},
            {"id": "g", "name": "Bo", "user_email": "bo@x.example", "join_time": "2026-12-01T10:12:00Z",
             "leave_time": "2026-12-01T10:29:00Z", "duration": 1020},
            {"id": "", "name": "+1 415-555-0134", "user_email": "", "join_time": "2026-12-01T10:02:00Z"},
        ]
        rows = meeting_rows({"meeting": meeting, "participants": joins}, "US")
        people = {p["participant_key"]: p for p in rows["meeting_participants"]}
        assert people["alex@ourcompany.example"]["role"] == "host"
        bo = people["bo@x.example"]
        assert (bo["duration_seconds"], bo["joined_at"].minute, bo["left_at"].minute) == (1560, 1, 29)
        assert people["+1 415-555-0134"]["phone_e164"] == "+14155550134" and people["+1 415-555-0134"]["email"] is None
        assert rows["meetings"][0]["transcript_status"] == "none" and rows["meeting_transcripts"] == []

    @pytest.mark.parametrize("meeting, reason", [({"start_time": "2026-12-01T10:00:00Z"}, "missing uuid"),
                                                 ({"uuid": "x"}, "missing start_time"),
                                                 ({"uuid": "x", "start_time": "not a time"}, "impossible start_time")])
    def test_a_meeting_without_uuid_or_start_is_rejected(self, meeting, reason):
        """The uuid keys the meeting and the start partitions it: without either it is rejected with the reason."""
        with pytest.raises(RejectedRecord, match=reason):
            meeting_rows({"meeting": meeting}, "US")

    @pytest.mark.parametrize("uuid, path", [("abc+d==", "abc%2Bd%3D%3D"), ("/ab+c==", "%252Fab%252Bc%253D%253D"),
                                            ("ab//c==", "ab%252F%252Fc%253D%253D")])
    def test_uuids_with_slashes_are_encoded_twice(self, uuid, path):
        """A UUID starting with / or holding // is encoded twice in a path, any other once."""
        assert path_uuid(uuid) == path


class _Receiver(BaseHTTPRequestHandler):
    secret = "webhook-secret"
    events: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = webhooks.verified(self.secret, dict(self.headers.items()), body, time.time())
        event = json.loads(body)
        answer = webhooks.url_validation_answer(self.secret, event) if event["event"] == "endpoint.url_validation" else {}
        if ok:
            self.events.append(webhooks.transcript_completed(body))
        payload = json.dumps(answer).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class TestWebhooks:
    def test_sandbox_events_validate_and_verify(self, sandbox):
        """The sandbox's URL validation accepts our answer, its signed transcript event verifies, a wrong secret not."""
        receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{receiver.server_address[1]}/"
        try:
            assert send_url_validation(url, "webhook-secret")
            assert not send_url_validation(url, "another-secret")
            meeting = sandbox.state.meetings[0]
            assert sandbox.send_transcript_completed(url, "webhook-secret", meeting).status_code == 200
            assert sandbox.send_transcript_completed(url, "another-secret", meeting).status_code == 401
        finally:
            receiver.shutdown()
        assert [event["uuid"] for event in _Receiver.events if event] == [sandbox.state.uuids[meeting.index]]

    def test_an_old_or_altered_request_is_refused(self):
        """A signature older than five minutes, or over another body, does not verify."""
        body, now = b'{"event": "recording.transcript_completed"}', datetime.now(timezone.utc).timestamp()
        headers = {"x-zm-request-timestamp": str(int(now)), "x-zm-signature": webhooks.signature("s", str(int(now)), body)}
        assert webhooks.verified("s", headers, body, now)
        assert not webhooks.verified("s", headers, body + b" ", now)
        assert not webhooks.verified("s", headers, body, now + 301)

    def test_sandbox_vtt_reads_back(self, sandbox):
        """The sandbox's VTT reads back into the meeting's lines, speakers named."""
        meeting = sandbox.state.meetings[0]
        assert [(c["speaker"], c["text"]) for c in vtt_cues(vtt(meeting))] == [(s, t) for _o, s, t in meeting.lines()]
