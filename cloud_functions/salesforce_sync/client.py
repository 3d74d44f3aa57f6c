"""Salesforce access through simple-salesforce: authentication, REST query paging, Bulk API 2.0, API budget.

Every HTTP call goes through api_clients.retry (429/5xx/connection errors retried; 4xx raised). The daily
API budget is read from Sforce-Limit-Info after each call: below the reserve, or on
REQUEST_LIMIT_EXCEEDED for the daily limit, the client raises StopSync so the run ends partial with what it merged.
Salesforce answers concurrency limits with the same REQUEST_LIMIT_EXCEEDED ("ConcurrentPerOrgLongTxn Limit
exceeded", "ConcurrentRequests (Concurrent API Requests) Limit exceeded"): a burst that clears in seconds, so
those are retried with backoff like a 429, and only a limit still held when the retries give up ends the
object's run partial (not the invocation: the daily budget is not spent).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator, TypeVar

import pyarrow as pa
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError
from simple_salesforce.util import exception_handler

from api_clients.metered import MeteredCalls
from api_clients.retry import TransientAPIError
from cloud_functions.salesforce_sync.auth import LoginHostSession, SalesforceCredentials, connect
from config.settings import Settings
from observability.logger import get_logger
from pipeline.runner import StopSync
from transform.columns import read_csv

log = get_logger(__name__)
T = TypeVar("T")
BULK_POLL_SECONDS = (0.2, 0.5, 1, 2, 5)
API_BUDGET_STOP = "Salesforce API budget"  # how a stop for the org's daily API budget begins
BULK_ENDED = ("Failed", "Aborted")  # the states a Bulk job ends in without results


def _error_codes(error: SalesforceError) -> str:
    return str(getattr(error, "content", "") or "")


class ConcurrencyLimited(TransientAPIError):
    """REQUEST_LIMIT_EXCEEDED for one of the org's concurrency limits, not its daily budget: worth waiting out."""


def _is_concurrency_limit(codes: str) -> bool:
    # Every concurrency limit's message names it "Concurrent..." (ConcurrentPerOrgLongTxn, ConcurrentRequests,
    # ConcurrentPerOrgApex); the daily one says "TotalRequests". Anything else is read as the daily limit: stopping
    # cleanly is the safe side of a limit we cannot tell.
    return "Concurrent" in codes


class BulkJobEnded(RuntimeError):
    """A Bulk API 2.0 query job that ended Failed or Aborted: it has no results to read."""

    def __init__(self, job_id: str, state: str, message: str):
        super().__init__(f"Salesforce Bulk job {job_id} ended {state}: {message}")
        self.job_id, self.state, self.message = job_id, state, message


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
                codes = _error_codes(error)
                if "REQUEST_LIMIT_EXCEEDED" in codes and _is_concurrency_limit(codes):
                    raise ConcurrencyLimited(f"Salesforce concurrency limit: {codes[:300]}") from None
                if "REQUEST_LIMIT_EXCEEDED" in codes:
                    raise StopSync(f"{API_BUDGET_STOP}: daily request limit exceeded (REQUEST_LIMIT_EXCEEDED)",
                                   ends_invocation=True) from None
                raise
        try:
            return self._calls(request)
        except ConcurrencyLimited as error:
            raise StopSync(f"{error} (still held when the retries gave up)") from None

    @property
    def sf(self) -> Salesforce:
        """The simple-salesforce client, logged in on first use."""
        if self._sf is None:
            self._sf = self._call(connect, self._credentials, self._settings, self._session)
        return self._sf

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

    def bulk_job(self, job_id: str) -> dict[str, Any] | None:
        """The job's information (state: UploadComplete, InProgress, JobComplete, Failed, Aborted; errorMessage when
        it failed); None once it is gone."""
        try:
            return self._bulk("GET", f"query/{job_id}").json()
        except SalesforceError as error:
            if error.status == 404:  # deleted, or past the days Salesforce keeps results
                return None
            raise

    def bulk_job_state(self, job_id: str) -> str | None:
        """The job's state; None once it is gone."""
        job = self.bulk_job(job_id)
        return None if job is None else job["state"]

    def wait_for_bulk_job(self, job_id: str, deadline: float, clock: Callable[[], float] = time.monotonic) -> bool:
        """True once the job is complete; False when the deadline comes first (the job keeps running at
        Salesforce and a later run picks it up). Failed or Aborted raise BulkJobEnded; a job that is gone raises
        LookupError."""
        attempt = 0
        while True:
            job = self.bulk_job(job_id)
            if job is None:
                raise LookupError(f"Salesforce Bulk job {job_id} is gone")
            if job["state"] == "JobComplete":
                return True
            if job["state"] in BULK_ENDED:
                raise BulkJobEnded(job_id, job["state"], str(job.get("errorMessage") or "no errorMessage"))
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
