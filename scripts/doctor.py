"""`run_local doctor`: does each source's configuration work? Per source, its credentials read and one cheap
read-only call (api_clients.connection_check); what works, and for what does not, what to fix. Nothing is written.
"""
from __future__ import annotations

from typing import Any

from api_clients.connection_check import Check, fix_for
from config.secrets import CredentialsIncomplete, SecretNotFoundError
from pipeline.runtime import Runtime
from scripts.local_sources import SOURCES, endpoints


class DoctorFound(Exception):
    """A configured source's check failed, or no source is configured; the message names them."""


def source_checks(runtime: Runtime, name: str) -> list[Check] | None:
    """The source's checks; None when it is not configured at all (nothing to check)."""
    source = SOURCES[name]
    try:
        source.check_credentials(runtime)
    except CredentialsIncomplete as error:
        return [Check(name, "credentials", False, "configured in part", fix_for(name, error))]
    except SecretNotFoundError:
        return None
    return source.check_connection(runtime)


def doctor(runtime: Runtime, sandboxes: bool) -> list[dict[str, Any]]:
    """Checks every source (each against its sandbox with sandboxes), prints one line per check and a fix under
    each failure; raises DoctorFound naming the failed sources, or when none is configured."""
    names = list(SOURCES)
    found: list[Check] = []
    with endpoints(runtime, names, sandboxes, required=False) as (aimed, _usable):
        for name in names:
            checks = source_checks(aimed, name)
            if checks is None:
                print(f"  {name:<11} not configured: skipped (docs/SETUP.md says how to set it up)")
                continue
            for item in checks:
                print(f"  {name:<11} {'ok' if item.ok else 'FAILED':<6} {item.target}: {item.detail}")
                if not item.ok:
                    print(f"  {'':<11} fix: {item.fix}")
            found += checks
    failed = sorted({c.source for c in found if not c.ok})
    if failed:
        raise DoctorFound(f"doctor: {', '.join(failed)} failed its check (the fix is printed above)")
    if not found:
        raise DoctorFound("doctor: no source is configured (docs/SETUP.md; --sandboxes checks the loopback sandboxes)")
    return [c.to_dict() for c in found]
