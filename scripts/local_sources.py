"""The sources the local runner drives: how each syncs, and how each is pointed at its sandbox.

Sandboxes only when asked (`--sandboxes` or SANDBOXES=true; `make run` asks): then every source talks
to its loopback sandbox, and only with the embedded warehouse or a BigQuery emulator on a loopback
address, so fake rows can never land in a real warehouse. Otherwise every source talks to its real
API with its configured credentials: a source configured in part is an error naming what is missing
and where it is looked for. The sources are the registry's (config/sources.py), so `run`, `sync`, `serve`
and `schedule` agree with the deployment.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from config.secrets import CredentialsIncomplete, SecretNotFoundError, SecretStore
from config.settings import Settings
from config.sources import SourceDeclaration, registered
from pipeline.runtime import Runtime


class NotConfigured(Exception):
    """The local runner cannot use a source as configured; the message says what to set, and where."""


@dataclass(frozen=True)
class LocalSource:
    """A registered source (config/sources.py) as the local runner drives it: its sync, connection check,
    credentials check and sandbox, each resolved from its declaration when used."""

    declaration: SourceDeclaration

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def entry_point(self) -> str:
        return self.declaration.entry_point

    def sync(self, runtime: Runtime, full: bool, progress: Callable[[dict[str, Any]], None]) -> None:
        """Runs the source as its scheduler job would, showing each of its runs."""
        request = self.declaration.attribute(self.declaration.request)(
            sync_type="full" if full else "incremental", trigger="local")
        for run in self.declaration.attribute(self.declaration.run)(request, runtime)["runs"]:
            progress(run)

    def check_connection(self, runtime: Runtime) -> list[Any]:
        """The source's connection check (api_clients.connection_check): one cheap read, nothing written."""
        return list(self.declaration.attribute(self.declaration.connection_check)(runtime))

    def check_credentials(self, runtime: Runtime) -> None:
        """Raises SecretNotFoundError saying what is missing (CredentialsIncomplete when configured in part)."""
        self.declaration.attribute(self.declaration.credentials)(runtime.secrets, runtime.settings)

    @contextlib.contextmanager
    def sandbox(self, runtime: Runtime) -> Iterator[Runtime]:
        """The runtime aimed at the source's started loopback sandbox, while it runs."""
        with self.declaration.local_sandbox()(runtime.settings) as sandbox:
            yield _aimed_at(runtime, self.name, sandbox)


def _aimed_at(runtime: Runtime, source: str, sandbox: Any) -> Runtime:
    """The runtime pointed at a started sandbox (sandbox.server.aimed_at): its settings, its secrets in the
    environment the secret store reads (never printed)."""
    from sandbox.server import aimed_at

    settings, secrets = aimed_at(runtime.settings, sandbox)
    os.environ.update(secrets)
    print(f"{source}: using the loopback sandbox at {sandbox.url}", flush=True)
    return replace(runtime, settings=settings, secrets=SecretStore(settings))


SOURCES: dict[str, LocalSource] = {name: LocalSource(declaration) for name, declaration in registered().items()}


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
