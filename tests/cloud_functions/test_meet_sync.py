"""Google Meet sync end to end: functions-framework HTTP entry -> google-api-python-client (Meet, Calendar, Drive
through domain-wide delegation) -> loopback Meet -> DuckDB; and the records."""
from __future__ import annotations

from datetime import datetime

import pytest

from cloud_functions.meet_sync.records import conference_rows
from pipeline.runner import RejectedRecord
from sandbox.meet import MeetSandbox
from tests.helpers import point_at as aim

DS = "sales_intelligence"


@pytest.fixture
def sandbox():
    with MeetSandbox(18, spacing_hours=9) as sb:
        yield sb


def point_at(runtime, sandbox, monkeypatch, **overrides):
    return aim(runtime, sandbox, monkeypatch, **{"meet_lookback_hours": 4, **overrides})


def table(warehouse, name, order="1, 2, 3"):
    return warehouse.query(f"SELECT * EXCEPT (ingested_at) FROM {DS}.{name} ORDER BY {order}")


class TestSync:
    def test_full_incremental_and_repeat_over_http(self, runtime, sandbox, monkeypatch, function_server):
        """Full stores every conference once with attendee emails from Calendar and transcripts from entries or the
        Doc; incremental adds the new ones; a repeat changes nothing and reads no transcript again."""
        point_at(runtime, sandbox, monkeypatch)
        server = function_server("meet_sync")
        response = server.post({"sync_type": "full", "days": 8})
        assert response.status_code == 200, response.text
        body = response.json()
        assert [run["stream"] for run in body["runs"]] == ["conferences"]  # every user's, read as that user
        state = sandbox.state
        meetings = table(runtime.warehouse, "meetings")
        assert {m["meeting_id"] for m in meetings} == {f"conferenceRecords/cr{m.index:05d}" for m in state.meetings}
        assert all(m["calendar_event_id"] and m["topic"] for m in meetings)
        completed = [m for m in state.meetings if m.transcript == "completed"]
        transcripts = table(runtime.warehouse, "meeting_transcripts")
        assert {t["meeting_id"] for t in transcripts} == {f"conferenceRecords/cr{m.index:05d}" for m in completed}
        formats = {t["transcript_format"] for t in transcripts}
        assert formats == {"entries", "google_doc"}  # entries while Meet keeps them, the Doc after
        assert all("Thanks for making the time today." in t["transcript_text"] for t in transcripts)
        people = table(runtime.warehouse, "meeting_participants")
        invited = {g.email for m in state.meetings for g in m.guests if g.email}
        assert invited <= {p["email"] for p in people}  # every invited address, joined or not
        assert {p["role"] for p in people} >= {"organizer", "attendee", "invitee"}
        assert any(p["phone_e164"] for p in people) and any(p["email"] is None and p["phone_e164"] is None
                                                             for p in people)
        assert all(len({p["participant_key"] for p in people if p["meeting_id"] == m}) ==
                   len([p for p in people if p["meeting_id"] == m]) for m in {p["meeting_id"] for p in people})

        added = state.add_meetings(2)
        response = server.post({"sync_type": "incremental"})
        assert response.status_code == 200, response.text
        ids = {m["meeting_id"] for m in table(runtime.warehouse, "meetings")}
        assert {f"conferenceRecords/cr{m.index:05d}" for m in added} <= ids and len(ids) == len(state.meetings)
        before = [table(runtime.warehouse, t) for t in ("meetings", "meeting_participants", "meeting_transcripts")]
        reads = sandbox.server.requests.by_route["entries"] + sandbox.server.requests.by_route["export"]
        assert server.post({"sync_type": "incremental"}).status_code == 200
        assert [table(runtime.warehouse, t) for t in ("meetings", "meeting_participants", "meeting_transcripts")] == before
        assert sandbox.server.requests.by_route["entries"] + sandbox.server.requests.by_route["export"] == reads

    def test_each_warehouse_stores_the_conferences_once(self, org_runtime, sandbox, monkeypatch):
        """On DuckDB and on the BigQuery emulator: every conference stored, and a second full run adds nothing."""
        from cloud_functions.meet_sync.sync import MeetSyncRequest, run_meet_sync

        point_at(org_runtime, sandbox, monkeypatch)
        counts = []
        for _ in range(2):
            assert run_meet_sync(MeetSyncRequest(sync_type="full", days=8), org_runtime)["status"] == "success"
            counts.append({t: org_runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {org_runtime.warehouse.dataset}.{t}")[0]["n"]
                           for t in ("meetings", "meeting_participants", "meeting_transcripts")})
        assert counts[0] == counts[1] and counts[0]["meetings"] == len(sandbox.state.meetings)

    def test_a_transcript_still_being_written_is_read_once_generated(self, runtime, sandbox, monkeypatch):
        """A conference whose transcript is not generated yet is `processing`; a run after it is generated stores it."""
        from cloud_functions.meet_sync.sync import MeetSyncRequest, run_meet_sync

        point_at(runtime, sandbox, monkeypatch, meet_lookback_hours=24 * 9)
        assert run_meet_sync(MeetSyncRequest(sync_type="full", days=8), runtime)["status"] == "success"
        waiting = {m["meeting_id"] for m in table(runtime.warehouse, "meetings") if m["transcript_status"] == "processing"}
        assert waiting
        sandbox.state.finish_transcripts()
        assert run_meet_sync(MeetSyncRequest(), runtime)["status"] == "success"
        stored = {t["meeting_id"] for t in table(runtime.warehouse, "meeting_transcripts")}
        assert waiting <= stored
        assert not [m for m in table(runtime.warehouse, "meetings") if m["transcript_status"] == "processing"]

    def test_a_user_not_delegated_is_skipped_and_named(self, runtime, sandbox, monkeypatch):
        """A user the service account may not act as is skipped: the others' conferences are stored, and the run
        ends partial naming the user (its details say why)."""
        from cloud_functions.meet_sync.sync import MeetSyncRequest, run_meet_sync

        point_at(runtime, sandbox, monkeypatch, meet_users=["stranger@elsewhere.example", *sandbox.state.users])
        (run,) = run_meet_sync(MeetSyncRequest(sync_type="full", days=8), runtime)["runs"]
        assert run["status"] == "partial" and "stranger@elsewhere.example" in run["stop_reason"]
        assert "unauthorized_client" in run["details"]["users_refused"]["stranger@elsewhere.example"]
        assert len(table(runtime.warehouse, "meetings")) == len(sandbox.state.meetings)


CONFERENCE = {"name": "conferenceRecords/c1", "startTime": "2026-12-01T10:00:00Z", "endTime": "2026-12-01T10:30:00Z"}


class TestRecords:
    def test_emails_come_from_calendar_attendees_by_name(self):
        """A signed-in participant takes the email of the attendee with its name; the rest are invitees."""
        record = {"user": "alex@ourcompany.example", "conference": CONFERENCE, "space": {"meetingCode": "abc-defg-hij"},
                  "participants": [
                      {"name": "conferenceRecords/c1/participants/1", "signedinUser": {"user": "users/9",
                                                                                      "displayName": "Ana  Ruiz"},
                       "earliestStartTime": "2026-12-01T10:01:00Z", "latestEndTime": "2026-12-01T10:21:00Z"},
                      {"name": "conferenceRecords/c1/participants/2", "phoneUser": {"displayName": "+1 415-555-0134"}},
                      {"name": "conferenceRecords/c1/participants/3", "anonymousUser": {"displayName": "Guest"}}],
                  "event": {"id": "ev1", "summary": "Renewal", "organizer": {"email": "alex@ourcompany.example"},
                            "attendees": [{"email": "Ana.Ruiz@X.example", "displayName": "ana ruiz"},
                                          {"email": "bo@x.example"}]}}
        rows = conference_rows(record, "US")
        people = {p["participant_key"]: p for p in rows["meeting_participants"]}
        ana = people["ana.ruiz@x.example"]
        assert (ana["role"], ana["source_user_id"], ana["duration_seconds"]) == ("attendee", "users/9", 1200)
        assert people["bo@x.example"]["role"] == "invitee" and people["bo@x.example"]["joined_at"] is None
        assert people["conferenceRecords/c1/participants/2"]["phone_e164"] == "+14155550134"
        assert people["conferenceRecords/c1/participants/3"]["email"] is None
        meeting = rows["meetings"][0]
        assert (meeting["topic"], meeting["meeting_number"], meeting["participant_count"]) == ("Renewal", "abc-defg-hij", 3)
        assert meeting["transcript_status"] == "none"

    def test_entries_name_their_speakers_and_a_doc_is_text_only(self):
        """Entries become lines with the speaker's name; a transcript with only its Doc keeps the Doc's text."""
        participant = {"name": "p/1", "signedinUser": {"displayName": "Ana"}}
        entries = [{"participant": "p/1", "text": "Hi", "startTime": "2026-12-01T10:00:05Z", "languageCode": "en-US"}]
        record = {"conference": CONFERENCE, "participants": [participant], "transcripts": [
            {"transcript": {"name": "t1", "state": "FILE_GENERATED"}, "entries": entries},
            {"transcript": {"name": "t2", "state": "FILE_GENERATED"}, "entries": [], "document_text": "Ana: Hi\n"}]}
        rows = conference_rows(record, "US")["meeting_transcripts"]
        assert [(r["transcript_format"], r["transcript_text"], r["language_code"]) for r in rows] == [
            ("entries", "Ana: Hi", "en-US"), ("google_doc", "Ana: Hi", None)]
        assert rows[0]["transcript_lines"][0]["started_at"] == datetime.fromisoformat("2026-12-01T10:00:05+00:00")

    @pytest.mark.parametrize("conference, reason", [({"startTime": "2026-12-01T10:00:00Z"}, "missing name"),
                                                    ({"name": "c"}, "missing startTime")])
    def test_a_conference_without_name_or_start_is_rejected(self, conference, reason):
        """The name keys the meeting and the start partitions it: without either it is rejected with the reason."""
        with pytest.raises(RejectedRecord, match=reason):
            conference_rows({"conference": conference}, "US")
