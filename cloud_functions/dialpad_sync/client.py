"""Dialpad API v2 over one requests session: call pages by time window, transcripts with bounded concurrency.

Every request passes the company-wide rate limiter (settings.dialpad_requests_per_second) and the
retry policy (429 with Retry-After, 5xx, connection errors). `GET /call/{id}` (10 per minute) is never
used: the list already carries every field.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import requests

from api_clients.http_json import bearer_session, get_json
from api_clients.metered import MeteredCalls
from api_clients.rate_limit import RateLimiter
from config.settings import Settings


class DialpadClient:
    def __init__(self, api_key: str, settings: Settings, session: requests.Session | None = None):
        self._base = settings.dialpad_base_url.rstrip("/")
        self._session = session or bearer_session(api_key)
        self._calls = MeteredCalls(settings.retry_max_seconds, RateLimiter(settings.dialpad_requests_per_second, 1.0))
        self._concurrency = settings.dialpad_transcript_concurrency

    @property
    def api_calls(self) -> int:
        """Requests made (every attempt counts)."""
        return self._calls.count

    def _get(self, path: str, params: dict[str, Any] | None = None, allow_404: bool = False) -> dict[str, Any] | None:
        return self._calls(lambda: get_json(self._session, f"{self._base}{path}", params, allow_404))

    def call_pages(self, started_after_ms: int, started_before_ms: int) -> Iterator[list[dict[str, Any]]]:
        """Pages of finished calls started in (after, before), newest first, following the cursor.

        The filters go with the cursor on every page: the spec does not say the cursor keeps them, and
        Dialpad's own SDK sends them again (a cursor alone could list the whole call history)."""
        window: dict[str, Any] = {"started_after": started_after_ms, "started_before": started_before_ms}
        params = window
        while True:
            body = self._get("/api/v2/call", params) or {}
            yield body.get("items") or []
            cursor = body.get("cursor")
            if not cursor:
                return
            params = {**window, "cursor": cursor}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        def send() -> dict[str, Any]:
            response = self._session.post(f"{self._base}{path}", json=body, timeout=60)
            response.raise_for_status()
            return response.json()

        return self._calls(send)

    def subscribe_calls(self, hook_url: str, secret: str, states: list[str]) -> dict[str, Any]:
        """Creates a webhook (`POST /api/v2/webhooks`, events signed as JWTs HS256 with secret) and the company's
        call event subscription for these states (`POST /api/v2/subscriptions/call`); answers the subscription."""
        webhook = self._post("/api/v2/webhooks", {"hook_url": hook_url, "secret": secret})
        return self._post("/api/v2/subscriptions/call", {"webhook_id": webhook["id"], "call_states": states,
                                                         "enabled": True, "group_calls_only": False})

    def transcripts(self, call_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The transcripts of these calls (those that have lines), fetched at most `concurrency` at a time.

        A call without one may answer 404 or 200 with its call id and no lines (an untranscribed call)."""
        if not call_ids:
            return {}
        with ThreadPoolExecutor(max_workers=self._concurrency) as pool:
            found = pool.map(lambda call_id: self._get(f"/api/v2/transcripts/{call_id}", allow_404=True), call_ids)
            return {call_id: transcript for call_id, transcript in zip(call_ids, found) if transcript and transcript.get("lines")}
