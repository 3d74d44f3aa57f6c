"""HubSpot through hubspot-api-client (owners, contact search) and plain HTTP (v4 sequences).

Both go through one retry policy (429 after its Retry-After or, as HubSpot documents, its X-HubSpot-RateLimit-*
headers; 5xx) and two rate limiters: the private-app limit (settings.hubspot_requests_per_10s) for every call, the
search limit for searches, each divided among the instances that run at once (config.quotas.hubspot_client_limits).
urllib3 under the SDK is told not to retry answers itself, so every attempt is counted and limited.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterator, TypeVar

import requests
from hubspot import HubSpot
from hubspot.crm.contacts import Filter, FilterGroup, PublicObjectSearchRequest
from urllib3.util.retry import Retry

from api_clients.http_json import TIMEOUT_SECONDS, bearer_session, get_json
from api_clients.metered import MeteredCalls
from api_clients.rate_limit import RateLimiter
from config.quotas import hubspot_client_limits
from config.settings import Settings
from transform.values import epoch_ms, to_datetime

T = TypeVar("T")
SEARCH_CAP = 10_000  # HubSpot answers 400 when a search pages past 10,000 results
SEARCH_PAGE = 200
# The order the restart at the cap depends on, in the form HubSpot's search guide documents (its SDK types a sort
# as a string; the object form says the direction).
OLDEST_FIRST = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
# Connection retries stay with urllib3; a 429 or 503 with Retry-After, which it would retry on its own (GETs only),
# comes back to the retry policy.
SDK_RETRIES = Retry(total=3, respect_retry_after_header=False)


class HubSpotClient:
    def __init__(self, token: str, settings: Settings):
        base = settings.hubspot_base_url.rstrip("/")
        self._base = base
        self.sdk = HubSpot(access_token=token, host=base, retry=SDK_RETRIES)
        self._session = bearer_session(token)
        requests_per_10s, search_per_second = hubspot_client_limits(settings)
        self._calls = MeteredCalls(settings.retry_max_seconds, RateLimiter(requests_per_10s, 10.0))
        self._search = RateLimiter(search_per_second, 1.0)

    @property
    def api_calls(self) -> int:
        """Requests made (every attempt counts)."""
        return self._calls.count

    def _call(self, fn: Callable[[], T], search: bool = False) -> T:
        return self._calls(fn, also=self._search if search else None)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return self._call(lambda: get_json(self._session, f"{self._base}{path}", params))

    def owner_user_ids(self) -> list[str]:
        """User ids of the active owners who are people (the users who can own sequences), each once.

        An owner of type QUEUE is a queue, not a user: it owns no sequences, whatever its userId says.
        """
        user_ids: dict[str, None] = {}
        after: str | None = None
        while True:
            page = self._call(partial(self.sdk.crm.owners.owners_api.get_page, limit=100, after=after, archived=False))
            user_ids.update({str(owner.user_id): None for owner in page.results
                             if owner.user_id is not None and owner.type != "QUEUE"})
            if not page.paging or not page.paging.next:
                return list(user_ids)
            after = page.paging.next.after

    def sequences(self, user_id: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of one user's sequences."""
        params: dict[str, Any] = {"userId": user_id, "limit": 100}
        while True:
            body = self._get("/automation/v4/sequences", params) or {}
            yield body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            params = {**params, "after": after}

    def enrollment(self, contact_id: str) -> dict[str, Any] | None:
        """The contact's sequence enrollment, or None when it is not enrolled.

        HubSpot documents only the 200 of an enrollment; not enrolled is read in every plausible form: 404, 204,
        or 200 with an empty body or `{}`.
        """
        url = f"{self._base}/automation/v4/sequences/enrollments/contact/{contact_id}"
        return self._call(lambda: _enrollment_body(self._session.get(url, timeout=TIMEOUT_SECONDS)))

    def modified_contacts(self, since_ms: int) -> Iterator[list[dict[str, Any]]]:
        """Pages of contacts modified at or after since_ms, oldest first, every one exactly once.

        A search pages at most 10,000 results deep; before reaching that the search restarts from the
        last modification time seen, skipping the contacts already returned at that very time.
        """
        since, skip = since_ms, set[str]()
        while True:
            after, last_seen, at_last_seen = 0, since, set(skip)
            while True:
                page = self._search_page(since, after)
                fresh = [c for c in page["contacts"] if not (c["modified_ms"] == since and c["id"] in skip)]
                for contact in page["contacts"]:
                    if contact["modified_ms"] > last_seen:
                        last_seen, at_last_seen = contact["modified_ms"], set()
                    at_last_seen.add(contact["id"])
                if fresh:
                    yield fresh
                if page["next"] is None:
                    return
                after = page["next"]
                if after + SEARCH_PAGE > SEARCH_CAP:
                    break
            if last_seen == since and at_last_seen == skip:
                raise RuntimeError(f"more than {SEARCH_CAP} HubSpot contacts share lastmodifieddate {since}")
            since, skip = last_seen, at_last_seen

    def _search_page(self, since_ms: int, after: int) -> dict[str, Any]:
        request = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=[Filter(property_name="lastmodifieddate", operator="GTE",
                                                       value=str(since_ms))])],
            sorts=OLDEST_FIRST, properties=["email", "lastmodifieddate"], limit=SEARCH_PAGE, after=str(after))
        response = self._call(lambda: self.sdk.crm.contacts.search_api.do_search(public_object_search_request=request),
                              search=True)
        contacts = []
        for result in response.results:
            modified = to_datetime((result.properties or {}).get("lastmodifieddate")) or result.updated_at
            contacts.append({"id": str(result.id), "email": (result.properties or {}).get("email"),
                             "modified_ms": epoch_ms(modified)})
        next_after = response.paging.next.after if response.paging and response.paging.next else None
        return {"contacts": contacts, "next": int(next_after) if next_after is not None else None}


def _enrollment_body(response: requests.Response) -> dict[str, Any] | None:
    """The enrollment an answer holds; None for a not-enrolled answer; HTTPError for a failure."""
    if response.status_code in (204, 404):
        return None
    response.raise_for_status()
    body = response.json() if response.content.strip() else None
    return body or None
