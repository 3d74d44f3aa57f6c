"""Salesforce access through simple-salesforce: authentication, REST query paging, Bulk API 2.0, API budget.

Every HTTP call goes through api_clients.retry (429/5xx/connection errors retried; 4xx raised). The daily
API budget is read from Sforce-Limit-Info after each call: below the reserve, or on
REQUEST_LIMIT_EXCEEDED, the client raises StopSync so the run ends partial with what it merged.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import pyarrow as pa
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.util import exception_handler

from api_clients.metered import MeteredCalls
from config.secrets import SecretNotFoundError, SecretStore
from config.settings import Settings
from observability.logger import get_logger
from pipeline.runner import StopSync
from transform.columns import read_csv

log = get_logger(__name__)
T = TypeVar("T")
_LOGIN_HOST = re.compile(r"^https://(login|test)\.salesforce\.com")
BULK_POLL_SECONDS = (0.2, 0.5, 1, 2, 5)
API_BUDGET_STOP = "Salesforce API budget"  # how a stop for the org's daily API budget begins


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


class CredentialsIncomplete(SecretNotFoundError):
    """Some of the secrets of one way to authenticate are set, not all: never a reason to fall back."""


# The ways to authenticate, in the order they are tried, and the secrets each needs.
CREDENTIAL_SETS = {
    "refresh_token": ("salesforce-refresh-token", "salesforce-client-id", "salesforce-client-secret"),
    "password": ("salesforce-username", "salesforce-password", "salesforce-security-token"),
    "session": ("salesforce-session-id",),
}
CREDENTIAL_FIELDS = {name: name.removeprefix("salesforce-").replace("-", "_") for names in CREDENTIAL_SETS.values()
                     for name in names}


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
        if self.login_url and isinstance(url, str):
            url = _LOGIN_HOST.sub(self.login_url, url)
        kwargs.setdefault("timeout", 120)
        # Per request, because requests lets REQUESTS_CA_BUNDLE override a session's verify.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, *args, **kwargs)


def _error_codes(error: SalesforceError) -> str:
    return str(getattr(error, "content", "") or "")


class SalesforceClient:
    """Pages of records from one org, counted and within the API budget."""

    def __init__(self, credentials: SalesforceCredentials, settings: Settings, session: requests.Session | None = None):
        self._credentials = credentials
        self._settings = settings
        self._session = session or LoginHostSession(
            settings.salesforce_login_url, str(settings.salesforce_ca_bundle) if settings.salesforce_ca_bundle else None)
        self._calls = MeteredCalls(settings.retry_max_seconds)
        self._sf: Salesforce | None = None

    @property
    def api_calls(self) -> int:
        """Requests made (every attempt counts)."""
        return self._calls.count

    # -- plumbing
    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def request() -> T:
            try:
                return fn(*args, **kwargs)
            except SalesforceError as error:
                if "REQUEST_LIMIT_EXCEEDED" in _error_codes(error):
                    raise StopSync(f"{API_BUDGET_STOP}: daily request limit exceeded (REQUEST_LIMIT_EXCEEDED)",
                                   ends_invocation=True) from None
                raise
        return self._calls(request)

    @property
    def sf(self) -> Salesforce:
        """The simple-salesforce client, logged in on first use."""
        if self._sf is None:
            self._sf = self._call(self._connect)
        return self._sf

    def _connect(self) -> Salesforce:
        creds, settings = self._credentials, self._settings
        common = {"version": settings.salesforce_api_version, "session": self._session}
        if creds.method == "password":
            return Salesforce(username=creds.username, password=creds.password, security_token=creds.security_token,
                              domain=settings.salesforce_domain, **common)
        if creds.method == "session":
            return Salesforce(session_id=creds.session_id, instance_url=settings.salesforce_instance_url, **common)
        response = self._session.post(
            f"https://{settings.salesforce_domain}.salesforce.com/services/oauth2/token",
            data={"grant_type": "refresh_token", "client_id": creds.client_id, "client_secret": creds.client_secret,
                  "refresh_token": creds.refresh_token})
        if response.status_code != 200:
            # The body names the OAuth error; it never holds the refresh token.
            raise PermissionError(f"Salesforce OAuth refresh failed: HTTP {response.status_code} {response.text[:300]}")
        token = response.json()
        return Salesforce(session_id=token["access_token"], instance_url=token["instance_url"], **common)

    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) of daily API requests from the last Sforce-Limit-Info header."""
        usage = self.sf.api_usage.get("api-usage") if self._sf else None
        return (usage.used, usage.total) if usage else None

    def check_budget(self) -> None:
        """Raises StopSync when the remaining daily requests fall under the reserve."""
        usage = self.api_usage()
        if usage and usage[1] - usage[0] < self._settings.salesforce_api_reserve:
            raise StopSync(f"{API_BUDGET_STOP} low: {usage[1] - usage[0]} daily requests left, "
                           f"reserve is {self._settings.salesforce_api_reserve}", ends_invocation=True)

    # -- REST
    def describe(self, object_name: str) -> dict[str, Any]:
        """The object's describe: its fields with their types (custom ones included)."""
        return self._call(getattr(self.sf, object_name).describe)

    def count(self, object_name: str) -> int:
        """Records of an object, deleted ones included (queryAll COUNT())."""
        return int(self._call(self.sf.query, f"SELECT COUNT() FROM {object_name}", include_deleted=True)["totalSize"])

    def query_pages(self, soql: str, include_deleted: bool = True) -> Iterator[tuple[list[dict[str, Any]], bool]]:
        """The pages of a REST query/queryAll, following nextRecordsUrl, one request at a time; each with
        whether it is the last."""
        headers = {"Sforce-Query-Options": f"batchSize={self._settings.salesforce_query_batch_size}"}
        result = self._call(self.sf.query, soql, include_deleted=include_deleted, headers=headers)
        while True:
            last = result.get("done", True) or not result.get("nextRecordsUrl")
            yield result["records"], last
            if last:
                return
            self.check_budget()
            result = self._call(self.sf.query_more, result["nextRecordsUrl"], identifier_is_url=True,
                                include_deleted=include_deleted, headers=headers)

    # -- Bulk API 2.0
    def _bulk(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        sf = self.sf

        def request() -> requests.Response:
            response = sf.session.request(method, f"{sf.bulk2_url}{path}", headers=sf.headers, **kwargs)
            if response.status_code >= 300:
                exception_handler(response, name=path)
            limit_info = response.headers.get("Sforce-Limit-Info")
            if limit_info:
                sf.api_usage = sf.parse_api_usage(limit_info)
            return response

        return self._call(request)

    def start_bulk_query(self, soql: str, include_deleted: bool = True) -> str:
        """The id of a new Bulk API 2.0 query job (queryAll when include_deleted)."""
        return self._bulk("POST", "query", json={"operation": "queryAll" if include_deleted else "query",
                                                 "query": soql}).json()["id"]

    def bulk_job_state(self, job_id: str) -> str | None:
        """The job's state (UploadComplete, InProgress, JobComplete, Failed, Aborted); None once it is gone."""
        try:
            return self._bulk("GET", f"query/{job_id}").json()["state"]
        except SalesforceError as error:
            if error.status == 404:  # deleted, or past the days Salesforce keeps results
                return None
            raise

    def wait_for_bulk_job(self, job_id: str, deadline: float, clock: Callable[[], float] = time.monotonic) -> bool:
        """True once the job is complete; False when the deadline comes first (the job keeps running at
        Salesforce and a later run picks it up). Failed or Aborted raise; a job that is gone raises LookupError."""
        attempt = 0
        while True:
            state = self.bulk_job_state(job_id)
            if state == "JobComplete":
                return True
            if state is None:
                raise LookupError(f"Salesforce Bulk job {job_id} is gone")
            if state in ("Failed", "Aborted"):
                raise RuntimeError(f"Salesforce Bulk job {job_id} ended {state}")
            pause = BULK_POLL_SECONDS[min(attempt, len(BULK_POLL_SECONDS) - 1)]
            if clock() + pause >= deadline:
                return False
            time.sleep(pause)
            attempt += 1

    def bulk_results(self, job_id: str, locator: str) -> tuple[pa.Table, str | None]:
        """One CSV page of a complete job's results from `locator` ("" for the first) as Arrow string columns
        (an empty cell is null), and the locator of the next page (None after the last)."""
        if locator:
            self.check_budget()
        params = {"maxRecords": self._settings.salesforce_bulk_page_records, **({"locator": locator} if locator else {})}
        response = self._bulk("GET", f"query/{job_id}/results", params=params)
        following = response.headers.get("Sforce-Locator", "null")
        return read_csv(response.content), (None if not following or following == "null" else following)
