"""Request validation and the JSON HTTP entry wrapper."""
from __future__ import annotations

import json
from typing import Literal

import flask
import pytest
from pydantic import Field

from http_entry.handler import handle_request
from http_entry.validation import MAX_BODY_BYTES, BadRequest, SyncRequest, parse_body


class ExampleRequest(SyncRequest):
    object_type: Literal["Account", "Contact", "all"] = "all"
    days: int = Field(30, ge=1, le=3650)


@pytest.mark.parametrize("body, message", [
    (b'{"object_type": "Account", "colour": "red"}', "colour: unknown field"),
    (b'{"days": "many"}', "days: Input should be a valid integer"),
    (b'{"days": 0}', "days: Input should be greater than or equal to 1"),
    (b'{"sync_type": "sometimes"}', "sync_type: Input should be 'incremental' or 'full'"),
    (b'{"object_type": "Banana"}', "object_type: Input should be"),
    (b"[1, 2]", "must be a JSON object, not list"),
    (b"{not json", "not valid JSON"),
    (b'{"days": "7"}', "days: Input should be a valid integer"),
    (b'{"days": true}', "days: Input should be a valid integer"),
    (b'{"days": 7.0}', "days: Input should be a valid integer"),
    (b'{"sync_type": 1}', "sync_type: Input should be 'incremental' or 'full'"),
    (b"[" * 5000 + b"]" * 5000, "not valid JSON: nested too deeply"),
    (b'{"a": ' * 5000 + b"1" + b"}" * 5000, "not valid JSON: nested too deeply"),
    (b'{"days": ' + b"9" * 5000 + b"}", "not valid JSON: Exceeds the limit"),
    (b"\xff\xfe{}", "not valid JSON"),
    (b'{"x": "' + b"a" * MAX_BODY_BYTES + b'"}', "the limit is"),
])
def test_bad_bodies_are_refused_with_what_is_wrong(body, message):
    """Unknown fields, wrong types, out-of-range values, non-objects, bad JSON and huge bodies are refused."""
    with pytest.raises(BadRequest, match=message):
        parse_body(body, ExampleRequest)


@pytest.mark.parametrize("body, expected", [
    (b"", {"sync_type": "incremental", "object_type": "all", "days": 30}),
    (b"  ", {"sync_type": "incremental", "object_type": "all", "days": 30}),
    (b'{"sync_type": "full", "object_type": "Contact", "days": 7}', {"sync_type": "full", "object_type": "Contact", "days": 7}),
])
def test_good_bodies_get_defaults(body, expected):
    """An empty body means the defaults; given values are taken as they are."""
    parsed = parse_body(body, ExampleRequest).model_dump()
    assert {k: parsed[k] for k in expected} == expected


class TestHandleRequest:
    app = flask.Flask(__name__)

    @pytest.fixture(autouse=True)
    def _own_runtime(self, runtime):
        """get_runtime() answers this test's runtime (its warehouse, its error file)."""
        self.runtime = runtime

    def call(self, body, run, method="POST"):
        with self.app.test_request_context(method=method, data=body, content_type="application/json"):
            text, status, headers = handle_request(flask.request, ExampleRequest, lambda r, _runtime: run(r),
                                                   source="testsource")
        assert headers["Content-Type"] == "application/json"
        return status, json.loads(text)

    def test_valid_request_runs_and_answers_the_summary(self):
        """A valid body reaches the run function; its summary is the 200 answer."""
        status, body = self.call(b'{"object_type": "Account"}', lambda r: {"status": "success", "object": r.object_type})
        assert (status, body) == (200, {"status": "success", "object": "Account"})

    def test_invalid_request_is_400_and_never_runs(self):
        """A bad body answers 400 with the reason and does not start a run."""
        ran = []
        status, body = self.call(b'{"nope": 1}', lambda r: ran.append(r) or {})
        assert status == 400 and body == {"error": "nope: unknown field"} and ran == []

    def test_failed_run_is_500_with_its_run_id(self):
        """An exception from the run answers 500 with its type, text and run id."""
        def run(request):
            error = RuntimeError("Salesforce said no")
            error.run_id = "salesforce-1"
            raise error

        status, body = self.call(b"{}", run)
        assert status == 500
        assert body == {"error": "Salesforce said no", "error_type": "RuntimeError", "run_id": "salesforce-1"}

    def test_failure_before_the_run_started_is_recorded(self):
        """An error raised before any run opened (a missing secret) still leaves a failed etl_runs row and a
        published error, and the 500 names that run id."""
        def run(request):
            raise LookupError("secret 'dialpad-api-key' is not configured")

        status, body = self.call(b'{"sync_type": "full"}', run)
        assert status == 500 and body["run_id"].startswith("testsource-")
        warehouse = self.runtime.warehouse
        (row,) = warehouse.query(f"SELECT * FROM {warehouse.dataset}.etl_runs")
        assert (row["run_id"], row["status"], row["sync_type"], row["error_type"]) == (
            body["run_id"], "failed", "full", "LookupError")
        assert "dialpad-api-key" in row["error_message"]
        (published,) = [json.loads(line) for line in self.runtime.settings.errors_file.read_text().splitlines()]
        assert published["run_id"] == body["run_id"] and published["context"]["stage"] == "before the run started"

    @pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
    def test_other_methods_are_405(self, method):
        """Only POST starts a run: a GET (a browser, a crawler) never runs a sync."""
        ran = []
        status, _ = self.call(b"{}", lambda r: ran.append(r) or {}, method=method)
        assert status == 405 and ran == []
