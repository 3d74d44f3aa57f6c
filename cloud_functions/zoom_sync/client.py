"""Zoom API v2 over one requests session: users, past meetings (report API), their participants, cloud recordings
and transcript files.

Zoom limits requests per account by category (Light, Medium, Heavy, Resource-intensive): each request passes its
category's limiter at the Pro plan's rates (the lowest plan with the report API; Business and above allow more).
A 429 says which limit in X-RateLimit-Type: QPS is waited out (Retry-After, else a second) and retried by the one
retry policy; Daily-limit (Heavy and Resource-intensive share a daily count, reset at 00:00 UTC, Retry-After then
a date) ends the run partial with what it merged, the next run resumes. A refused access token (401) is asked for
again once. Meeting UUIDs that start with "/" or contain "//" are encoded twice in a path, as Zoom requires.
"""
from __future__ import annotations

from datetime import date
from typing import Any, Iterator
from urllib.parse import quote

import requests

from api_clients.http_json import TIMEOUT_SECONDS
from api_clients.metered import MeteredCalls
from api_clients.rate_limit import RateLimiter
from api_clients.retry import TransientAPIError
from cloud_functions.zoom_sync.auth import AccessTokens, ZoomCredentials
from config.settings import Settings
from pipeline.runner import StopSync

PAGE_SIZE = 300
# Requests per second by rate-limit category, Zoom's Pro plan.
CATEGORY_PER_SECOND = {"light": 30, "medium": 20, "heavy": 10}


def path_uuid(uuid: str) -> str:
    """A meeting UUID as a path segment: encoded twice when it starts with / or contains //, as Zoom asks."""
    once = quote(uuid, safe="")
    return quote(once, safe="") if uuid.startswith("/") or "//" in uuid else once


class ZoomClient:
    def __init__(self, credentials: ZoomCredentials, settings: Settings, session: requests.Session | None = None):
        self._base = settings.zoom_base_url.rstrip("/")
        self._session = session or requests.Session()
        self.tokens = AccessTokens(credentials, settings.zoom_oauth_url, self._session)
        self._calls = MeteredCalls(settings.retry_max_seconds)
        self._limits = {category: RateLimiter(rate, 1.0) for category, rate in CATEGORY_PER_SECOND.items()}
        self._renewed_after_401: str | None = None  # a token asked for after a 401: refused too, the 401 stands

    @property
    def api_calls(self) -> int:
        """Requests made (every attempt counts; token requests not)."""
        return self._calls.count

    def _request(self, url: str, params: dict[str, Any] | None, allow_404: bool) -> requests.Response | None:
        token = self.tokens.current()
        response = self._session.get(url, params=params, timeout=TIMEOUT_SECONDS,
                                     headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        if response.status_code == 401 and token != self._renewed_after_401:
            self.tokens.expire(token)
            self._renewed_after_401 = self.tokens.current()
            raise TransientAPIError("Zoom refused the access token; a new one is asked for", retry_after=0)
        if response.status_code == 429:
            _raise_rate_limited(response)
        if allow_404 and response.status_code == 404:
            return None
        response.raise_for_status()
        return response

    def _get(self, path_or_url: str, category: str, params: dict[str, Any] | None = None,
             allow_404: bool = False) -> requests.Response | None:
        url = path_or_url if path_or_url.startswith("http") else f"{self._base}{path_or_url}"
        return self._calls(lambda: self._request(url, params, allow_404), also=self._limits[category])

    def _pages(self, path: str, key: str, category: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        params = {**params, "page_size": PAGE_SIZE}
        while True:
            response = self._get(path, category, params, allow_404=True)
            body = response.json() if response is not None else {}
            yield body.get(key) or []
            token = body.get("next_page_token")
            if not token:
                return
            params = {**params, "next_page_token": token}

    def users(self) -> list[dict[str, Any]]:
        """The account's active users."""
        return [user for page in self._pages("/users", "users", "light", {"status": "active"}) for user in page]

    def meetings(self, user_id: str, first: date, last: date) -> Iterator[list[dict[str, Any]]]:
        """Pages of the user's past meeting instances that started from `first` to `last` (days, at most a month)."""
        return self._pages(f"/report/users/{quote(user_id, safe='')}/meetings", "meetings", "heavy",
                           {"from": first.isoformat(), "to": last.isoformat(), "type": "past"})

    def participants(self, uuid: str) -> list[dict[str, Any]]:
        """Every join of every participant of a past meeting instance (none when Zoom has no such instance)."""
        pages = self._pages(f"/past_meetings/{path_uuid(uuid)}/participants", "participants", "medium", {})
        return [join for page in pages for join in page]

    def recordings(self, user_id: str, first: date, last: date) -> list[dict[str, Any]]:
        """The user's cloud-recorded meetings from `first` to `last` (at most a month), each with its files."""
        pages = self._pages(f"/users/{quote(user_id, safe='')}/recordings", "meetings", "medium",
                            {"from": first.isoformat(), "to": last.isoformat()})
        return [meeting for page in pages for meeting in page]

    def download_text(self, download_url: str) -> str:
        """A recording file's content as text (a transcript's VTT), downloaded with the access token."""
        response = self._get(download_url, "medium")
        assert response is not None
        response.encoding = response.encoding or "utf-8"
        return response.text


def _raise_rate_limited(response: requests.Response) -> None:
    """A 429 as Zoom means it: the day's count spent ends the run (StopSync), a per-second one is waited out."""
    category = response.headers.get("X-RateLimit-Category", "an API")
    if response.headers.get("X-RateLimit-Type", "").lower().startswith("daily"):
        raise StopSync(f"Zoom's daily rate limit of the {category} category is spent (until "
                       f"{response.headers.get('Retry-After', '00:00 UTC')}); the next run resumes",
                       ends_invocation=True)
    try:
        wait = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        wait = 1.0
    raise TransientAPIError(f"Zoom's per-second rate limit of the {category} category", retry_after=wait)
