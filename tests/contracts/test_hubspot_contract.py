"""The HubSpot sandbox against HubSpot's published contract: hubspot-api-client's generated models, validating, for
owners and contacts search; HubSpot's documentation (references/hubspot/) for the v4 sequences API and for 429s."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest

from cloud_functions.hubspot_sync.client import HubSpotClient
from cloud_functions.hubspot_sync.records import enrollment_rows, sequence_row
from sandbox.hubspot import NOT_ENROLLED_FORMS, HubSpotSandbox

REFERENCES = Path(__file__).parent / "references" / "hubspot"
CONTRACT = json.loads((REFERENCES / "contract.json").read_text())


def example(answer: str) -> Any:
    return json.loads((REFERENCES / CONTRACT[answer]["example"]).read_text())


def validating(sandbox: HubSpotSandbox) -> HubSpot:
    """The SDK with client-side validation on: its models refuse a missing required field or a value off its enum."""
    return HubSpot(access_token=sandbox.state.token, host=sandbox.url, client_side_validation=True)


def deserialize(package: Any, body: Any, model: str) -> Any:
    """body read as the SDK reads an answer, through one of its packages' models, validating."""
    configuration = package.Configuration()
    configuration.client_side_validation = True
    return package.ApiClient(configuration).deserialize(SimpleNamespace(data=json.dumps(body)), model)


def is_date_time(value: Any) -> bool:
    try:
        return isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


def violations(value: Any, rules: dict[str, Any], where: str = "") -> list[str]:
    """Where value breaks contract.json's rules for it (required fields, types, nested objects and lists)."""
    if not isinstance(value, dict):
        return [f"{where or 'answer'} is not an object"]
    found = [f"{where}{name} missing" for name in rules.get("required", []) if name not in value]
    checks = {"string": lambda v: isinstance(v, str), "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "date-time": is_date_time}
    for kind, check in checks.items():
        found += [f"{where}{name} is not {kind}: {value[name]!r}" for name in rules.get(kind, [])
                  if name in value and not check(value[name])]
    for name, inner in rules.get("object", {}).items():
        if name in value:
            found += violations(value[name], inner, f"{where}{name}.")
    for name, inner in rules.get("each", {}).items():
        for number, item in enumerate(value.get(name) or []):
            found += violations(item, inner, f"{where}{name}[{number}].")
    return found


class TestOwners:
    def test_every_owners_page_passes_the_validating_model(self):
        """Each owners page deserialises through PublicOwner with validation (type required: PERSON or QUEUE);
        people and queues both come, and each owner once over the pages."""
        with HubSpotSandbox(5) as sandbox:
            owners, after = [], None
            while True:
                page = validating(sandbox).crm.owners.owners_api.get_page(limit=2, after=after, archived=False)
                owners += page.results
                if not page.paging or not page.paging.next:
                    break
                after = page.paging.next.after
            assert sorted(o.id for o in owners) == sorted(o["id"] for o in sandbox.state.owners)
            assert {o.type for o in owners} == {"PERSON", "QUEUE"}

    def test_an_owner_without_type_is_refused(self):
        """The reference bites: an owner as the sandbox used to send it (no type) fails PublicOwner's validation."""
        import hubspot.crm.owners as owners

        with HubSpotSandbox(1) as sandbox:
            owner = {name: value for name, value in sandbox.state.owners[0].items() if name != "type"}
        with pytest.raises(ValueError, match="`type`"):
            deserialize(owners, {"results": [owner]}, "CollectionResponsePublicOwnerForwardPaging")


SORTS = {
    "documented object, ascending": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
    "documented object, descending": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
    "the SDK's string": ["lastmodifieddate"],
    "none": None,
}


class TestSearch:
    @pytest.mark.parametrize("sort", SORTS, ids=list(SORTS))
    def test_search_pages_pass_the_validating_model_in_the_order_asked(self, sort):
        """Each search page deserialises through the SDK's validating models, in the order `sorts` asks (the restart
        at 10,000 results depends on it); unsorted, creation order."""
        with HubSpotSandbox(30) as sandbox:
            search = validating(sandbox).crm.contacts.search_api
            got, after = [], "0"
            while after is not None:
                request = PublicObjectSearchRequest(
                    filter_groups=[FilterGroup(filters=[Filter(property_name="lastmodifieddate", operator="GTE",
                                                               value="0")])],
                    sorts=SORTS[sort], properties=["email", "lastmodifieddate"], limit=12, after=after)
                page = search.do_search(public_object_search_request=request)
                assert page.total == 30
                got += page.results
                after = page.paging.next.after if page.paging and page.paging.next else None
            by_id = sorted(sandbox.state.contacts, key=lambda c: int(c["id"]))
            newest_last = sorted(by_id, key=lambda c: c["modified"])
            expected = {"none": by_id, "documented object, descending": newest_last[::-1]}.get(sort, newest_last)
            assert [r.id for r in got] == [c["id"] for c in expected]
            assert [c["id"] for c in by_id] != [c["id"] for c in newest_last]  # ids alone would not give that order


class TestSequences:
    @pytest.mark.parametrize("answer", ["sequences-list", "enrollment-by-contact", "rate-limit-429"])
    def test_the_documented_examples_meet_the_contract(self, answer):
        """The checker agrees with HubSpot's own examples (a wrong contract.json would fail here first)."""
        assert violations(example(answer), CONTRACT[answer]) == []

    def test_the_sandboxs_sequences_pages_have_the_documented_shape(self):
        """Every owner's sequences page: results and total required, each sequence's fields as documented."""
        with HubSpotSandbox(5) as sandbox, requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {sandbox.state.token}"
            for owner in sandbox.state.owners:
                answer = session.get(f"{sandbox.url}/automation/v4/sequences",
                                     params={"userId": owner.get("userId") or 0, "limit": 3}, timeout=5)
                assert answer.status_code == 200
                assert violations(answer.json(), CONTRACT["sequences-list"]) == [], owner

    def test_the_sandboxs_enrollments_have_the_documented_shape(self):
        """An enrolled contact's answer is the documented 200 with every required field."""
        with HubSpotSandbox(30) as sandbox, requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {sandbox.state.token}"
            for contact_id in sandbox.state.enrollments:
                answer = session.get(f"{sandbox.url}/automation/v4/sequences/enrollments/contact/{contact_id}",
                                     timeout=5)
                assert answer.status_code in CONTRACT["enrollment-by-contact"]["documented-statuses"]
                assert violations(answer.json(), CONTRACT["enrollment-by-contact"]) == []

    def test_not_enrolled_comes_in_every_plausible_form_and_reads_as_none(self, settings):
        """Undocumented, so each form is served (404, 204, 200 {}) and the client reads each as not enrolled."""
        with HubSpotSandbox(40) as sandbox:
            client = HubSpotClient(sandbox.state.token, settings.model_copy(update={"hubspot_base_url": sandbox.url}))
            forms = {form: contact for contact, form in sandbox.state.not_enrolled.items()}
            assert set(forms) == set(NOT_ENROLLED_FORMS)
            assert {form: client.enrollment(contact) for form, contact in forms.items()} == dict.fromkeys(forms)
            assert sandbox.server.requests.statuses[204] == 1 and sandbox.server.requests.statuses[404] == 1

    def test_the_documented_examples_go_through_the_records_code(self):
        """HubSpot's own example sequence and enrollment become rows (placeholders stored as given, dates read)."""
        sequence = example("sequences-list")["results"][0]
        row = sequence_row(sequence)
        assert (row["sequence_id"], row["user_id"], row["folder_id"]) == ("<string>", "<string>", "<string>")
        assert row["updated_at"] == datetime.fromisoformat("2023-11-07T05:31:56+00:00")
        (enrolled,) = enrollment_rows({"contact": {"id": "1"}, "enrollment": example("enrollment-by-contact")})
        assert enrolled["enrolled_at"] == datetime.fromisoformat("2023-11-07T05:31:56+00:00")
        assert (enrolled["enrollment_id"], enrolled["email"]) == ("<string>", None)  # "<string>" is no address


class TestRateLimits:
    def test_a_429_has_the_documented_body_and_headers(self):
        """Past the limit: HubSpot's documented 429 body and X-HubSpot-RateLimit-* headers, Retry-After on a seeded
        share only; every admitted answer carries the headers too."""
        with HubSpotSandbox(1, limit_per_10s=2, limit_window_seconds=60.0) as sandbox, requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {sandbox.state.token}"
            answers = [session.get(f"{sandbox.url}/crm/v3/owners/", timeout=5) for _ in range(12)]
        assert [a.status_code for a in answers] == [200] * 2 + [429] * 10
        rules = CONTRACT["rate-limit-429"]
        for answer in answers:
            assert all(name in answer.headers for name in rules["headers"]), answer.headers
        throttled = answers[2:]
        assert all(violations(a.json(), rules) == [] and a.json()["errorType"] == "RATE_LIMIT" for a in throttled)
        assert {a.headers["X-HubSpot-RateLimit-Remaining"] for a in throttled} == {"0"}
        assert {"Retry-After" in a.headers for a in throttled} == {True, False}
