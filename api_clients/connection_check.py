"""Does a source's configuration work? One cheap, read-only call per source (per mailbox for Gmail), with what it
read or, when it failed, what went wrong and what to fix. Used by `run_local doctor` and by a sync function's
HTTP body `{"check": true}`; nothing is written to the warehouse.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

from api_clients.retry import http_status, unreachable
from observability.logger import redact

SETUP_GUIDE = "docs/SETUP.md"
# Per source: its section of the setup guide, and what a refused credential most often means.
REFUSED_HINTS = {
    "gmail": ("2. Gmail", "grant the service account's client id the scope "
                          "https://www.googleapis.com/auth/gmail.readonly under domain-wide delegation in the Admin "
                          "console, and check the mailbox exists in the domain"),
    "salesforce": ("3. Salesforce", "save a current login in the salesforce-* secrets (a changed password needs a new "
                                    "security token) and check SALESFORCE_DOMAIN (login, test or <name>.my)"),
    "hubspot": ("4. HubSpot", "save a current key with the crm.objects.contacts.read, crm.objects.owners.read and "
                              "automation.sequences.read scopes in the hubspot-api-key secret"),
    "dialpad": ("5. Dialpad", "save a current company API key in the dialpad-api-key secret"),
}


@dataclass
class Check:
    """One cheap read against a source, and its outcome."""

    source: str
    target: str  # what was tried, e.g. "profile of alex@example.com"
    ok: bool
    detail: str  # what it read, or the error
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(source: str, target: str, read: Callable[[], str], hint: tuple[str, str] | None = None) -> Check:
    """Runs read() (a cheap read-only call that says what it found) and turns any error into a Check with a fix.
    hint: the source's (setup guide section, what a refused credential most often means), when REFUSED_HINTS has
    none (a source keeps its own in its sync.py)."""
    try:
        return Check(source, target, True, read())
    except Exception as error:
        return Check(source, target, False, redact(f"{type(error).__name__}: {error}")[:500],
                     fix_for(source, error, hint))


def fix_for(source: str, error: BaseException, hint: tuple[str, str] | None = None) -> str:
    """What a person should do about an error of a source's check."""
    from config.secrets import SecretNotFoundError

    section, refused = hint or REFUSED_HINTS.get(source, ("", "check its credentials"))
    guide = f" ({SETUP_GUIDE}, {section})" if section else ""
    if isinstance(error, SecretNotFoundError):
        return f"{error}{guide}"
    where = unreachable(error)
    if where:
        return f"the API host {where}: check the source's base URL setting and the network{guide}"
    status = http_status(error)
    text = str(error)
    if status in (401, 403) or any(word in text for word in ("unauthorized_client", "INVALID_LOGIN", "invalid_grant",
                                                           "Unauthorized", "Forbidden")):
        return f"the credential was refused: {refused}{guide}"
    return f"see the error above{guide}"


def summary(checks: list[Check]) -> dict[str, Any]:
    """The HTTP answer of a check: overall status and every check."""
    return {"status": "ok" if checks and all(c.ok for c in checks) else "failed",
            "checks": [c.to_dict() for c in checks]}
