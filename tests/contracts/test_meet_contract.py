"""Google Meet's sandbox held to Google's own discovery documents (meet v2, calendar v3, as bundled with
google-api-python-client): every field the sandbox answers is a property of the schema the method documents,
typed as the schema says, so the records code reads only fields Google sends."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import googleapiclient
import pytest

from sandbox.company import CompanySize, FakeCompany
from sandbox.meet import MeetState

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
TYPES = {"string": str, "boolean": bool, "integer": int, "object": dict, "array": list}


def document(name: str) -> dict[str, Any]:
    return json.loads((DOCUMENTS / name).read_text())


def problems(value: Any, schema: dict[str, Any], schemas: dict[str, Any], where: str) -> list[str]:
    """What in value the schema does not allow: unknown fields, wrong JSON types (recursively)."""
    if "$ref" in schema:
        schema = schemas[schema["$ref"]]
    kind = schema.get("type")
    if kind and not isinstance(value, TYPES[kind]):
        return [f"{where}: {type(value).__name__}, the schema says {kind}"]
    found = []
    if isinstance(value, dict) and "properties" in schema:
        for key, inner in value.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}: not in the schema")
            else:
                found += problems(inner, schema["properties"][key], schemas, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for n, inner in enumerate(value):
            found += problems(inner, schema["items"], schemas, f"{where}[{n}]")
    return found


@pytest.fixture(scope="module")
def state():
    return MeetState(FakeCompany(42, CompanySize(accounts=20, contacts=200, leads=50)), 40)


class TestMeetSchemas:
    @pytest.mark.parametrize("schema, shape", [
        ("ConferenceRecord", "conference"), ("Space", "space"), ("Participant", "participants"),
        ("Transcript", "transcripts"), ("TranscriptEntry", "entries")])
    def test_meet_answers_have_only_documented_fields(self, state, schema, shape):
        """Conference records, spaces, participants (signed-in, anonymous, phone), transcripts and their entries
        carry only fields of Meet v2's schemas, typed as documented."""
        meet = document("meet.v2.json")["schemas"]
        seen = 0
        for meeting in state.meetings:
            answer = getattr(state, shape)(meeting)
            for n, item in enumerate(answer if isinstance(answer, list) else [answer]):
                assert problems(item, meet[schema], meet, f"{schema}[{meeting.index}.{n}]") == []
                seen += 1
        assert seen

    def test_calendar_events_have_only_documented_fields(self, state):
        """The Calendar events (attendees, organizer, conferenceData with the meeting code) carry only fields of
        Calendar v3's Event schema."""
        calendar = document("calendar.v3.json")["schemas"]
        for meeting in state.meetings:
            event = state.event(meeting)
            assert problems(event, calendar["Event"], calendar, f"Event[{meeting.index}]") == []
            assert event["conferenceData"]["conferenceId"] == state.space(meeting)["meetingCode"]

    def test_the_sandbox_sends_the_documented_variety(self, state):
        """Participants of each kind, transcripts in each state, attendees with and without a display name."""
        kinds = {key for m in state.meetings for p in state.participants(m) for key in p if key.endswith("User")}
        states = {t["state"] for m in state.meetings for t in state.transcripts(m)}
        named = {"displayName" in a for m in state.meetings for a in state.event(m)["attendees"]}
        assert kinds == {"signedinUser", "anonymousUser", "phoneUser"}
        assert states == {"FILE_GENERATED", "ENDED"} and named == {True, False}
        assert any(not state.entries(m) for m in state.meetings if m.transcript == "completed")  # only the Doc left
