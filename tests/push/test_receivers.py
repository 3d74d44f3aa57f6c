"""hubspot_webhook and dialpad_webhook under functions-framework: verified requests become work messages on the
Pub/Sub emulator; forged, stale, replayed, oversized and malformed ones are refused with 401 and leave nothing."""
from __future__ import annotations

import json
import time

import pytest
import requests

import push.receivers
from push.receivers import Receiver
from push.signatures import dialpad_token, hubspot_signature

HUBSPOT_SECRET = "hubspot-app-secret-" + "h" * 48
DIALPAD_SECRET = "dialpad-webhook-secret-" + "d" * 48
pytestmark = pytest.mark.emulator


def contact_events(*ids: int, first_event: int = 1) -> bytes:
    return json.dumps([{"eventId": first_event + n, "subscriptionId": 7, "portalId": 99, "occurredAt": 1700000000000,
                        "subscriptionType": "contact.propertyChange", "attemptNumber": 0, "objectId": contact,
                        "propertyName": "hs_sequences_is_enrolled", "propertyValue": "true", "changeSource": "CRM"}
                       for n, contact in enumerate(ids)]).encode()


@pytest.fixture
def receivers(work_topics, runtime, function_server, monkeypatch):
    """The two webhook functions served, their receiver on this test's topics and secrets; (servers, topics)."""
    settings, topics = work_topics
    monkeypatch.setenv("HUBSPOT_APP_SECRET", HUBSPOT_SECRET)
    monkeypatch.setenv("DIALPAD_WEBHOOK_SECRET", DIALPAD_SECRET)
    hubspot, dialpad = function_server("hubspot_webhook"), function_server("dialpad_webhook")
    settings = settings.model_copy(update={"hubspot_webhook_url": hubspot.url.rstrip("/"),
                                           "webhook_max_body_bytes": 4096})
    monkeypatch.setattr(push.receivers, "_receiver", Receiver.from_settings(settings))
    return hubspot, dialpad, topics


def post_hubspot(url: str, body: bytes, *, sign_uri: str | None = None, at: float | None = None,
                 secret: str = HUBSPOT_SECRET, headers: dict[str, str] | None = None) -> requests.Response:
    timestamp = str(int((at if at is not None else time.time()) * 1000))
    signature = hubspot_signature(secret, "POST", (sign_uri or url).rstrip("/"), body, timestamp)
    sent = {"Content-Type": "application/json", "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": timestamp, **(headers or {})}
    return requests.post(url, data=body, headers=sent, timeout=30)


def nothing_written(runtime) -> bool:
    """No row in any of the tables a run or a webhook could write."""
    wh = runtime.warehouse
    return all(wh.query(f"SELECT COUNT(*) AS n FROM {wh.dataset}.{t}")[0]["n"] == 0
               for t in ("etl_runs", "sync_state", "hubspot_sequence_enrollments", "dialpad_calls"))


class TestHubSpotWebhook:
    def test_signed_request_becomes_enrollment_work(self, receivers, runtime):
        """A correctly signed batch answers 200 and publishes one enrollments message naming its contacts."""
        hubspot, _dialpad, topics = receivers
        answer = post_hubspot(hubspot.url, contact_events(51, 52, 51))
        assert answer.status_code == 200, answer.text
        (message,) = topics.pull("hubspot", 1)
        assert (message.source, message.stream, message.reason) == ("hubspot", "enrollments", "push")
        assert message.hint == {"contact_ids": ["51", "52"]}
        assert nothing_written(runtime)

    def test_every_refusal_is_401_and_publishes_nothing(self, receivers, runtime):
        """Wrong byte in body, URI or timestamp, stale, unsigned, replayed, oversized, malformed: each 401, none
        published (the one accepted request afterwards is the only message), nothing in the warehouse."""
        hubspot, _dialpad, topics = receivers
        body = contact_events(61)
        timestamp = str(int(time.time() * 1000))
        good = hubspot_signature(HUBSPOT_SECRET, "POST", hubspot.url.rstrip("/"), body, timestamp)
        base = {"Content-Type": "application/json", "X-HubSpot-Signature-v3": good,
                "X-HubSpot-Request-Timestamp": timestamp}
        assert requests.post(hubspot.url, data=body, headers=base, timeout=30).status_code == 200  # then replayed:
        refused = {
            "replayed": requests.post(hubspot.url, data=body, headers=base, timeout=30),
            "body byte": requests.post(hubspot.url, data=body.replace(b"61", b"62"), headers=base, timeout=30),
            "timestamp byte": requests.post(hubspot.url, data=body, timeout=30,
                                            headers={**base, "X-HubSpot-Request-Timestamp": str(int(timestamp) + 1)}),
            "uri byte": post_hubspot(hubspot.url, contact_events(63), sign_uri=hubspot.url + "x"),
            "stale": post_hubspot(hubspot.url, contact_events(64), at=time.time() - 301),
            "other secret": post_hubspot(hubspot.url, contact_events(65), secret=HUBSPOT_SECRET + "x"),
            "unsigned": requests.post(hubspot.url, data=contact_events(66), timeout=30),
            "oversized": post_hubspot(hubspot.url, contact_events(*range(100, 140))),
            "malformed": post_hubspot(hubspot.url, b'{"not": "a list"}'),
            "not json": post_hubspot(hubspot.url, b"\x00garbage"),
            "same events again": post_hubspot(hubspot.url, body),
        }
        assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 401)
        assert all(r.json() == {"error": "unauthorized"} for r in refused.values())
        assert post_hubspot(hubspot.url, contact_events(70, first_event=900)).status_code == 200
        messages = topics.pull("hubspot", 2)
        assert [m.hint["contact_ids"] for m in messages] == [["61"], ["70"]]
        assert nothing_written(runtime)

    def test_get_is_not_allowed(self, receivers):
        """Only POST is a webhook."""
        assert requests.get(receivers[0].url, timeout=30).status_code == 405


class TestDialpadWebhook:
    CALL = {"call_id": 7001, "state": "hangup", "date_started": 1700000000000, "direction": "outbound"}

    def test_signed_call_event_becomes_calls_work(self, receivers, runtime):
        """A JWT signed HS256 with the webhook secret answers 200 and publishes a calls message naming the call."""
        _hubspot, dialpad, topics = receivers
        answer = requests.post(dialpad.url, data=dialpad_token(DIALPAD_SECRET, self.CALL), timeout=30)
        assert answer.status_code == 200, answer.text
        (message,) = topics.pull("dialpad", 1)
        assert (message.source, message.stream, message.reason) == ("dialpad", "calls", "push")
        assert message.hint == {"call_id": "7001", "state": "hangup"}
        assert nothing_written(runtime)

    def test_every_refusal_is_401_and_publishes_nothing(self, receivers, runtime):
        """Unsigned JSON, alg none, another secret, a replay, oversized and a call without id: 401, none published."""
        import base64

        _hubspot, dialpad, topics = receivers
        token = dialpad_token(DIALPAD_SECRET, {**self.CALL, "call_id": 7002})
        assert requests.post(dialpad.url, data=token, timeout=30).status_code == 200
        unsigned = b".".join(base64.urlsafe_b64encode(part).rstrip(b"=") for part in
                             (b'{"alg":"none","typ":"JWT"}', json.dumps(self.CALL).encode())) + b"."
        refused = {
            "replayed": requests.post(dialpad.url, data=token, timeout=30),
            "plain json": requests.post(dialpad.url, json=self.CALL, timeout=30),
            "alg none": requests.post(dialpad.url, data=unsigned, timeout=30),
            "other secret": requests.post(dialpad.url, data=dialpad_token("x" * 64, self.CALL), timeout=30),
            "oversized": requests.post(dialpad.url, timeout=30,
                                       data=dialpad_token(DIALPAD_SECRET, {**self.CALL, "pad": "x" * 5000})),
            "no call id": requests.post(dialpad.url, data=dialpad_token(DIALPAD_SECRET, {"state": "hangup"}),
                                        timeout=30),
        }
        assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 401)
        assert requests.post(dialpad.url, data=dialpad_token(DIALPAD_SECRET, {**self.CALL, "call_id": 7003}),
                             timeout=30).status_code == 200
        assert [m.hint["call_id"] for m in topics.pull("dialpad", 2)] == ["7002", "7003"]
        assert nothing_written(runtime)

    def test_a_call_not_over_publishes_nothing(self, receivers):
        """A ringing call is accepted (200) but asks for no work: it is not listed until it ends."""
        _hubspot, dialpad, topics = receivers
        ringing = requests.post(dialpad.url, data=dialpad_token(DIALPAD_SECRET, {**self.CALL, "state": "ringing"}),
                                timeout=30)
        assert ringing.status_code == 200 and ringing.json()["work_messages"] == 0
