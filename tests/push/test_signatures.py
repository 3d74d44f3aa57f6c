"""HubSpot signature v3 and Dialpad's JWT: what is accepted and every way a request is refused."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from push.replay import ReplayGuard
from push.signatures import Refused, dialpad_token, hubspot_signature, hubspot_uri, verify_dialpad, verify_hubspot

SECRET = "app-secret-for-tests-" + "0123456789abcdef" * 3  # 68 bytes: long enough for HS512
URI = "https://us-central1-p.cloudfunctions.net/hubspot_webhook"
BODY = json.dumps([{"eventId": 1, "objectId": 51, "subscriptionType": "contact.propertyChange"}]).encode()


def signed(method="POST", uri=URI, body=BODY, at: float | None = None):
    timestamp = str(int((at if at is not None else time.time()) * 1000))
    return hubspot_signature(SECRET, method, uri, body, timestamp), timestamp


class TestHubSpotV3:
    def test_documented_construction(self):
        """The signature is base64(HMAC-SHA256(secret, method + URI + body + timestamp)), as HubSpot documents."""
        import hashlib
        import hmac

        expected = base64.b64encode(hmac.new(SECRET.encode(), b"POST" + URI.encode() + BODY + b"1700000000000",
                                             hashlib.sha256).digest()).decode()
        assert hubspot_signature(SECRET, "POST", URI, BODY, "1700000000000") == expected

    def test_correct_request_accepted(self):
        """A request signed over its method, URI, body and a fresh timestamp passes."""
        signature, timestamp = signed()
        verify_hubspot(SECRET, "POST", URI, BODY, signature, timestamp)

    @pytest.mark.parametrize("what", ["body", "uri", "timestamp", "method", "secret"])
    def test_one_wrong_byte_refused(self, what):
        """One byte changed in the body, URI or timestamp (or another method or secret) fails the signature."""
        signature, timestamp = signed()
        body, uri, method, secret = BODY, URI, "POST", SECRET
        if what == "body":
            body = BODY.replace(b"51", b"52")
        elif what == "uri":
            uri = URI.replace("hubspot", "hubspor")
        elif what == "timestamp":
            timestamp = str(int(timestamp) - 1)
        elif what == "method":
            method = "PUT"
        else:
            secret = SECRET + "x"
        with pytest.raises(Refused):
            verify_hubspot(secret, method, uri, body, signature, timestamp)

    def test_stale_timestamp_refused(self):
        """A correctly signed request older than 5 minutes is refused."""
        signature, timestamp = signed(at=time.time() - 301)
        with pytest.raises(Refused, match="stale"):
            verify_hubspot(SECRET, "POST", URI, BODY, signature, timestamp)

    def test_future_timestamp_refused(self):
        """A timestamp more than 5 minutes ahead is refused as well."""
        signature, timestamp = signed(at=time.time() + 301)
        with pytest.raises(Refused, match="stale"):
            verify_hubspot(SECRET, "POST", URI, BODY, signature, timestamp)

    @pytest.mark.parametrize("signature,timestamp", [(None, "1"), ("abc", None), ("", ""), ("abc", "12ab")])
    def test_unsigned_or_malformed_headers_refused(self, signature, timestamp):
        """A missing signature or timestamp, or a timestamp that is not milliseconds, is refused."""
        with pytest.raises(Refused):
            verify_hubspot(SECRET, "POST", URI, BODY, signature, timestamp)

    def test_uri_decoded_as_hubspot_signs_it(self):
        """The characters HubSpot lists are decoded before signing (a query with %40 and %3A); others stay."""
        assert hubspot_uri(URI + "?email=a%40b.com&t=1%3A2&x=%20") == URI + "?email=a@b.com&t=1:2&x=%20"
        signature, timestamp = signed(uri=URI + "?email=a@b.com")
        verify_hubspot(SECRET, "POST", URI + "?email=a%40b.com", BODY, signature, timestamp)


class TestDialpadJwt:
    EVENT = {"call_id": 6001, "state": "hangup", "date_started": 1700000000000}

    def test_correct_token_accepted(self):
        """A body that is a JWT signed HS256 with the webhook secret yields its event."""
        assert verify_dialpad(SECRET, dialpad_token(SECRET, self.EVENT)) == self.EVENT

    def test_another_secret_refused(self):
        """A JWT signed with another secret is refused."""
        with pytest.raises(Refused):
            verify_dialpad(SECRET, dialpad_token("another-secret-" + "f" * 50, self.EVENT))

    def test_alg_none_refused(self):
        """An unsigned JWT (alg none) is refused, whatever its payload."""
        header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=")
        payload = base64.urlsafe_b64encode(json.dumps(self.EVENT).encode()).rstrip(b"=")
        with pytest.raises(Refused, match="algorithm"):
            verify_dialpad(SECRET, header + b"." + payload + b".")

    @pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
    def test_other_algorithms_refused(self, algorithm):
        """A JWT signed with the right secret but another algorithm is refused: only HS256 is Dialpad's."""
        token = jwt.encode(self.EVENT, SECRET, algorithm=algorithm).encode()
        with pytest.raises(Refused, match="algorithm"):
            verify_dialpad(SECRET, token)

    @pytest.mark.parametrize("body", [b"", b"{}", json.dumps({"call_id": 1}).encode(), b"a.b.c", b"\xff\xfe"])
    def test_unsigned_or_malformed_bodies_refused(self, body):
        """A plain JSON body, an empty one or bytes that are no JWT are refused."""
        with pytest.raises(Refused):
            verify_dialpad(SECRET, body)

    def test_tampered_payload_refused(self):
        """A token whose payload was changed after signing is refused."""
        header, _payload, signature = dialpad_token(SECRET, self.EVENT).split(b".")
        other = base64.urlsafe_b64encode(json.dumps({**self.EVENT, "call_id": 6002}).encode()).rstrip(b"=")
        with pytest.raises(Refused):
            verify_dialpad(SECRET, header + b"." + other + b"." + signature)

    def test_expired_token_refused(self):
        """A token whose exp has passed is refused."""
        with pytest.raises(Refused):
            verify_dialpad(SECRET, dialpad_token(SECRET, {**self.EVENT, "exp": int(time.time()) - 10}))


class TestReplayGuard:
    def test_remembers_until_expiry(self):
        """A key is seen until its time to live has passed."""
        now = [0.0]
        guard = ReplayGuard(10, clock=lambda: now[0])
        guard.remember(["a"])
        assert guard.seen("a") and not guard.seen("b")
        now[0] = 10.5
        assert not guard.seen("a")

    def test_all_seen_needs_every_key(self):
        """A batch counts as replayed only when every one of its keys was seen (and it has some)."""
        guard = ReplayGuard(10)
        guard.remember(["a", "b"])
        assert guard.all_seen(["a", "b"]) and not guard.all_seen(["a", "c"]) and not guard.all_seen([])

    def test_capacity_bounds_memory(self):
        """Past its capacity the oldest keys are forgotten first."""
        guard = ReplayGuard(100, capacity=2)
        guard.remember(["a", "b", "c"])
        assert not guard.seen("a") and guard.seen("b") and guard.seen("c")
