"""A loopback HubSpot that hubspot-api-client and plain requests run against unmodified.

Serves the CRM owners API (`GET /crm/v3/owners/`, PERSON and QUEUE owners), contacts search (`POST
/crm/v3/objects/contacts/search`, filters on lastmodifieddate and hs_object_id, `sorts` honoured in both the
documented object form and the SDK's string form (unsorted: creation order), limit <= 200, `after` paging, and
the real 10,000-result cap: asking past it is a 400), and the v4 automation sequences API (`GET
/automation/v4/sequences?userId=`, `GET /automation/v4/sequences/{id}`, `GET
/automation/v4/sequences/enrollments/contact/{contactId}`: a contact not enrolled is answered 404, 204 or 200
`{}`, by seed). Bearer auth is checked; every answer carries the X-HubSpot-RateLimit-* headers; past the
private-app limit (100 requests per 10 s) or the search limit (5 per second) a 429 in HubSpot's documented
shape, a seeded share of them with Retry-After too. Contacts are the fake company's people, modified in a seeded
order unlike their ids'; enrolled contacts' `toEmail` is their address, written messily. With the app's webhook
configured (`configure_webhooks`: target URL and app secret), every contact change (`modify`, `enroll`) is posted
as HubSpot posts it: a JSON array of `contact.propertyChange` events signed v3, retried on a 5xx.

    python -m sandbox.hubspot --contacts 25000
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from config.settings import Settings
from sandbox.company import CompanySize, FakeCompany, messy_email
from sandbox.server import (
    Faults,
    Handler,
    Request,
    Response,
    RunningSandbox,
    SandboxServer,
    WindowLimit,
    data_anchor,
    serve_until_interrupted,
)

DEFAULT_TOKEN = "pat-sandbox-hubspot-token"
SEARCH_CAP = 10_000
OWNER_USER_IDS = (7001, 7002, 7003)


def signature_v3(secret: str, url: str, body: bytes, timestamp: str) -> str:
    """HubSpot's X-HubSpot-Signature-v3 of a POST: base64(HMAC-SHA256(app secret, "POST" + URL + body + timestamp)).
    The URL is sent as configured (no characters to decode in a plain target URL)."""
    digest = hmac.new(secret.encode(), b"POST" + url.encode() + body + timestamp.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


QUEUE_USER_IDS = (7901, None)  # queues as owners: one with a userId field, one without (HubSpot's model allows both)
NOT_ENROLLED_FORMS = ("404", "200 {}", "204")  # HubSpot documents only the enrolled 200: each plausible form
DAILY_LIMIT = 500_000
PORTAL_ID, APP_ID = 62515, 1160452  # the portal and app a webhook event names


class HubSpotState:
    """Owners, sequences, contacts and enrollments of one fake portal, plus its rate limits.

    The variety HubSpot documents or allows, from the seed: owners of type PERSON and QUEUE; contacts whose ids do
    not follow their modification order (so only honoured `sorts` give the order the search restart needs); each
    not-enrolled contact answered in one of NOT_ENROLLED_FORMS; 429s carrying the X-HubSpot-RateLimit-* headers,
    a share of them (`retry_after_share`) also Retry-After.
    """

    def __init__(self, company: FakeCompany, contacts: int = 300, *, sequences_per_owner: int = 4,
                 enrolled_share: float = 0.3, limit_per_10s: int = 100, search_per_second: int = 5, seed: int = 5,
                 limit_window_seconds: float = 10.0, retry_after_share: float = 0.5):
        self.token = DEFAULT_TOKEN
        self.lock = threading.Lock()
        self.webhook: tuple[str, str] | None = None  # (target URL, app secret) of the app's webhook settings
        self.next_event_id = 1000
        self.new_enrollment_ids = itertools.count(90_000_000)  # enrollments made by enroll(): never a seeded id
        self.deliveries: list[int] = []  # HTTP status per webhook attempt (0: no answer)
        self.general_limit = WindowLimit(limit_per_10s, limit_window_seconds)
        self.search_limit = WindowLimit(search_per_second, 1.0)
        self.retry_after_share = retry_after_share
        self.admitted = 0
        self._throttle_rng = random.Random(f"{seed} throttle")
        self.base = data_anchor() - timedelta(days=60)
        self.owners = self._owners(company)
        self.sequences: list[dict[str, str]] = []
        for owner in self.owners:
            for n in range(sequences_per_owner if owner["type"] == "PERSON" else 0):
                created = self.base + timedelta(days=n)
                self.sequences.append({"id": str(len(self.sequences) + 9000), "name": f"{owner['firstName']} outreach {n + 1}",
                                       "userId": str(owner["userId"]), "folderId": str(300 + n % 2),
                                       "createdAt": iso(created), "updatedAt": iso(created + timedelta(hours=1))})
        self.contacts: list[dict[str, Any]] = []
        self.enrollments: dict[str, dict[str, Any]] = {}
        self._add_contacts(company, contacts, enrolled_share, seed)
        forms = random.Random(f"{seed} not enrolled")
        self.not_enrolled = {c["id"]: forms.choice(NOT_ENROLLED_FORMS) for c in self.contacts
                             if c["id"] not in self.enrollments}

    def _owners(self, company: FakeCompany) -> list[dict[str, Any]]:
        """The sellers (PERSON owners) with a queue after each of the first ones (QUEUE owners)."""
        stamp = {"archived": False, "createdAt": iso(self.base), "updatedAt": iso(self.base), "teams": []}
        people = [{"id": str(100 + n), "email": email, "firstName": email.split("@")[0].title(), "lastName": "Seller",
                   "userId": user_id, "userIdIncludingInactive": user_id, "type": "PERSON", **stamp}
                  for n, (email, user_id) in enumerate(zip(company.employees(len(OWNER_USER_IDS)), OWNER_USER_IDS))]
        queues = [{"id": str(200 + n), "firstName": f"Queue {n + 1}", "lastName": "", "type": "QUEUE", **stamp,
                   **({"userId": user_id, "userIdIncludingInactive": user_id} if user_id else {})}
                  for n, user_id in enumerate(QUEUE_USER_IDS)]
        owners: list[dict[str, Any]] = []
        for n, person in enumerate(people):
            owners += [person, *queues[n:n + 1]]
        return owners

    def _add_contacts(self, company: FakeCompany, count: int, enrolled_share: float, seed: int) -> None:
        """Contacts modified a minute apart in a seeded order that is not their ids' order; a share enrolled."""
        rng = random.Random(seed)
        minutes = list(range(count))
        random.Random(f"{seed} order").shuffle(minutes)
        for index in range(count):
            person = company.contact(index % max(1, company.size.contacts))
            modified = self.base + timedelta(seconds=minutes[index] * 60)
            contact = {"id": str(index + 1), "email": person["true_email"], "modified": modified,
                       "created": self.base - timedelta(days=1) + timedelta(seconds=index)}
            self.contacts.append(contact)
            if rng.random() < enrolled_share:
                sequence = self.sequences[index % len(self.sequences)]
                owner = next(o for o in self.owners if str(o.get("userId")) == sequence["userId"])
                self.enrollments[contact["id"]] = {
                    "id": str(50_000 + index), "enrolledAt": iso(modified), "enrolledBy": sequence["userId"],
                    "enrolledByEmail": owner["email"], "sequenceId": sequence["id"], "sequenceName": sequence["name"],
                    "toEmail": messy_email(person["true_email"], rng, None).strip(), "updatedAt": iso(modified)}

    def touch(self, count: int) -> list[dict[str, Any]]:
        """Modifies the first `count` contacts now (an incremental run should read exactly these)."""
        now = datetime.now(timezone.utc)
        for n, contact in enumerate(self.contacts[:count]):
            contact["modified"] = now + timedelta(milliseconds=n)
        return self.contacts[:count]

    def modify(self, contact_id: str, **enrollment_fields: Any) -> dict[str, Any]:
        """Changes a contact now, and its enrollment's fields (whatever they hold: a test's poison too); the
        change is posted to the app's webhook when one is configured."""
        contact = next(c for c in self.contacts if c["id"] == contact_id)
        newest = max(c["modified"] for c in self.contacts)
        contact["modified"] = max(datetime.now(timezone.utc), newest + timedelta(milliseconds=1))
        if enrollment_fields:
            self.enrollments[contact_id].update(enrollment_fields)
        self._post_change(contact, "hs_sequences_is_enrolled", "true")
        return contact

    def enroll(self, contact_id: str, sequence_index: int = 0) -> dict[str, Any]:
        """Enrolls a contact in a sequence now (its enrollment replaced): the contact's enrollment property changes,
        which is what a webhook subscription can see (HubSpot has no sequence or enrollment event)."""
        sequence = self.sequences[sequence_index % len(self.sequences)]
        owner = next(o for o in self.owners if str(o.get("userId")) == sequence["userId"])
        contact = next(c for c in self.contacts if c["id"] == contact_id)
        now = iso(datetime.now(timezone.utc))
        self.enrollments[contact_id] = {
            "id": str(next(self.new_enrollment_ids)), "enrolledAt": now, "enrolledBy": sequence["userId"],
            "enrolledByEmail": owner["email"], "sequenceId": sequence["id"], "sequenceName": sequence["name"],
            "toEmail": contact["email"], "updatedAt": now}
        self.not_enrolled.pop(contact_id, None)
        return self.modify(contact_id)

    def configure_webhooks(self, target_url: str, app_secret: str) -> None:
        """The app's webhook settings (HubSpot: the app's Webhooks page, or PUT /webhooks/v3/{appId}/settings): the
        target URL, and a contact.propertyChange subscription; requests are signed with the app secret (v3)."""
        self.webhook = (target_url, app_secret)

    def _post_change(self, contact: dict[str, Any], name: str, value: str) -> None:
        """Posts the change as HubSpot does, in the background: a JSON array of events signed v3 (method + target
        URL + body + timestamp), retried on a 5xx or no answer (HubSpot: up to 10 times over 24 hours)."""
        if self.webhook is None:
            return
        self.next_event_id += 1
        event = {"eventId": self.next_event_id, "subscriptionId": 1, "portalId": PORTAL_ID, "appId": APP_ID,
                 "occurredAt": epoch_ms(contact["modified"]), "subscriptionType": "contact.propertyChange",
                 "attemptNumber": 0, "objectId": int(contact["id"]), "propertyName": name, "propertyValue": value,
                 "changeSource": "CRM"}
        threading.Thread(target=self._deliver, args=(self.webhook, [event]), daemon=True).start()

    def _deliver(self, webhook: tuple[str, str], events: list[dict[str, Any]]) -> None:
        import requests

        url, secret = webhook
        for attempt in range(3):
            body = json.dumps([{**e, "attemptNumber": attempt} for e in events]).encode()
            timestamp = str(epoch_ms(datetime.now(timezone.utc)))
            headers = {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": timestamp,
                       "X-HubSpot-Signature-v3": signature_v3(secret, url, body, timestamp)}
            try:
                status = requests.post(url, data=body, headers=headers, timeout=5).status_code
            except requests.RequestException:
                status = 0
            self.deliveries.append(status)
            if 0 < status < 500:
                return
            time.sleep(0.5 * (attempt + 1))

    def admit(self, search: bool) -> str | None:
        """None when the request fits the limits, else the policy it broke."""
        with self.lock:  # one request is admitted by both limits or by neither
            if not self.general_limit.admit():
                return "TEN_SECONDLY_ROLLING"
            if search and not self.search_limit.admit():
                return "SECONDLY"
            self.admitted += 1
            return None

    def rate_limit_headers(self) -> dict[str, str]:
        """The X-HubSpot-RateLimit-* headers HubSpot sends a private app with every answer."""
        limit = self.general_limit
        return {"X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, DAILY_LIMIT - self.admitted)),
                "X-HubSpot-RateLimit-Interval-Milliseconds": f"{limit.window * 1000:g}",
                "X-HubSpot-RateLimit-Max": f"{limit.limit:g}", "X-HubSpot-RateLimit-Remaining": f"{limit.remaining():g}"}

    def throttled(self, policy: str) -> Response:
        """A 429 as HubSpot documents it (body and rate-limit headers); a seeded share also says Retry-After."""
        headers = self.rate_limit_headers()
        with self.lock:
            if self._throttle_rng.random() < self.retry_after_share:
                headers["Retry-After"] = "1" if policy == "SECONDLY" else "2"
            correlation = str(uuid.UUID(int=self._throttle_rng.getrandbits(128)))
        return Response.json({"status": "error", "message": f"You have reached your {policy.lower()} limit.",
                              "errorType": "RATE_LIMIT", "correlationId": correlation, "policyName": policy,
                              "requestId": correlation}, 429, headers)

    @property
    def rate_limited(self) -> int:
        return self.general_limit.refused + self.search_limit.refused


def _error(status: int, message: str, category: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json({"status": "error", "message": message, "category": category,
                          "correlationId": "00000000-0000-0000-0000-000000000000"}, status, headers)


def _matches(contact: dict[str, Any], group: list[dict[str, Any]]) -> bool:
    for condition in group:
        name, operator = condition.get("propertyName"), str(condition.get("operator"))
        value: Any = condition.get("value")  # epoch milliseconds (a number or its digits), or an ISO 8601 time
        actual = epoch_ms(contact["modified"]) if name == "lastmodifieddate" else int(contact["id"])
        if name == "lastmodifieddate" and value is not None and not str(value).lstrip("-").isdigit():
            value = epoch_ms(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
        target = int(value)
        if not {"GTE": actual >= target, "GT": actual > target, "LTE": actual <= target,
                "LT": actual < target, "EQ": actual == target}.get(operator, False):
            return False
    return True


def _sort_key(sort: Any) -> tuple[str, bool]:
    """(property, descending) of one `sorts` entry: HubSpot documents {"propertyName", "direction"}; its client types
    them as strings, read here as the property name, ascending."""
    if isinstance(sort, dict):
        return str(sort.get("propertyName")), str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
    return str(sort), False


def _property_value(contact: dict[str, Any], name: str) -> Any:
    """A contact's value of a sortable property, comparable with the others'."""
    if name in ("lastmodifieddate", "hs_lastmodifieddate"):
        return epoch_ms(contact["modified"])
    if name == "createdate":
        return epoch_ms(contact["created"])
    if name == "email":
        return contact["email"] or ""
    return int(contact["id"])


def _paged(items: list[dict[str, Any]], request: Request, default_limit: int = 100) -> dict[str, Any]:
    """A page of a v3/v4 list by its `limit` and `after` arguments, with the paging link to the next one."""
    limit = min(int(request.arg("limit") or default_limit), 500)
    start = int(request.arg("after") or 0)
    body: dict[str, Any] = {"results": items[start:start + limit]}
    if start + limit < len(items):
        body["paging"] = {"next": {"after": str(start + limit), "link": "?after=" + str(start + limit)}}
    return body


def _search_result(contact: dict[str, Any], properties: set[str]) -> dict[str, Any]:
    """A contact as the search answers it, with the properties asked for (and the ones always given)."""
    values = {"hs_object_id": contact["id"], "email": contact["email"], "createdate": iso(contact["created"]),
              "lastmodifieddate": iso(contact["modified"])}
    return {"id": contact["id"], "archived": False, "createdAt": iso(contact["created"]),
            "updatedAt": iso(contact["modified"]), "properties": {k: v for k, v in values.items() if k in properties}}


class HubSpotApi:
    """HubSpot's routes the pipeline uses over one portal's state, each behind the bearer token and the rate limits."""

    def __init__(self, state: HubSpotState, server: SandboxServer):
        self.state = state
        routes: tuple[tuple[str, str, str, Handler], ...] = (
            ("GET", r"/crm/v3/owners/?", "owners", self.owners),
            ("GET", r"/automation/v4/sequences/?", "sequences", self.sequences),
            ("GET", r"/automation/v4/sequences/(?P<sequence_id>\d+)", "sequence", self.sequence),
            ("GET", r"/automation/v4/sequences/enrollments/contact/(?P<contact_id>\d+)", "enrollment", self.enrollment),
            ("POST", r"/crm/v3/objects/contacts/search", "search", self.search))
        for method, pattern, name, handler in routes:
            server.route(method, pattern, name)(self._guarded(handler, search=name == "search"))

    def _guarded(self, handler: Handler, search: bool) -> Handler:
        """A handler behind the token check and the limits (the search limit too for a search)."""
        def answer(request: Request) -> Response:
            if request.headers.get("Authorization", "") != f"Bearer {self.state.token}":
                return _error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
            policy = self.state.admit(search)
            if policy:
                return self.state.throttled(policy)
            response = handler(request)
            response.headers.update(self.state.rate_limit_headers())
            return response
        return answer

    def owners(self, request: Request) -> Response:
        return Response.json(_paged(self.state.owners, request))

    def sequences(self, request: Request) -> Response:
        user_id = request.arg("userId")
        if not user_id:
            return _error(400, "userId is required", "VALIDATION_ERROR")
        mine = [s for s in self.state.sequences if s["userId"] == user_id]
        return Response.json({**_paged(mine, request), "total": len(mine)})

    def sequence(self, request: Request) -> Response:
        found = [s for s in self.state.sequences if s["id"] == request.params["sequence_id"]]
        return Response.json(found[0]) if found else _error(404, "sequence not found", "OBJECT_NOT_FOUND")

    def enrollment(self, request: Request) -> Response:
        contact_id = request.params["contact_id"]
        found = self.state.enrollments.get(contact_id)
        if found:
            return Response.json(found)
        form = self.state.not_enrolled.get(contact_id, "404")
        if form == "204":
            return Response(204)
        if form == "200 {}":
            return Response.json({})
        return _error(404, "contact is not enrolled", "OBJECT_NOT_FOUND")

    def search(self, request: Request) -> Response:
        spec = request.json() or {}
        limit = int(spec.get("limit") or 10)
        if limit > 200:
            return _error(400, "limit must be at most 200", "VALIDATION_ERROR")
        after = int(spec.get("after") or 0)
        if after + limit > SEARCH_CAP:
            return _error(400, f"The search cannot page past {SEARCH_CAP} results.", "VALIDATION_ERROR")
        groups = [g.get("filters", []) for g in spec.get("filterGroups", [])]
        matching = [c for c in self.state.contacts if not groups or any(_matches(c, g) for g in groups)]
        matching.sort(key=lambda c: int(c["id"]))  # unsorted: creation order; a sort keeps it among equals
        for sort in reversed(spec.get("sorts") or []):
            name, descending = _sort_key(sort)
            matching.sort(key=lambda c: _property_value(c, name), reverse=descending)
        properties = set(spec.get("properties") or []) | {"hs_object_id", "createdate", "lastmodifieddate"}
        body: dict[str, Any] = {"total": len(matching),
                                "results": [_search_result(c, properties) for c in matching[after:after + limit]]}
        if after + limit < len(matching):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return Response.json(body)


def build_server(state: HubSpotState, faults: Faults | None = None) -> SandboxServer:
    """The server with every HubSpot route the pipeline uses."""
    server = SandboxServer("hubspot", faults=faults)
    HubSpotApi(state, server)
    return server


class HubSpotSandbox(RunningSandbox):
    """A started HubSpot fake: state + server."""

    def client_environment(self) -> dict[str, str]:
        return {"HUBSPOT_BASE_URL": self.url, "HUBSPOT_API_KEY": self.state.token}

    def __init__(self, contacts: int = 300, *, faults: Faults | None = None, **state_options: Any):
        self.state = HubSpotState(FakeCompany(42, CompanySize(accounts=50, contacts=2000, leads=500)), contacts,
                                  **state_options)
        self.server = build_server(self.state, faults)


LOCAL_RUN_CONTACTS = 60


def for_local_run(settings: Settings) -> HubSpotSandbox:
    """The sandbox `make run` starts (the registry's `sandbox`), not yet started."""
    return HubSpotSandbox(LOCAL_RUN_CONTACTS)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a loopback HubSpot until interrupted.")
    parser.add_argument("--contacts", type=int, default=1000)
    args = parser.parse_args()
    serve_until_interrupted(HubSpotSandbox(args.contacts), f"HubSpot sandbox at {{url}} ({args.contacts} contacts)",
                            "export HUBSPOT_BASE_URL={url}", "(token: DEFAULT_TOKEN in sandbox/hubspot.py)")


if __name__ == "__main__":
    main()
