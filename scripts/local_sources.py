"""The sources the local runner drives: how each syncs, and how each is pointed at its sandbox.

Sandboxes only when asked (`--sandboxes` or SANDBOXES=true; `make run` asks): then every source talks
to its loopback sandbox, and only with the embedded warehouse or a BigQuery emulator on a loopback
address, so fake rows can never land in a real warehouse. Otherwise every source talks to its real
API with its configured credentials: a source configured in part is an error naming what is missing
and where it is looked for. One table of sources, in the order of config/schedules.yaml, so `run`,
`sync`, `serve` and `schedule` agree.
"""
from __future__ import annotations

import contextlib
import importlib
import ipaddress
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from config.secrets import CredentialsIncomplete, SecretNotFoundError, SecretStore
from config.settings import Settings
from pipeline.runtime import Runtime


class NotConfigured(Exception):
    """The local runner cannot use a source as configured; the message says what to set, and where."""


@dataclass(frozen=True)
class LocalSource:
    """A source: its entry point, the request and run its sync.py gives the entry point, its sandbox.

    The source's modules are imported when it is used: `report` or `sql` never load the API clients.
    """

    name: str
    entry_point: str
    request: str  # names in cloud_functions/<entry_point>/sync.py
    run: str
    connection_check: str
    # Raises SecretNotFoundError saying what is missing (CredentialsIncomplete when configured in part).
    check_credentials: Callable[[Runtime], object]
    sandbox: Callable[[Runtime], contextlib.AbstractContextManager[Runtime]]

    def sync(self, runtime: Runtime, full: bool, progress: Callable[[dict[str, Any]], None]) -> None:
        """Runs the source as its scheduler job would, showing each of its runs."""
        module = importlib.import_module(f"cloud_functions.{self.entry_point}.sync")
        request = getattr(module, self.request)(sync_type="full" if full else "incremental", trigger="local")
        for run in getattr(module, self.run)(request, runtime)["runs"]:
            progress(run)

    def check_connection(self, runtime: Runtime) -> list[Any]:
        """The source's connection check (api_clients.connection_check): one cheap read, nothing written."""
        module = importlib.import_module(f"cloud_functions.{self.entry_point}.sync")
        return list(getattr(module, self.connection_check)(runtime))


def _salesforce_credentials(runtime: Runtime) -> None:
    from cloud_functions.salesforce_sync.auth import SalesforceCredentials

    SalesforceCredentials.from_secrets(runtime.secrets, runtime.settings)


def _gmail_credentials(runtime: Runtime) -> None:
    from cloud_functions.gmail_sync.auth import service_account_key

    service_account_key(runtime.secrets, runtime.settings)


def _dialpad_credentials(runtime: Runtime) -> None:
    from cloud_functions.dialpad_sync.auth import api_key

    api_key(runtime.secrets)


def _hubspot_credentials(runtime: Runtime) -> None:
    from cloud_functions.hubspot_sync.auth import access_token

    access_token(runtime.secrets)


def _zoom_credentials(runtime: Runtime) -> None:
    from cloud_functions.zoom_sync.auth import ZoomCredentials

    ZoomCredentials.from_secrets(runtime.secrets)


def _meet_credentials(runtime: Runtime) -> None:
    from cloud_functions.meet_sync.auth import service_account_key

    service_account_key(runtime.secrets, runtime.settings)


SANDBOX_SALESFORCE_SIZE = dict(accounts=50, contacts=2000, leads=500)


def _aimed_at(runtime: Runtime, source: str, sandbox: Any, detail: str = "") -> Runtime:
    """The runtime pointed at a started sandbox (sandbox.server.aimed_at): its settings, its secrets in the
    environment the secret store reads (never printed)."""
    from sandbox.server import aimed_at

    settings, secrets = aimed_at(runtime.settings, sandbox)
    os.environ.update(secrets)
    print(f"{source}: using the loopback sandbox at {sandbox.url}{detail}", flush=True)
    return replace(runtime, settings=settings, secrets=SecretStore(settings))


@contextlib.contextmanager
def _salesforce_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox(_company_size()) as sandbox:
        yield _aimed_at(runtime, "salesforce", sandbox)


@contextlib.contextmanager
def _dialpad_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.dialpad import DialpadSandbox

    with DialpadSandbox(SANDBOX_DIALPAD_CALLS, size=_company_size()) as sandbox:
        yield _aimed_at(runtime, "dialpad", sandbox)


@contextlib.contextmanager
def _hubspot_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.hubspot import HubSpotSandbox

    with HubSpotSandbox(SANDBOX_HUBSPOT_CONTACTS) as sandbox:
        yield _aimed_at(runtime, "hubspot", sandbox)


@contextlib.contextmanager
def _gmail_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.gmail import GmailSandbox

    with GmailSandbox(runtime.settings.mailboxes or None, SANDBOX_GMAIL_MESSAGES,
                      quota_units_per_minute=SANDBOX_GMAIL_QUOTA_UNITS_PER_MINUTE) as sandbox:
        yield _aimed_at(runtime, "gmail", sandbox, f" (mailboxes {', '.join(sandbox.state.mailboxes)})")


@contextlib.contextmanager
def _zoom_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.zoom import ZoomSandbox

    with ZoomSandbox(SANDBOX_MEETINGS, size=_company_size()) as sandbox:
        yield _aimed_at(runtime, "zoom", sandbox)


@contextlib.contextmanager
def _meet_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.meet import MeetSandbox

    with MeetSandbox(SANDBOX_MEETINGS, size=_company_size()) as sandbox:
        yield _aimed_at(runtime, "meet", sandbox, f" (users {', '.join(sandbox.state.users)})")


def _company_size():
    from sandbox.company import CompanySize

    return CompanySize(**SANDBOX_SALESFORCE_SIZE)


SANDBOX_GMAIL_MESSAGES = 150
# The local runner's Gmail sandbox allows ten times Gmail's 6,000 units a minute per mailbox, so a laptop's run is
# not paced to a real project's quota; the pipeline paces itself to it all the same (the sandbox tells it), and
# the tests enforce Gmail's own figure.
SANDBOX_GMAIL_QUOTA_UNITS_PER_MINUTE = 60_000
SANDBOX_DIALPAD_CALLS = 200
SANDBOX_HUBSPOT_CONTACTS = 60
SANDBOX_MEETINGS = 40

SOURCES: dict[str, LocalSource] = {
    "salesforce": LocalSource("salesforce", "salesforce_sync", "SalesforceSyncRequest", "run_salesforce_sync",
                              "check_salesforce", _salesforce_credentials, _salesforce_sandbox),
    "gmail": LocalSource("gmail", "gmail_sync", "GmailSyncRequest", "run_gmail_sync", "check_gmail",
                         _gmail_credentials, _gmail_sandbox),
    "dialpad": LocalSource("dialpad", "dialpad_sync", "DialpadSyncRequest", "run_dialpad_sync", "check_dialpad",
                           _dialpad_credentials, _dialpad_sandbox),
    "hubspot": LocalSource("hubspot", "hubspot_sync", "HubSpotSyncRequest", "run_hubspot_sync", "check_hubspot",
                           _hubspot_credentials, _hubspot_sandbox),
    "zoom": LocalSource("zoom", "zoom_sync", "ZoomSyncRequest", "run_zoom_sync", "check_zoom", _zoom_credentials,
                        _zoom_sandbox),
    "meet": LocalSource("meet", "meet_sync", "MeetSyncRequest", "run_meet_sync", "check_meet", _meet_credentials,
                        _meet_sandbox),
}


def sandboxes_allowed(settings: Settings) -> None:
    """Raises NotConfigured unless the warehouse is one fake rows may land in: DuckDB, or a BigQuery emulator
    on a loopback address."""
    if settings.warehouse == "duckdb":
        return
    host = urlsplit(settings.bigquery_api_endpoint or "").hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotConfigured("the sandboxes write fake rows: refused with WAREHOUSE=bigquery unless "
                            "BIGQUERY_API_ENDPOINT is a local BigQuery emulator on a loopback address")


def configured(runtime: Runtime, names: list[str], required: bool) -> list[str]:
    """The named sources whose credentials are all set. A source configured in part raises NotConfigured;
    one not configured at all too when `required`, else it is left out and the runner says so."""

    usable = []
    for name in names:
        try:
            SOURCES[name].check_credentials(runtime)
        except CredentialsIncomplete as error:
            raise NotConfigured(f"{name}: {error}") from None
        except SecretNotFoundError as error:
            if required:
                raise NotConfigured(f"{name}: {error}; or use its sandbox with --sandboxes") from None
            print(f"{name}: not configured, skipped ({error}; --sandboxes uses the loopback sandboxes)", flush=True)
            continue
        usable.append(name)
    return usable


@contextlib.contextmanager
def endpoints(runtime: Runtime, names: list[str], sandboxes: bool, required: bool = True) -> Iterator[tuple[Runtime, list[str]]]:
    """The runtime aimed at every named source's sandbox (when asked for) or real API, and the sources usable."""
    if not sandboxes:
        usable = configured(runtime, names, required)
        for name in usable:
            print(f"{name}: using the configured credentials", flush=True)
        yield runtime, usable
        return
    sandboxes_allowed(runtime.settings)
    with contextlib.ExitStack() as stack:
        for name in names:
            runtime = stack.enter_context(SOURCES[name].sandbox(runtime))
        yield runtime, names
