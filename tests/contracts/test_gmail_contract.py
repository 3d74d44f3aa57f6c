"""The Gmail sandbox against Google's published contract: every response the pipeline reads, validated against
the schemas of the Gmail discovery document (references/gmail/gmail.v1.json) and the token endpoint's answer
against RFC 6749 section 5.1 (references/gmail/oauth2-token-response.json). Responses are read through the real
client libraries (google-api-python-client, google-auth) and the pipeline's own Gmail client, as in production.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import googleapiclient
import pytest
import requests
from google.auth.transport.requests import Request

from cloud_functions.gmail_sync.auth import batch_uri, delegated_credentials, gmail_service
from cloud_functions.gmail_sync.client import GmailClient
from sandbox.gmail import HISTORY_TYPES, GmailSandbox

REFERENCES = Path(__file__).parent / "references" / "gmail"
DISCOVERY = json.loads((REFERENCES / "gmail.v1.json").read_text())
TOKEN = json.loads((REFERENCES / "oauth2-token-response.json").read_text())
MAILBOX = "alex@ourcompany.example"
INTEGER_RANGES = {"int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1)}
STRING_FORMATS = {"int64": re.compile(r"-?\d+"), "uint64": re.compile(r"\d+"), "byte": re.compile(r"[A-Za-z0-9_\-+/]*=*")}


def violations(value: Any, schema: dict[str, Any], document: dict[str, Any], path: str = "$") -> list[str]:
    """Where value breaks a discovery-document schema: types, unknown fields, required fields, int64/uint64 as
    decimal strings, byte as base64, int32/uint32 ranges, enums. Empty when it conforms."""
    if "$ref" in schema:
        return violations(value, document["schemas"][schema["$ref"]], document, path)
    kind, found = schema.get("type"), []
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not an object"]
        properties, extra = schema.get("properties", {}), schema.get("additionalProperties")
        found += [f"{path}.{name}: required, missing" for name in schema.get("required", []) if name not in value]
        for name, item in value.items():
            if name in properties:
                found += violations(item, properties[name], document, f"{path}.{name}")
            elif extra is not None:
                found += violations(item, extra, document, f"{path}.{name}")
            else:
                found.append(f"{path}.{name}: no such field in {schema.get('id', 'the schema')}")
        return found
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, not an array"]
        return [v for n, item in enumerate(value) for v in violations(item, schema["items"], document, f"{path}[{n}]")]
    return _scalar_violations(value, schema, path)


def _scalar_violations(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    kind, form = schema.get("type"), schema.get("format")
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: {type(value).__name__} {value!r}, not a string" + (f" ({form})" if form else "")]
        if form in STRING_FORMATS and not STRING_FORMATS[form].fullmatch(value):
            return [f"{path}: {value[:40]!r} is no {form}"]
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: {type(value).__name__} {value!r}, not an integer"]
        low, high = INTEGER_RANGES.get(form, (value, value))
        if not low <= value <= high:
            return [f"{path}: {value} outside {form}"]
    elif kind == "boolean" and not isinstance(value, bool):
        return [f"{path}: {value!r} is not a boolean"]
    elif kind == "number" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        return [f"{path}: {value!r} is not a number"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not one of {schema['enum']}"]
    return []


def response_schema(resource: str, method: str) -> dict[str, Any]:
    """The schema the discovery document gives for a users.<resource>.<method> response."""
    users = DISCOVERY["resources"]["users"]
    methods = users["methods"] if resource == "users" else users["resources"][resource]["methods"]
    return methods[method]["response"]


def empty_lists(value: Any, path: str = "$") -> list[str]:
    """Paths holding `[]`: Gmail leaves a field with no value out instead."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in empty_lists(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [path] if not value else [p for n, item in enumerate(value) for p in empty_lists(item, f"{path}[{n}]")]
    return []


def assert_conforms(body: Any, schema: dict[str, Any], document: dict[str, Any] = DISCOVERY) -> None:
    assert violations(body, schema, document) == []
    assert empty_lists(body) == []


@pytest.fixture(scope="module")
def sandbox():
    """A mailbox with the variety (drafts, spam, trash, chat, multipart) and history of every kind."""
    with GmailSandbox([MAILBOX], messages_per_mailbox=40) as running:
        state = running.state
        mail = [m for m in state.mailboxes[MAILBOX].messages.values() if m.labels in (["INBOX"], ["SENT"])]
        running.start_history = str(state.current_history(MAILBOX))
        draft = state.save_draft(MAILBOX, replacing=state.save_draft(MAILBOX).id)
        state.send_draft(MAILBOX, draft.id)
        state.relabel(MAILBOX, mail[0].id, add=("TRASH",), remove=tuple(mail[0].labels))
        state.relabel(MAILBOX, mail[1].id, add=("SPAM",))
        state.delete_message(MAILBOX, mail[2].id)
        state.add_message(MAILBOX)
        yield running


@pytest.fixture(scope="module")
def service(sandbox):
    endpoint = f"{sandbox.url}/"
    return gmail_service(delegated_credentials(sandbox.service_account_key(), MAILBOX), endpoint)


@pytest.fixture(scope="module")
def users(service):
    return service.users()


class TestReference:
    def test_the_copy_is_the_installed_librarys_document(self):
        """references/gmail/gmail.v1.json is the discovery document google-api-python-client ships (copy it again
        after an upgrade that changes it, and look at what changed)."""
        installed = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "gmail.v1.json"
        assert json.loads(installed.read_text()) == DISCOVERY

    @pytest.mark.parametrize("body, problem", [
        ({"id": "1", "internalDate": 1767000000000}, r"internalDate: int .* not a string"),
        ({"id": "1", "historyId": "12a"}, r"historyId: '12a' is no uint64"),
        ({"id": "1", "sizeEstimate": "120"}, r"sizeEstimate: str .* not an integer"),
        ({"id": "1", "labelIds": "INBOX"}, r"labelIds: str, not an array"),
        ({"id": "1", "payload": {"parts": [{"body": {"size": 2**31}}]}}, r"payload.parts\[0\].body.size: .* outside int32"),
        ({"id": "1", "label_ids": []}, r"label_ids: no such field in Message"),
    ])
    def test_the_validator_finds_what_breaks_the_schema(self, body, problem):
        """Wrong types, int64 not as a string, a non-numeric uint64, int32 overflow and unknown fields are found."""
        (found,) = violations(body, {"$ref": "Message"}, DISCOVERY)
        assert re.search(problem, found), found

    def test_the_validator_checks_enums_and_required_fields(self):
        """A token type outside the enum and a missing required field are found."""
        found = violations({"token_type": "MAC"}, {"$ref": "TokenResponse"}, TOKEN)
        assert any("access_token: required" in f for f in found) and any("not one of" in f for f in found)

    def test_the_sandbox_knows_every_documented_history_type_and_format(self):
        """The sandbox serves exactly the historyTypes and messages.get formats the discovery document lists."""
        users = DISCOVERY["resources"]["users"]["resources"]
        assert set(HISTORY_TYPES.values()) == set(users["history"]["methods"]["list"]["parameters"]["historyTypes"]["enum"])
        assert set(users["messages"]["methods"]["get"]["parameters"]["format"]["enum"]) == {"minimal", "full", "raw",
                                                                                             "metadata"}
        assert DISCOVERY["batchPath"] == "batch"


class TestSandboxResponses:
    def test_token_endpoint(self, sandbox):
        """The token endpoint's answer to google-auth's delegated JWT grant is an RFC 6749 token response."""
        answers: list[requests.Response] = []
        session = requests.Session()
        session.hooks["response"].append(lambda response, *args, **kwargs: answers.append(response))
        credentials = delegated_credentials(sandbox.service_account_key(), MAILBOX)
        credentials.refresh(Request(session))
        (answer,) = answers
        assert answer.status_code == 200 and credentials.token
        assert_conforms(answer.json(), {"$ref": "TokenResponse"}, TOKEN)

    def test_get_profile(self, users):
        """users.getProfile is a Profile."""
        assert_conforms(users.getProfile(userId="me").execute(), response_schema("users", "getProfile"))

    @pytest.mark.parametrize("query", [None, "after:4102444800"])  # everything; nothing (2100-01-01 on)
    def test_messages_list(self, users, query):
        """messages.list pages (and an empty answer) are ListMessagesResponses, ids and thread ids only."""
        token, pages = None, 0
        while True:
            body = users.messages().list(userId="me", q=query, maxResults=15, pageToken=token).execute()
            assert_conforms(body, response_schema("messages", "list"))
            assert all(set(m) == {"id", "threadId"} for m in body.get("messages", []))
            token, pages = body.get("nextPageToken"), pages + 1
            if not token:
                break
        assert pages == (1 if query else 3)

    @pytest.mark.parametrize("form", ["raw", "minimal", "full", "metadata"])
    def test_messages_get_direct_and_in_batches(self, sandbox, service, users, form):
        """messages.get in each format, alone and as batch parts (the pipeline's GmailClient), is a Message: raw
        with base64url `raw` and no payload, full with the MIME tree, the others without either."""
        ids = list(sandbox.state.mailboxes[MAILBOX].messages)
        schema = response_schema("messages", "get")
        assert_conforms(users.messages().get(userId="me", id=ids[0], format=form).execute(), schema)
        client = GmailClient(service, batch_uri(f"{sandbox.url}/"), _settings())
        resources = client.get_messages(ids, form)
        assert len(resources) == len(ids)
        for resource in resources:
            assert_conforms(resource, schema)
            assert ("raw" in resource) == (form == "raw") and ("payload" in resource) == (form in ("full", "metadata"))
        if form == "full":
            assert any("parts" in r["payload"] for r in resources), "a multipart message gives its parts"

    def test_history_list(self, sandbox, users):
        """history.list with every history type (messages added, deleted, labels added and removed), and from the
        current id (nothing), are ListHistoryResponses."""
        schema = response_schema("history", "list")
        body = users.history().list(userId="me", startHistoryId=sandbox.start_history,
                                    historyTypes=list(HISTORY_TYPES.values())).execute()
        assert_conforms(body, schema)
        kinds = {kind for entry in body["history"] for kind in entry if kind in HISTORY_TYPES}
        assert kinds == set(HISTORY_TYPES)
        latest = users.history().list(userId="me", startHistoryId=body["historyId"]).execute()
        assert_conforms(latest, schema)
        assert "history" not in latest


def _settings():
    from config.settings import Settings

    return Settings(_env_file=None, gmail_batch_size=10)
