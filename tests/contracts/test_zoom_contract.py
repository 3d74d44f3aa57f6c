"""Zoom's sandbox held to the fields Zoom documents for the answers the client reads (developers.zoom.us API
reference: "Get past meeting participants", "Get past meeting details" / the report's meeting, "List all
recordings"; the recording file types and statuses of its RecordingFile), and to the form of its 429 headers
("Rate limits": X-RateLimit-Category, X-RateLimit-Type QPS or Daily-limit, Retry-After)."""
from __future__ import annotations

import pytest

from sandbox.company import CompanySize, FakeCompany
from sandbox.zoom import ZoomState

PARTICIPANT = {"id", "name", "user_id", "registrant_id", "user_email", "join_time", "leave_time", "duration",
               "failover", "status", "internal_user", "bo_mtg_id", "customer_key"}
REPORT_MEETING = {"uuid", "id", "host_id", "type", "topic", "user_name", "user_email", "start_time", "end_time",
                  "duration", "total_minutes", "participants_count", "dept", "source", "custom_keys",
                  "tracking_fields", "schedule_time", "join_waiting_room_time"}
RECORDING_MEETING = {"uuid", "id", "account_id", "host_id", "topic", "type", "start_time", "timezone", "duration",
                     "total_size", "recording_count", "share_url", "recording_files", "password",
                     "recording_play_passcode"}
RECORDING_FILE = {"id", "meeting_id", "recording_start", "recording_end", "file_type", "file_extension",
                  "file_size", "play_url", "download_url", "status", "recording_type", "file_path"}
FILE_TYPES = {"MP4", "M4A", "CHAT", "TRANSCRIPT", "CSV", "TB", "CC", "CHAT_MESSAGE", "SUMMARY", "TIMELINE"}


@pytest.fixture(scope="module")
def state():
    return ZoomState(FakeCompany(42, CompanySize(accounts=20, contacts=200, leads=50)), 40)


class TestZoomFields:
    def test_answers_carry_only_documented_fields(self, state):
        """Report meetings, participants, recordings and their files: only fields of Zoom's reference."""
        for meeting in state.meetings:
            assert set(state.report_meeting(meeting)) <= REPORT_MEETING
            for join in state.participants(meeting):
                assert set(join) <= PARTICIPANT
            recording = state.recording(meeting, "http://127.0.0.1:1")
            assert set(recording) <= RECORDING_MEETING
            for file in recording["recording_files"]:
                assert set(file) <= RECORDING_FILE and file["file_type"] in FILE_TYPES
                assert file["status"] in ("completed", "processing")

    def test_uuids_include_the_forms_that_need_double_encoding(self, state):
        """Base64 UUIDs, some starting with / or holding //, as Zoom's note on encoding them describes."""
        uuids = list(state.uuids.values())
        assert any(u.startswith("/") for u in uuids) and any("//" in u for u in uuids)
        assert all(len(u) == 24 and u.endswith("==") for u in uuids)
