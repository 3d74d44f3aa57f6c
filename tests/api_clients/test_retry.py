"""The retry policy against a real loopback server: what is retried, how long it waits, when it gives up."""
from __future__ import annotations

import pytest
import requests

from api_clients.retry import is_transient, retry_after_seconds, retry_policy
from sandbox.server import Response, SandboxServer


@pytest.fixture
def server():
    srv = SandboxServer("retry-test")

    @srv.route("GET", "/thing")
    def thing(request):
        return Response.json({"ok": True})

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


def test_gmail_rate_limit_403_is_transient():
    """Gmail's 403 rateLimitExceeded is throttling, not a permission error."""
    from googleapiclient.errors import HttpError
    from httplib2 import Response as HttpLib2Response

    throttled = HttpError(HttpLib2Response({"status": 403, "retry-after": "3"}),
                          b'{"error": {"errors": [{"reason": "userRateLimitExceeded"}]}}')
    forbidden = HttpError(HttpLib2Response({"status": 403}), b'{"error": {"errors": [{"reason": "forbidden"}]}}')
    assert is_transient(throttled) and retry_after_seconds(throttled) == 3.0
    assert not is_transient(forbidden)
