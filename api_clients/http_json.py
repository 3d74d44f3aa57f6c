"""JSON over one requests session with a bearer token: the HTTP the REST clients share."""
from __future__ import annotations

from typing import Any

import requests

TIMEOUT_SECONDS = 60


def bearer_session(token: str) -> requests.Session:
    """A session that sends `Authorization: Bearer <token>` and asks for JSON."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
    return session


def get_json(session: requests.Session, url: str, params: dict[str, Any] | None = None,
             allow_404: bool = False) -> dict[str, Any] | None:
    """The JSON body of a GET; None for a 404 when allowed; HTTPError for any other failure."""
    response = session.get(url, params=params, timeout=TIMEOUT_SECONDS)
    if allow_404 and response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()
