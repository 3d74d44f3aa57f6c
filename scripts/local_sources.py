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


@contextlib.contextmanager
def _salesforce_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.salesforce import SalesforceSandbox

    with SalesforceSandbox(_company_size()) as sandbox:
        environment = sandbox.client_environment()
        for key in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
            os.environ[key] = environment[key]  # read by the secret store; never printed
        settings = runtime.settings.model_copy(update={
            "salesforce_login_url": sandbox.url, "salesforce_ca_bundle": sandbox.server.cert_path})
        print(f"salesforce: no credentials configured, using the loopback sandbox at {sandbox.url}", flush=True)
        yield replace(runtime, settings=settings, secrets=SecretStore(settings))


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
        os.environ["DIALPAD_API_KEY"] = sandbox.state.api_key
        settings = runtime.settings.model_copy(update={"dialpad_base_url": sandbox.url})
        print(f"dialpad: no credentials configured, using the loopback sandbox at {sandbox.url}", flush=True)
        yield replace(runtime, settings=settings, secrets=SecretStore(settings))


def _dialpad_sync(runtime: Runtime, full: bool, progress: Callable[[dict[str, Any]], None]) -> None:
    from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync

    progress(run_dialpad_sync(DialpadSyncRequest(sync_type="full" if full else "incremental", trigger="local"),
                              runtime))


@contextlib.contextmanager
def _hubspot_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.hubspot import HubSpotSandbox

    with HubSpotSandbox(SANDBOX_HUBSPOT_CONTACTS) as sandbox:
        os.environ["HUBSPOT_API_KEY"] = sandbox.state.token
        settings = runtime.settings.model_copy(update={"hubspot_base_url": sandbox.url})
        print(f"hubspot: no credentials configured, using the loopback sandbox at {sandbox.url}", flush=True)
        yield replace(runtime, settings=settings, secrets=SecretStore(settings))


def _hubspot_sync(runtime: Runtime, full: bool, progress: Callable[[dict[str, Any]], None]) -> None:
    from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, run_hubspot_sync

    result = run_hubspot_sync(HubSpotSyncRequest(sync_type="full" if full else "incremental", trigger="local"), runtime)
    for run in result["runs"]:
        progress(run)


@contextlib.contextmanager
def _gmail_sandbox(runtime: Runtime) -> Iterator[Runtime]:
    from sandbox.gmail import GmailSandbox

    with GmailSandbox(runtime.settings.mailboxes or None, SANDBOX_GMAIL_MESSAGES) as sandbox:
        os.environ["GMAIL_SERVICE_ACCOUNT_KEY"] = sandbox.service_account_key()
        settings = runtime.settings.model_copy(update={"gmail_api_endpoint": f"{sandbox.url}/",
                                                       "mailboxes": list(sandbox.state.mailboxes)})
        print(f"gmail: no credentials configured, using the loopback sandbox at {sandbox.url} "
              f"(mailboxes {', '.join(sandbox.state.mailboxes)})", flush=True)
        yield replace(runtime, settings=settings, secrets=SecretStore(settings))


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
