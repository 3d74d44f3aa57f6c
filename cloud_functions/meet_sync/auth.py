"""Delegated Google Meet access: a service-account key acting as each Workspace user (domain-wide delegation, as
Gmail's), read-only, for the Meet REST API (conference records, participants, transcripts), the Calendar (the
event a conference belongs to: its attendees' emails) and Drive (a transcript's Google Doc, exported as text).

The key is the secret `meet-service-account-key` (it may be the same key as gmail-service-account-key, with these
scopes added to its client id under domain-wide delegation). The services are built from the discovery documents
bundled with google-api-python-client (no network); MEET_API_ENDPOINT points all three elsewhere (the sandbox).
"""
from __future__ import annotations

import json
from typing import Any

import google_auth_httplib2
import httplib2
from google.oauth2 import service_account
from googleapiclient.discovery import build

from config.secrets import CredentialsIncomplete, SecretStore
from config.settings import Settings

KEY_SECRET = "meet-service-account-key"
SCOPES = ["https://www.googleapis.com/auth/meetings.space.readonly",
          "https://www.googleapis.com/auth/calendar.events.readonly",
          "https://www.googleapis.com/auth/drive.readonly"]
# Each API's path under the endpoint, as its discovery document's servicePath says.
SERVICES = {"meet": ("v2", ""), "calendar": ("v3", "calendar/v3/"), "drive": ("v3", "drive/v3/")}


def meet_users(settings: Settings) -> list[str]:
    """The users whose conferences are read: MEET_USERS, else MAILBOXES."""
    return list(settings.meet_users or settings.mailboxes)


def service_account_key(secrets: SecretStore, settings: Settings) -> str:
    """The service-account key (JSON); a key with no users to act as is a partial configuration."""
    key = secrets.get(KEY_SECRET)
    if not meet_users(settings):
        raise CredentialsIncomplete(f"Google Meet is partly configured: {KEY_SECRET} set, but no users: set "
                                    "MEET_USERS (or MAILBOXES) in the environment or .env")
    return key


def delegated_credentials(key: str, user: str) -> service_account.Credentials:
    """Credentials of the key's service account acting as `user`, read-only."""
    try:
        info = json.loads(key)
    except json.JSONDecodeError:
        raise ValueError(f"the {KEY_SECRET} secret is not a JSON service-account key") from None
    return service_account.Credentials.from_service_account_info(info, scopes=SCOPES).with_subject(user)


def services(credentials: service_account.Credentials, endpoint: str | None) -> dict[str, Any]:
    """The Meet, Calendar and Drive services over one authorised httplib2 client, at `endpoint` when given."""
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=120))
    built = {}
    for name, (version, path) in SERVICES.items():
        options = {"api_endpoint": f"{endpoint.rstrip('/')}/{path}"} if endpoint else None
        built[name] = build(name, version, http=http, cache_discovery=False, static_discovery=True,
                            client_options=options)
    return built


def configured(secrets: SecretStore, settings: Settings) -> None:
    """Raises SecretNotFoundError when the key is not set, CredentialsIncomplete when it has no users to act as."""
    service_account_key(secrets, settings)
