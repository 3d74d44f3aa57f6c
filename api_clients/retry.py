"""The one retry policy for API calls: transient errors retried with backoff, the rest fail fast.

Transient: HTTP 429, 500, 502, 503, 504, Gmail's 403 rateLimitExceeded / userRateLimitExceeded (or a 403
"Quota exceeded for quota metric ... per minute" that names no reason),
connection errors, timeouts, and bodies cut short by the network (requests' ChunkedEncodingError,
http.client's IncompleteRead; google-auth's TransportError around one of these). Retry-After is honoured (seconds or an HTTP date)
and, for a 429 without it, HubSpot's X-HubSpot-RateLimit-* headers. Waits grow exponentially with jitter otherwise, and
retrying stops after a bounded time, re-raising the last error. Works with requests, google-api-python-client,
simple-salesforce and hubspot-api-client exceptions alike (each keeps the response headers somewhere else).
"""
from __future__ import annotations

import email.utils
import http.client
import re
import socket
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, TypeVar

import requests
import tenacity

from observability.logger import get_logger

log = get_logger(__name__)
T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
RATE_LIMIT_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")
# Google's quota system also refuses a per-minute quota with a 403 whose body has only this message, no errors[]
# (reported by Gmail API users: GAM-team/got-your-back#309); a per-day quota does not clear by retrying.
QUOTA_PER_MINUTE = re.compile(r"Quota exceeded for quota metric '[^']*' and limit '[^']*per minute")
MAX_SINGLE_WAIT = 60.0
# A response body that ended before its Content-Length or last chunk: the connection dropped mid-body.
TRUNCATED_BODY = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError,
                  http.client.IncompleteRead)


class TransientAPIError(Exception):
    """Raised by a client for a failure worth retrying that carries no HTTP status of its own."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def http_status(error: BaseException) -> int | None:
    """The HTTP status an exception carries, whichever client raised it."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "resp", None), "status", None)  # googleapiclient HttpError
    if status is None:
        status = getattr(error, "status", None)  # simple-salesforce SalesforceError
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _headers(error: BaseException) -> dict[str, str]:
    """The response headers an exception carries, names in lower case, wherever its client library keeps them."""
    found: Any = None
    response = getattr(error, "response", None)
    if response is not None and getattr(response, "headers", None) is not None:
        found = response.headers  # requests
    elif isinstance(getattr(error, "resp", None), dict):
        found = error.resp  # type: ignore[attr-defined]  # googleapiclient: httplib2.Response is a dict of headers
    elif getattr(error, "headers", None) is not None:
        found = error.headers  # type: ignore[attr-defined]  # hubspot-api-client's ApiException (urllib3's headers)
    else:
        found = _raised_response_headers(error)
    return {str(name).lower(): str(value) for name, value in found.items()} if found else {}


def _raised_response_headers(error: BaseException) -> Any:
    """Headers of the requests.Response with the error's status held by the frames it was raised through.

    simple-salesforce's SalesforceError keeps the URL, status and body but drops the response; the frame that
    raised it (exception_handler(result)) still holds it, and the traceback keeps that frame.
    """
    status, found, trace = http_status(error), None, error.__traceback__
    while trace is not None and status is not None:
        for value in trace.tb_frame.f_locals.values():
            if isinstance(value, requests.Response) and value.status_code == status:
                found = value  # the innermost one: the response the error was made from
        trace = trace.tb_next
    return found.headers if found is not None else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_wait_seconds(headers: dict[str, str]) -> float | None:
    """The wait HubSpot's X-HubSpot-RateLimit-* headers imply for a 429 that has no Retry-After.

    HubSpot documents these headers, not Retry-After. The rolling window (Interval-Milliseconds) when none of it
    remains or Remaining is absent; a second when the window still has room (the limit hit was a per-second
    one: search, or Secondly); nothing when the daily limit is spent (no window wait helps before midnight).
    """
    if not any(name.startswith("x-hubspot-ratelimit-") for name in headers):
        return None
    if _number(headers.get("x-hubspot-ratelimit-daily-remaining")) == 0:
        return None
    interval = _number(headers.get("x-hubspot-ratelimit-interval-milliseconds"))
    remaining = _number(headers.get("x-hubspot-ratelimit-remaining"))
    if interval is not None and (remaining is None or remaining <= 0):
        return interval / 1000
    return 1.0


def retry_after_seconds(error: BaseException) -> float | None:
    """Seconds the server asked us to wait: Retry-After (seconds or an HTTP date), or for a 429 without it what
    HubSpot's rate-limit headers imply; None when it said nothing."""
    if isinstance(error, TransientAPIError):
        return error.retry_after
    headers = _headers(error)
    value = headers.get("retry-after")
    if not value:
        return rate_limit_wait_seconds(headers) if http_status(error) == 429 else None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


# A host that refuses connections is retried this long only: a server restarting comes back in seconds, a wrong
# host or port never does, and the person waiting should hear which within seconds.
REFUSED_GRACE_SECONDS = 5.0


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and everything it wraps: __cause__, __context__, urllib3's `reason`, exceptions among its args."""
    stack: list[Any] = [error]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]


def unreachable(error: BaseException) -> str | None:
    """"does not resolve" or "refuses connections" when the error comes from a host in that state, else None.
    A temporary failure of the resolver (EAI_AGAIN) is not an unknown name."""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror) and cause.errno != socket.EAI_AGAIN:
            return "does not resolve"
        if isinstance(cause, ConnectionRefusedError):
            return "refuses connections"
    return None


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: throttling, server errors, dropped connections, timeouts."""
    if isinstance(error, requests.exceptions.SSLError):
        return False  # an untrusted certificate does not get better by asking again
    if unreachable(error) == "does not resolve":
        return False  # a name that does not exist will not exist in a minute either
    if isinstance(error, (TransientAPIError, requests.ConnectionError, requests.Timeout,
                          ConnectionError, TimeoutError, socket.timeout, *TRUNCATED_BODY)):
        return True
    inner = error.__cause__ or error.__context__
    if type(error).__name__ == "TransportError" and inner is not None:
        return is_transient(inner)  # google-auth wraps the transport's own error (raised while handling it)
    status = http_status(error)
    if status in TRANSIENT_STATUSES:
        return True
    if status == 403:
        content = getattr(error, "content", b"") or getattr(getattr(error, "response", None), "text", "")
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content)
        return any(reason in text for reason in RATE_LIMIT_REASONS) or bool(QUOTA_PER_MINUTE.search(text))
    return False


class _WaitRetryAfterOrBackoff(tenacity.wait.wait_base):
    """Waits what Retry-After asks, or exponential backoff with jitter when it says nothing."""

    def __init__(self, initial: float, maximum: float):
        self._backoff = tenacity.wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        asked = retry_after_seconds(error) if error else None
        if asked is not None:
            return min(asked, MAX_SINGLE_WAIT)
        return self._backoff(retry_state)


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    error = retry_state.outcome.exception() if retry_state.outcome else None
    log.warning("transient error, retrying", extra={"json_fields": {
        "attempt": retry_state.attempt_number, "error_type": type(error).__name__,
        "http_status": http_status(error) if error else None,
        "wait_seconds": round(retry_state.upcoming_sleep, 3)}})


class _StopRefusedPastGrace(tenacity.stop.stop_base):
    """Stops once a host has refused connections for REFUSED_GRACE_SECONDS."""

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return (error is not None and (retry_state.seconds_since_start or 0.0) >= REFUSED_GRACE_SECONDS
                and unreachable(error) == "refuses connections")


def retry_policy(max_seconds: float = 120.0, initial_wait: float = 0.5, max_wait: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> tenacity.Retrying:
    """A tenacity Retrying that retries transient errors for at most max_seconds (a host refusing connections for
    REFUSED_GRACE_SECONDS; a name that does not resolve not at all)."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        wait=_WaitRetryAfterOrBackoff(initial_wait, max_wait),
        stop=tenacity.stop_after_delay(max_seconds) | _StopRefusedPastGrace(),
        before_sleep=_log_retry,
        sleep=sleep,
        reraise=True,
    )
