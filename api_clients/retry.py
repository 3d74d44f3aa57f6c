"""The one retry policy for API calls: transient errors retried with backoff, the rest fail fast.

Transient: HTTP 429, 500, 502, 503, 504, Gmail's 403 rateLimitExceeded / userRateLimitExceeded (or a 403
"Quota exceeded for quota metric ... per minute" that names no reason),
connection errors, timeouts, and bodies cut short by the network (requests' ChunkedEncodingError,
http.client's IncompleteRead; google-auth's TransportError around one of these). Retry-After is honoured (seconds or an HTTP date). Waits grow
exponentially with jitter, and retrying stops after a bounded time, re-raising the last error.
Works with requests, google-api-python-client and simple-salesforce exceptions alike.
"""
from __future__ import annotations

import email.utils
import http.client
import re
import socket
import time
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar

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


def _headers(error: BaseException) -> Any:
    response = getattr(error, "response", None)
    if response is not None and getattr(response, "headers", None) is not None:
        return response.headers
    resp = getattr(error, "resp", None)  # googleapiclient: httplib2.Response is a dict of headers
    return resp if isinstance(resp, dict) else {}


def retry_after_seconds(error: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After), if it said."""
    if isinstance(error, TransientAPIError):
        return error.retry_after
    headers = _headers(error)
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: throttling, server errors, dropped connections, timeouts."""
    if isinstance(error, requests.exceptions.SSLError):
        return False  # an untrusted certificate does not get better by asking again
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


def retry_policy(max_seconds: float = 120.0, initial_wait: float = 0.5, max_wait: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> tenacity.Retrying:
    """A tenacity Retrying that retries transient errors for at most max_seconds."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        wait=_WaitRetryAfterOrBackoff(initial_wait, max_wait),
        stop=tenacity.stop_after_delay(max_seconds),
        before_sleep=_log_retry,
        sleep=sleep,
        reraise=True,
    )
