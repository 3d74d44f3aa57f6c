"""Salesforce authentication: which of the three ways the secrets configure, and the logged-in client.

OAuth refresh token (+ client id and secret), else username + password + security token, else a session
id with SALESFORCE_INSTANCE_URL. simple-salesforce always logs in at https://login|test.salesforce.com;
LoginHostSession sends those hosts to SALESFORCE_LOGIN_URL (the sandbox) when it is set.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import requests
from simple_salesforce import Salesforce

from config.secrets import CredentialsIncomplete, SecretNotFoundError, SecretStore
from config.settings import Settings

_LOGIN_HOST = re.compile(r"^https://(login|test)\.salesforce\.com")


@dataclass(frozen=True)
class SalesforceCredentials:
    """One of the three ways to authenticate; which one is decided by what is configured."""

    method: str  # "refresh_token" | "password" | "session"
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    session_id: str | None = None

    @classmethod
    def from_secrets(cls, secrets: SecretStore, settings: Settings) -> "SalesforceCredentials":
        """OAuth refresh token if configured, else username + password + token, else session id + instance URL.

        A way that is partly configured is an error naming what is missing and where it is looked for;
        nothing configured at all is an error listing the three ways.
        """
        found = {name: secrets.get_optional(name) for names in CREDENTIAL_SETS.values() for name in names}
        partial = []
        for method, names in CREDENTIAL_SETS.items():
            missing = [n for n in names if not found[n]]
            if method == "session" and not settings.salesforce_instance_url:
                missing.append("SALESFORCE_INSTANCE_URL")
            if not missing:
                return cls(method, **{CREDENTIAL_FIELDS[n]: found[n] for n in names})
            if len(missing) < len(names) + (method == "session"):
                partial.append((names, missing))
        if partial:
            names, missing = partial[0]
            given = [n for n in names if found[n]]
            where = "; ".join(secrets.where(n) if n in found else "the setting SALESFORCE_INSTANCE_URL" for n in missing)
            raise CredentialsIncomplete(f"Salesforce is partly configured: {', '.join(given)} set, but "
                                        f"{', '.join(missing)} missing (set {where})")
        raise SecretNotFoundError(
            "no Salesforce credentials configured: set salesforce-refresh-token (+ client id/secret), or "
            "salesforce-username + salesforce-password + salesforce-security-token, or salesforce-session-id "
            "with SALESFORCE_INSTANCE_URL")


# The ways to authenticate, in the order they are tried, and the secrets each needs.
CREDENTIAL_SETS = {
    "refresh_token": ("salesforce-refresh-token", "salesforce-client-id", "salesforce-client-secret"),
    "password": ("salesforce-username", "salesforce-password", "salesforce-security-token"),
    "session": ("salesforce-session-id",),
}
CREDENTIAL_FIELDS = {name: name.removeprefix("salesforce-").replace("-", "_") for names in CREDENTIAL_SETS.values()
                     for name in names}


def configured(secrets: SecretStore, settings: Settings) -> None:
    """Raises SecretNotFoundError when no way to log in is set, CredentialsIncomplete when one is set in part (the
    registry's credentials check)."""
    SalesforceCredentials.from_secrets(secrets, settings)


class LoginHostSession(requests.Session):
    """A requests session that sends Salesforce's login hosts to another base URL (the sandbox).

    simple-salesforce always builds https://login.salesforce.com/...; this is the one seam that
    lets the unmodified client log in to a loopback server. Without a login_url it changes nothing.
    """

    def __init__(self, login_url: str | None = None, ca_bundle: str | None = None):
        super().__init__()
        self.login_url = login_url.rstrip("/") if login_url else None
        if ca_bundle:
            self.verify = ca_bundle

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        target = url.decode() if isinstance(url, bytes) else url
        if self.login_url:
            target = _LOGIN_HOST.sub(self.login_url, target)
        kwargs.setdefault("timeout", 120)
        # Per request, because requests lets REQUESTS_CA_BUNDLE override a session's verify.
        kwargs.setdefault("verify", self.verify)
        verb = method.decode() if isinstance(method, bytes) else method
        return super().request(verb, target, *args, **kwargs)


def connect(credentials: SalesforceCredentials, settings: Settings, session: requests.Session) -> Salesforce:
    """A simple-salesforce client logged in the way the credentials say (one API request, or none for a session id)."""
    version = settings.salesforce_api_version
    if credentials.method == "password":
        return Salesforce(username=credentials.username, password=credentials.password,
                          security_token=credentials.security_token, domain=settings.salesforce_domain,
                          version=version, session=session)
    if credentials.method == "session":
        return Salesforce(session_id=credentials.session_id, instance_url=settings.salesforce_instance_url,
                          version=version, session=session)
    response = session.post(
        f"https://{settings.salesforce_domain}.salesforce.com/services/oauth2/token",
        data={"grant_type": "refresh_token", "client_id": credentials.client_id,
              "client_secret": credentials.client_secret, "refresh_token": credentials.refresh_token})
    if response.status_code != 200:
        # The body names the OAuth error; it never holds the refresh token.
        raise PermissionError(f"Salesforce OAuth refresh failed: HTTP {response.status_code} {response.text[:300]}")
    token = response.json()
    return Salesforce(session_id=token["access_token"], instance_url=token["instance_url"], version=version,
                      session=session)
