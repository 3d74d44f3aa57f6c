"""Zoom's credentials: a Server-to-Server OAuth app's account id, client id and client secret (secrets
`zoom-account-id`, `zoom-client-id`, `zoom-client-secret`), traded for an hour-long access token.

The token request is POST {oauth host}/oauth/token?grant_type=account_credentials&account_id=..., with the client
id and secret as HTTP basic auth; the answer's access_token is a bearer token for the API and for downloading
recording files. There is no refresh token: a new one is asked for when the old one is near its end.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests

from api_clients.http_json import TIMEOUT_SECONDS
from config.secrets import CredentialsIncomplete, SecretNotFoundError, SecretStore
from config.settings import Settings

SECRETS = ("zoom-account-id", "zoom-client-id", "zoom-client-secret")
EARLY_SECONDS = 120  # a token this close to its end is replaced before use (a long download outlives it otherwise)


@dataclass(frozen=True)
class ZoomCredentials:
    account_id: str
    client_id: str
    client_secret: str

    @classmethod
    def from_secrets(cls, secrets: SecretStore) -> "ZoomCredentials":
        """The three secrets; SecretNotFoundError when none is set, CredentialsIncomplete when some are."""
        found = {name: secrets.get_optional(name) for name in SECRETS}
        missing = [name for name, value in found.items() if not value]
        if len(missing) == len(SECRETS):
            raise SecretNotFoundError(f"no Zoom credentials configured: set {', '.join(SECRETS)} "
                                      f"({secrets.where(SECRETS[0])}, and likewise)")
        if missing:
            raise CredentialsIncomplete(f"Zoom is partly configured: {', '.join(missing)} missing (set "
                                        f"{'; '.join(secrets.where(name) for name in missing)})")
        return cls(*(str(found[name]) for name in SECRETS))


class AccessTokens:
    """The current access token of the app, asked for again when it nears its end (thread-safe)."""

    def __init__(self, credentials: ZoomCredentials, oauth_url: str, session: requests.Session,
                 clock: Callable[[], float] = time.monotonic):
        self._credentials, self._url, self._session, self._clock = credentials, oauth_url.rstrip("/"), session, clock
        self._token: str | None = None
        self._until = 0.0
        self._lock = threading.Lock()
        self.issued = 0

    def current(self) -> str:
        """A token valid for at least EARLY_SECONDS more."""
        with self._lock:
            if self._token is None or self._clock() >= self._until - EARLY_SECONDS:
                response = self._session.post(
                    f"{self._url}/oauth/token",
                    params={"grant_type": "account_credentials", "account_id": self._credentials.account_id},
                    auth=(self._credentials.client_id, self._credentials.client_secret), timeout=TIMEOUT_SECONDS)
                response.raise_for_status()
                body = response.json()
                self._token, self._until = body["access_token"], self._clock() + float(body.get("expires_in", 3600))
                self.issued += 1
            return self._token

    def expire(self, token: str) -> None:
        """Forgets the token (the API refused it): the next call asks for a new one."""
        with self._lock:
            if self._token == token:
                self._token = None


def configured(secrets: SecretStore, _settings: Settings) -> None:
    """Raises SecretNotFoundError when no Zoom secret is set, CredentialsIncomplete when some are."""
    ZoomCredentials.from_secrets(secrets)
