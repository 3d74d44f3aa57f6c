"""The sources the local runner drives: how each syncs, and how each is pointed at its sandbox.

With credentials configured (environment or the local secrets file) a source talks to its real API;
without, the runner starts the source's loopback sandbox and says so. One table of sources, in the
order of config/schedules.yaml, so `run`, `sync`, `serve` and `schedule` agree.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

from utils.runtime import Runtime
from utils.secret_manager import SecretNotFoundError, SecretStore


@dataclass(frozen=True)
class LocalSource:
    """A landed source: its entry point, its sync, and its sandbox."""

    name: str
    entry_point: str
    sync: Callable[[Runtime, bool, Callable[[dict[str, Any]], None]], None]
    has_credentials: Callable[[Runtime], bool]
    sandbox: Callable[[Runtime], contextlib.AbstractContextManager[Runtime]]


def _salesforce_credentials(runtime: Runtime) -> bool:
    from cloud_functions.salesforce_sync.client import SalesforceCredentials

    try:
        SalesforceCredentials.from_secrets(runtime.secrets, runtime.settings)
    except SecretNotFoundError:
        return False
    return True


SANDBOX_SALESFORCE_SIZE = dict(accounts=50, contacts=2000, leads=500)


def _aimed_at(runtime: Runtime, source: str, url: str, settings_update: dict[str, Any], secrets: dict[str, str],
              detail: str = "") -> Runtime:
    """The runtime pointed at a started sandbox: its settings, and its credentials as the secrets."""
    for variable, value in secrets.items():
        os.environ[variable] = value  # read by the secret store; never printed
    settings = runtime.settings.model_copy(update=settings_update)
    print(f"{source}: no credentials configured, using the loopback sandbox at {url}{detail}", flush=True)
    return replace(runtime, settings=settings, secrets=SecretStore(settings))


@contextlib.contextmanager
def _salesforce_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox(_company_size()) as sandbox:
        environment = sandbox.client_environment()
        yield _aimed_at(runtime, "salesforce", sandbox.url,
                        {"salesforce_login_url": sandbox.url, "salesforce_ca_bundle": sandbox.server.cert_path},
                        {k: environment[k] for k in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD",
                                                     "SALESFORCE_SECURITY_TOKEN")})


def _salesforce_sync(runtime: Runtime, full: bool, progress: Callable[[dict[str, Any]], None]) -> None:
    from cloud_functions.salesforce_sync.objects import OBJECTS
    from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

    for name in OBJECTS:  # one object at a time, so progress shows per object
        result = run_salesforce_sync(SalesforceSyncRequest(object_type=name, trigger="local",
                                                           sync_type="full" if full else "incremental"), runtime)
        for run in result["runs"]:
            progress(run)


def _has_secret(name: str) -> Callable[[Runtime], bool]:
    return lambda runtime: runtime.secrets.get_optional(name) is not None


@contextlib.contextmanager
def _dialpad_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.dialpad import DialpadSandbox

    with DialpadSandbox(SANDBOX_DIALPAD_CALLS, size=_company_size()) as sandbox:
        yield _aimed_at(runtime, "dialpad", sandbox.url, {"dialpad_base_url": sandbox.url},
                        {"DIALPAD_API_KEY": sandbox.state.api_key})


def _dialpad_sync(runtime: Runtime, full: bool, progress: Callable[[dict[str, Any]], None]) -> None:
    from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync

    progress(run_dialpad_sync(DialpadSyncRequest(sync_type="full" if full else "incremental", trigger="local"),
                              runtime))


@contextlib.contextmanager
def _hubspot_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.hubspot import HubSpotSandbox

    with HubSpotSandbox(SANDBOX_HUBSPOT_CONTACTS) as sandbox:
        yield _aimed_at(runtime, "hubspot", sandbox.url, {"hubspot_base_url": sandbox.url},
                        {"HUBSPOT_API_KEY": sandbox.state.token})


def _hubspot_sync(runtime: Runtime, full: bool, progress: Callable[[dict[str, Any]], None]) -> None:
    from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, run_hubspot_sync

    result = run_hubspot_sync(HubSpotSyncRequest(sync_type="full" if full else "incremental", trigger="local"), runtime)
    for run in result["runs"]:
        progress(run)


@contextlib.contextmanager
def _gmail_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.gmail import GmailSandbox

    with GmailSandbox(runtime.settings.mailboxes or None, SANDBOX_GMAIL_MESSAGES) as sandbox:
        mailboxes = list(sandbox.state.mailboxes)
        yield _aimed_at(runtime, "gmail", sandbox.url, {"gmail_api_endpoint": f"{sandbox.url}/", "mailboxes": mailboxes},
                        {"GMAIL_SERVICE_ACCOUNT_KEY": sandbox.service_account_key()},
                        f" (mailboxes {', '.join(mailboxes)})")


def _gmail_sync(runtime: Runtime, full: bool, progress: Callable[[dict[str, Any]], None]) -> None:
    from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

    result = run_gmail_sync(GmailSyncRequest(sync_type="full" if full else "incremental", trigger="local"), runtime)
    for run in result["runs"]:
        progress(run)


def _company_size():
    from sandbox.company import CompanySize

    return CompanySize(**SANDBOX_SALESFORCE_SIZE)


SANDBOX_GMAIL_MESSAGES = 150
SANDBOX_DIALPAD_CALLS = 200
SANDBOX_HUBSPOT_CONTACTS = 60

SOURCES: dict[str, LocalSource] = {
    "salesforce": LocalSource("salesforce", "salesforce_sync", _salesforce_sync, _salesforce_credentials,
                              _salesforce_sandbox),
    "gmail": LocalSource("gmail", "gmail_sync", _gmail_sync, _has_secret("gmail-service-account-key"),
                         _gmail_sandbox),
    "dialpad": LocalSource("dialpad", "dialpad_sync", _dialpad_sync, _has_secret("dialpad-api-key"),
                           _dialpad_sandbox),
    "hubspot": LocalSource("hubspot", "hubspot_sync", _hubspot_sync, _has_secret("hubspot-api-key"),
                           _hubspot_sandbox),
}


@contextlib.contextmanager
def endpoints(runtime: Runtime, names: list[str]) -> Iterator[Runtime]:
    """The runtime with every named source aimed at its real API (credentials) or its sandbox."""
    with contextlib.ExitStack() as stack:
        for name in names:
            source = SOURCES[name]
            if source.has_credentials(runtime):
                print(f"{name}: using the configured credentials", flush=True)
            else:
                runtime = stack.enter_context(source.sandbox(runtime))
        yield runtime
