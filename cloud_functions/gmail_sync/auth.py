"""Delegated Gmail access: the service-account key acts as each mailbox (domain-wide delegation).

The service is built from the discovery document bundled with google-api-python-client (no network).
`api_endpoint` redirects ordinary calls, but batch requests ignore it, so the batch URI is built here
from the same endpoint (see batch_uri). The key's token_uri decides where tokens are fetched.
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

SCOPES = ["https://www.googleapis.com/auth/gmail.readonly"]
GOOGLE_BATCH_URI = "https://gmail.googleapis.com/batch/gmail/v1"
KEY_SECRET = "gmail-service-account-key"


def service_account_key(secrets: SecretStore, settings: Settings) -> str:
    """The service-account key (JSON) acting for the mailboxes; a key without MAILBOXES is a partial configuration."""
    key = secrets.get(KEY_SECRET)
    if not settings.mailboxes:
        raise CredentialsIncomplete(f"Gmail is partly configured: {KEY_SECRET} set, but no mailboxes: "
                                    "set MAILBOXES (environment or .env)")
    return key


def configured(secrets: SecretStore, settings: Settings) -> None:
    """Raises SecretNotFoundError when the key is not set, CredentialsIncomplete without MAILBOXES (the registry's
    credentials check)."""
    service_account_key(secrets, settings)


def delegated_credentials(service_account_key: str, mailbox: str) -> service_account.Credentials:
    """Credentials of the key's service account acting as `mailbox`, read-only."""
    try:
        info = json.loads(service_account_key)
    except json.JSONDecodeError:
        raise ValueError("the gmail-service-account-key secret is not a JSON service-account key") from None
    return service_account.Credentials.from_service_account_info(info, scopes=SCOPES).with_subject(mailbox)


def gmail_service(credentials: service_account.Credentials, endpoint: str | None) -> Any:
    """The Gmail v1 service over an authorised httplib2 client, at `endpoint` when given."""
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=120))
    options = {"api_endpoint": endpoint} if endpoint else None
    return build("gmail", "v1", http=http, cache_discovery=False, static_discovery=True, client_options=options)


def batch_uri(endpoint: str | None) -> str:
    """Where batch requests go: `new_batch_http_request()` would always use Google's."""
    return f"{endpoint.rstrip('/')}/batch" if endpoint else GOOGLE_BATCH_URI
