"""Dialpad's sandbox and records code held to Dialpad's own OpenAPI spec (references/dialpad).

The real client (DialpadClient over requests) reads the loopback sandbox; every body it reads, and every
query it sends, is checked against the spec's schemas and parameters. The spec's own examples go through
records.py. The validator's two wire rules (int64 as string or number, date-time with or without an
offset) are in dialpad_openapi.py.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from api_clients.http_json import bearer_session
from cloud_functions.dialpad_sync.client import DialpadClient
from cloud_functions.dialpad_sync.records import TRANSCRIPT, call_row, transcript_row
from sandbox.dialpad import DialpadSandbox
from tests.contracts import dialpad_openapi as spec

CALLS, TRANSCRIPT_PATH, ONE_CALL = "/api/v2/call", "/api/v2/transcripts/{call_id}", "/api/v2/call/{id}"
UTC = timezone.utc


class Read:
    """What the real client read from the sandbox: (spec path, query, body) per answer."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, dict[str, list[str]], Any]] = []

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        url = urlsplit(response.url)
        path = TRANSCRIPT_PATH if url.path.startswith("/api/v2/transcripts/") else url.path
        self.answers.append((path, parse_qs(url.query), response.json() if response.ok else None))

    def bodies(self, path: str) -> list[Any]:
        return [body for p, _, body in self.answers if p == path and body is not None]


@pytest.fixture(scope="module")
def read() -> Read:
    """Every call page (two days in 4-hour windows, pages of 7) and every recorded call's transcript."""
    from config.settings import Settings

    seen = Read()
    with DialpadSandbox(150, page_size=7, requests_per_second=1000) as sandbox:
        session = bearer_session(sandbox.state.api_key)
        session.hooks["response"].append(seen.hook)
        client = DialpadClient(sandbox.state.api_key, Settings(_env_file=None, dialpad_base_url=sandbox.url,
                                                        dialpad_requests_per_second=1000),
                               session=session)
        end = datetime.now(UTC) + timedelta(hours=1)
        start = end - timedelta(days=2)
        calls = []
        while start < end:
            for page in client.call_pages(int(start.timestamp() * 1000), int((start + timedelta(hours=4)).timestamp() * 1000)):
                calls += page
            start += timedelta(hours=4)
        client.transcripts([str(c["call_id"]) for c in calls if c.get("was_recorded")])
        seen.answers.append((ONE_CALL, {}, requests.get(f"{sandbox.url}/api/v2/call/{calls[0]['call_id']}",
                                                       headers=session.headers, timeout=5).json()))
    return seen


class TestTheSpecAndTheValidator:
    @pytest.mark.parametrize("path", [ONE_CALL, TRANSCRIPT_PATH])
    def test_the_specs_examples_meet_its_schemas(self, path):
        """Dialpad's own examples pass the validator (its int64 strings and timezone-less times included)."""
        (example,) = spec.response_examples(path)
        assert spec.errors(example, spec.response_schema(path)) == []

    @pytest.mark.parametrize("body, problem", [
        ({"items": [{"call_id": "12a"}]}, "is not an int64"),
        ({"items": [{"call_id": str(2**63)}]}, "is not an int64"),
        ({"items": [{"was_recorded": "true"}]}, "is not a boolean"),
        ({"items": [{"duration": "n/a"}]}, "is not a number"),
        ({"items": [{"target": {"id": 5}}]}, "is not a string"),
        ({"items": [{"transcript": "x"}]}, "not in the spec"),
        ({"items": {}}, "is not an array"),
        ({"cursor": 3}, "is not a string"),
    ])
    def test_the_validator_refuses_what_the_spec_rules_out(self, body, problem):
        """Wrong types, out-of-range int64, unknown fields: each named, so a passing check means something."""
        (found,) = spec.errors(body, spec.response_schema(CALLS))
        assert problem in found

    @pytest.mark.parametrize("line, problem", [
        ({"type": "speech"}, "is not one of"),
        ({"time": "08/05/2018 21:33"}, "is not a date-time"),
        ({"user_id": "u2"}, "is not an int64"),
    ])
    def test_transcript_lines_are_held_to_the_enum_and_formats(self, line, problem):
        """A line type outside the enum, a time that is not ISO 8601, a user id that is not an int64: refused."""
        (found,) = spec.errors({"lines": [line]}, spec.response_schema(TRANSCRIPT_PATH))
        assert problem in found


class TestSandboxAnswers:
    def test_every_call_page_meets_call_collection(self, read):
        """Each call-list page the client read is a valid CallCollection, and there were several per window."""
        pages = read.bodies(CALLS)
        assert len(pages) > 12 and sum(len(p.get("items") or []) for p in pages) >= 140
        assert [e for page in pages for e in spec.errors(page, spec.response_schema(CALLS))] == []

    def test_every_transcript_meets_transcript_proto(self, read):
        """Each transcript the client read is a valid TranscriptProto."""
        transcripts = read.bodies(TRANSCRIPT_PATH)
        assert len(transcripts) > 30
        assert [e for t in transcripts for e in spec.errors(t, spec.response_schema(TRANSCRIPT_PATH))] == []

    def test_the_single_call_route_meets_call_proto(self, read):
        """GET /call/{id} (never used by the client, served by the sandbox) answers a valid CallProto."""
        (body,) = read.bodies(ONE_CALL)
        assert body["call_id"] and spec.errors(body, spec.response_schema(ONE_CALL)) == []

    def test_every_query_the_client_sends_is_declared(self, read):
        """The client sends only the parameters GET /call declares, with int64 filters."""
        queries = [query for path, query, _ in read.answers if path == CALLS]
        assert [e for q in queries for e in spec.query_errors(CALLS, q)] == []

    def test_every_page_carries_the_window_filters(self, read):
        """A page after the first sends the cursor and the date filters again, as Dialpad's SDK does."""
        queries = [query for path, query, _ in read.answers if path == CALLS]
        assert any("cursor" in q for q in queries)
        assert all({"started_after", "started_before"} <= set(q) for q in queries)


class TestSandboxVariety:
    def test_the_sandbox_sends_the_shapes_the_spec_shows(self, read):
        """int64 as strings and numbers, AI moments of each kind, lines out of time order, timezone-less times
        with microseconds, times with a Z, a transcript with no lines: every shape the spec shows or allows is sent."""
        calls = [c for page in read.bodies(CALLS) for c in page["items"]]
        lines = [line for t in read.bodies(TRANSCRIPT_PATH) for line in t.get("lines", [])]
        assert any("lines" not in t for t in read.bodies(TRANSCRIPT_PATH))
        assert {type(c["call_id"]) for c in calls} == {type(c["date_started"]) for c in calls} == {int, str}
        assert {type(line["user_id"]) for line in lines if "user_id" in line} == {int, str}
        line_types = spec.spec()["components"]["schemas"]["schemas.transcript.TranscriptLineProto"]["properties"]["type"]
        assert {line["type"] for line in lines} == set(line_types["enum"])
        naive = [line["time"] for line in lines if line["time"][-1] != "Z"]
        assert naive and all(len(t) == 26 and t[19] == "." for t in naive) and len(naive) < len(lines)
        assert any(_out_of_order(t.get("lines", [])) for t in read.bodies(TRANSCRIPT_PATH))

    def test_a_cursor_does_not_carry_the_filters(self):
        """The sandbox's cursor holds only the position: a page asked with the cursor alone is unfiltered."""
        with DialpadSandbox(30, page_size=5) as sandbox:
            get = lambda **params: requests.get(f"{sandbox.url}/api/v2/call", params=params, timeout=5,  # noqa: E731
                                                headers={"Authorization": f"Bearer {sandbox.state.api_key}"}).json()
            starts = sorted(int(c["date_started"]) for c in sandbox.state.calls)
            window = {"started_after": starts[9], "started_before": starts[20]}
            cursor = get(**window)["cursor"]
            assert len(get(**window, cursor=cursor)["items"]) == 5
            alone = get(cursor=cursor)["items"]
            assert max(int(c["date_started"]) for c in alone) > starts[20]


def _out_of_order(lines: list[dict[str, Any]]) -> bool:
    times = [datetime.fromisoformat(line["time"].replace("Z", "")) for line in lines]
    return times != sorted(times)


class TestTheSpecsExamplesThroughRecords:
    def test_the_call_example_becomes_a_row(self):
        """Dialpad's example call (int64 as strings) is a dialpad_calls row with its times and numbers."""
        (call,) = spec.response_examples(ONE_CALL)
        row = call_row(call, "US")
        started = datetime(2013, 1, 1, tzinfo=UTC)
        assert row["call_id"] == "1002" and row["started_at"] == row["connected_at"] == started
        assert (row["external_number_e164"], row["internal_number_e164"]) == ("+14155557777", "+14155551001")
        assert (row["target_id"], row["target_type"], row["target_email"]) == ("2", "user", "bot@fuzz-ball.com")
        assert (row["contact_id"], row["contact_name"], row["contact_email"]) == ("1001", "(415) 555-7777", None)
        assert row["was_recorded"] is False and row["ended_at"] is None

    def test_the_transcript_example_is_what_people_said_in_time_order(self):
        """Dialpad's example transcript: its two spoken lines as text in time order, its two moments kept
        apart as data, times (timezone-less, microseconds) read as UTC."""
        (call,) = spec.response_examples(ONE_CALL)
        (transcript,) = spec.response_examples(TRANSCRIPT_PATH)
        row = transcript_row({**call, TRANSCRIPT: transcript}, call_row(call, "US"))
        assert row["transcript_text"] == "テÉst Bot: hello [expletive]\n(415) 555-6666: hi"
        assert [(line["content"], line["time"]) for line in row["transcript_lines"]] == [
            ("hello [expletive]", datetime(2018, 5, 8, 21, 33, 15, 300000, tzinfo=UTC)),
            ("hi", datetime(2018, 5, 8, 21, 33, 19, 300000, tzinfo=UTC))]
        assert [(m["type"], m["content"], m["user_id"], m["time"].second) for m in row["transcript_moments"]] == [
            ("moment", "not_white_listed_moment", "2", 16), ("moment", "price_inquiry", "2", 17)]

    def test_records_read_only_fields_the_spec_names(self):
        """Every key call_row and transcript_row read from a call or a line is a property of the spec's schemas."""
        (call,) = spec.response_examples(ONE_CALL)
        (transcript,) = spec.response_examples(TRANSCRIPT_PATH)
        read: set[str] = set()
        traced = _Traced({**call, TRANSCRIPT: {**transcript, "lines": [_Traced(x, read, "line.") for x in transcript["lines"]]},
                          "target": _Traced(call["target"], read, "contact."),
                          "contact": _Traced(call["contact"], read, "contact.")}, read, "call.")
        transcript_row(traced, call_row(traced, "US"))
        schemas = spec.spec()["components"]["schemas"]
        named = {f"call.{k}" for k in schemas["schemas.call.CallProto"]["properties"]}
        named |= {f"contact.{k}" for k in schemas["schemas.call.CallContactProto"]["properties"]}
        named |= {f"line.{k}" for k in schemas["schemas.transcript.TranscriptLineProto"]["properties"]}
        assert read - {f"call.{TRANSCRIPT}"} <= named and {"call.call_id", "line.time", "line.type"} <= read


class _Traced(dict):
    """A dict that notes each key read with get() or [] (prefixed), for the fields-read check."""

    def __init__(self, data: dict[str, Any], seen: set[str], prefix: str):
        super().__init__(data)
        self._seen, self._prefix = seen, prefix

    def get(self, key: Any, default: Any = None) -> Any:
        self._seen.add(f"{self._prefix}{key}")
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self._seen.add(f"{self._prefix}{key}")
        return super().__getitem__(key)
