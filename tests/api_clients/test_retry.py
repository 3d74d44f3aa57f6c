"""The retry policy against a real loopback server: what is retried, how long it waits, when it gives up."""
from __future__ import annotations

import email.utils
import socket
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from api_clients.retry import is_transient, retry_after_seconds, retry_policy
from sandbox.server import Response, SandboxServer

THROTTLED: list[Response] = []  # answered first, in turn: 429s without Retry-After (fail_next would add one)


@pytest.fixture
def server():
    srv = SandboxServer("retry-test")

    @srv.route("GET", "/thing")
    def thing(request):
        return THROTTLED.pop(0) if THROTTLED else Response.json({"ok": True})

    @srv.route("POST", "/crm/v3/objects/contacts/search", "thing")
    def search(request):
        return THROTTLED.pop(0) if THROTTLED else Response.json({"total": 0, "results": []})

    THROTTLED.clear()
    with srv:
        yield srv


def fetch(url: str) -> dict:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


class RecordedSleep:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_to_success(server, status):
    """429 and 5xx answers are retried until the call succeeds."""
    server.faults.fail_next(2, status=status, path_pattern="/thing")
    sleep = RecordedSleep()
    assert retry_policy(10, sleep=sleep)(fetch, f"{server.url}/thing") == {"ok": True}
    assert server.requests.by_route["thing"] == 3 and len(sleep.waits) == 2


def test_a_body_cut_short_is_retried_like_a_connection_reset(server):
    """A response whose body stops before its Content-Length (ChunkedEncodingError) is asked for again."""
    server.faults.truncate_next(2, "/thing")
    with pytest.raises(requests.exceptions.ChunkedEncodingError) as cut:
        fetch(f"{server.url}/thing")
    assert is_transient(cut.value)
    sleep = RecordedSleep()
    assert retry_policy(10, sleep=sleep)(fetch, f"{server.url}/thing") == {"ok": True}
    assert server.requests.by_route["thing"] == 3 and len(sleep.waits) == 1


def test_retry_after_is_honoured(server):
    """The wait after a 429 is what Retry-After asked for."""
    server.faults.fail_next(1, status=429, path_pattern="/thing", headers={"Retry-After": "2"})
    sleep = RecordedSleep()
    retry_policy(10, sleep=sleep)(fetch, f"{server.url}/thing")
    assert sleep.waits == [2.0]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_permanent_errors_fail_fast(server, status):
    """Other 4xx answers are raised at once, after one request."""
    server.faults.fail_next(1, status=status, path_pattern="/thing")
    with pytest.raises(requests.HTTPError):
        retry_policy(10, sleep=RecordedSleep())(fetch, f"{server.url}/thing")
    assert server.requests.by_route["thing"] == 1


def test_gives_up_after_a_bounded_time(server):
    """A server that keeps failing is given up on and the last error re-raised."""
    server.faults.fail_next(1000, status=503, path_pattern="/thing")
    with pytest.raises(requests.HTTPError):
        retry_policy(0.5, initial_wait=0.05, max_wait=0.1)(fetch, f"{server.url}/thing")
    assert 2 <= server.requests.by_route["thing"] < 1000


def test_connection_refused_is_transient():
    """A dropped or refused connection counts as transient."""
    with pytest.raises(requests.ConnectionError) as error:
        requests.get("http://127.0.0.1:1/", timeout=1)
    assert is_transient(error.value)


class TestUnreachableHosts:
    def test_a_host_refusing_connections_is_given_up_on_within_seconds_with_its_address(self):
        """A port nobody listens on: retried only for REFUSED_GRACE_SECONDS, not the whole retry budget, and the
        error names the host and port."""
        from api_clients.retry import REFUSED_GRACE_SECONDS, unreachable

        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            time.sleep(seconds)

        with pytest.raises(requests.ConnectionError) as error:
            retry_policy(120, initial_wait=0.2, max_wait=0.5, sleep=sleep)(requests.get, "http://127.0.0.1:1/",
                                                                           timeout=1)
        assert unreachable(error.value) == "refuses connections" and "127.0.0.1" in str(error.value)
        # Waits of at most 0.5 s stopped after the grace: far fewer than the 120 s budget would have taken.
        assert 0 < len(slept) <= REFUSED_GRACE_SECONDS / 0.2 + 2 < 120 / 0.5

    @pytest.mark.parametrize("errno, transient", [(socket.EAI_NONAME, False), (socket.EAI_AGAIN, True)])
    def test_a_name_that_does_not_resolve_fails_at_once(self, errno, transient):
        """urllib3's NameResolutionError (as requests and hubspot-api-client raise it) for an unknown name is not
        retried; a temporary failure of the resolver is."""
        from urllib3.connection import HTTPConnection
        from urllib3.exceptions import MaxRetryError, NameResolutionError

        from api_clients.retry import unreachable

        cause = socket.gaierror(errno, "Name or service not known")
        try:  # raised as urllib3 raises it: from the resolver's error
            raise NameResolutionError("api.hubspot.example", HTTPConnection("api.hubspot.example"), cause) from cause
        except NameResolutionError as resolution:
            error = requests.ConnectionError(MaxRetryError(None, "/", reason=resolution))
        assert is_transient(error) is transient
        assert (unreachable(error) == "does not resolve") is not transient


def test_gmail_rate_limit_403_is_transient():
    """Gmail's 403 rateLimitExceeded is throttling, not a permission error."""
    from googleapiclient.errors import HttpError
    from httplib2 import Response as HttpLib2Response

    throttled = HttpError(HttpLib2Response({"status": 403, "retry-after": "3"}),
                          b'{"error": {"errors": [{"reason": "userRateLimitExceeded"}]}}')
    forbidden = HttpError(HttpLib2Response({"status": 403}), b'{"error": {"errors": [{"reason": "forbidden"}]}}')
    assert is_transient(throttled) and retry_after_seconds(throttled) == 3.0
    assert not is_transient(forbidden)


def with_requests(url: str) -> None:
    fetch(f"{url}/thing")


def with_googleapiclient(url: str) -> None:
    import httplib2
    from googleapiclient.http import HttpRequest
    from googleapiclient.model import JsonModel

    HttpRequest(httplib2.Http(timeout=5), JsonModel().response, f"{url}/thing").execute()


def with_simple_salesforce(url: str) -> None:
    from simple_salesforce.util import call_salesforce

    call_salesforce(f"{url}/thing", "GET", requests.Session(), {})


def with_hubspot_api_client(url: str) -> None:
    """A search: a POST, which urllib3 under the SDK never retries itself (it retries GETs on its own)."""
    from hubspot import HubSpot
    from hubspot.crm.contacts import PublicObjectSearchRequest

    HubSpot(access_token="pat-test", host=url).crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(limit=1))


LIBRARIES = [with_requests, with_googleapiclient, with_simple_salesforce, with_hubspot_api_client]


class TestRetryAfterWhicheverLibrary:
    @pytest.mark.parametrize("call", LIBRARIES, ids=lambda call: call.__name__)
    def test_retry_after_is_read_from_each_librarys_exception(self, server, call):
        """A 429's Retry-After sets the wait whichever client library raised the error (each keeps headers elsewhere)."""
        server.faults.fail_next(1, status=429, headers={"Retry-After": "3"})
        sleep = RecordedSleep()
        retry_policy(10, sleep=sleep)(call, server.url)
        assert sleep.waits == [3.0]

    @pytest.mark.parametrize("call", LIBRARIES, ids=lambda call: call.__name__)
    def test_an_http_date_retry_after_is_read_too(self, server, call):
        """Retry-After given as an HTTP date is the time until then."""
        when = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
        server.faults.fail_next(1, status=503, headers={"Retry-After": when})
        sleep = RecordedSleep()
        retry_policy(10, sleep=sleep)(call, server.url)
        assert len(sleep.waits) == 1 and 20 < sleep.waits[0] <= 30


def hubspot_429(**headers: str) -> Response:
    body = {"status": "error", "message": "You have reached your ten_secondly_rolling limit.", "errorType": "RATE_LIMIT",
            "correlationId": "c033cdaa-2c40-4a64-ae48-b4cec88dad24", "policyName": "TEN_SECONDLY_ROLLING"}
    return Response.json(body, 429, {f"X-HubSpot-RateLimit-{name.replace('_', '-')}": value
                                     for name, value in headers.items()})


class TestHubSpotRateLimitHeaders:
    @pytest.mark.parametrize("call", LIBRARIES, ids=lambda call: call.__name__)
    @pytest.mark.parametrize("headers, wait", [
        ({"Interval_Milliseconds": "10000", "Max": "100", "Remaining": "0"}, 10.0),  # the rolling window is spent
        ({"Interval_Milliseconds": "2500", "Max": "100"}, 2.5),  # no Remaining: the window, to be safe
        ({"Interval_Milliseconds": "10000", "Max": "100", "Remaining": "41"}, 1.0),  # room in it: a per-second limit
        ({"Secondly": "10", "Secondly_Remaining": "0"}, 1.0),
    ])
    def test_a_429_without_retry_after_waits_what_the_rate_limit_headers_say(self, server, call, headers, wait):
        """Without Retry-After, HubSpot's X-HubSpot-RateLimit-* headers set the wait: the interval when it is spent."""
        THROTTLED.append(hubspot_429(**headers))
        sleep = RecordedSleep()
        retry_policy(10, sleep=sleep)(call, server.url)
        assert sleep.waits == [wait]

    def test_a_spent_daily_limit_is_not_waited_for_a_window(self):
        """Daily-Remaining 0: no window wait helps (the day resets at midnight), so none is taken from the headers."""
        error = requests.HTTPError(response=_response(429, {"X-HubSpot-RateLimit-Daily": "250000",
                                                            "X-HubSpot-RateLimit-Daily-Remaining": "0",
                                                            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                                                            "X-HubSpot-RateLimit-Remaining": "0"}))
        assert retry_after_seconds(error) is None

    def test_rate_limit_headers_on_a_server_error_do_not_set_the_wait(self):
        """The headers ride on every answer: on a 503 they say nothing about when to retry."""
        error = requests.HTTPError(response=_response(503, {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                                                            "X-HubSpot-RateLimit-Remaining": "0"}))
        assert retry_after_seconds(error) is None


def _response(status: int, headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    return response
