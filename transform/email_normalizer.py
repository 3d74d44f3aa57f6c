"""Email addresses as people write them -> one normalised form to join on.

Normalised: display name, angle brackets and mailto: removed, trimmed, lower-cased, trailing dot of the
domain dropped, an internationalised domain in its IDNA 2008 / UTS 46 A-label form (the `idna` package:
straße.de stays xn--strae-oqa.de, where the standard library's IDNA 2003 would make it strasse.de, another
domain). Local parts may hold UTF-8 (RFC 6531). The Gmail canonical form (dots and +tags ignored) applies only to
gmail.com / googlemail.com, where Google delivers such variants to the same mailbox; elsewhere dots
matter and +tags are distinct addresses for matching.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# The address-list grammar of the standard library's modern email policy (RFC 5322 + 6532, encoded words):
# it keeps each address's original text beside its parts, which the rejects need.
from email._header_value_parser import get_address_list
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from functools import lru_cache
from urllib.parse import urlsplit

import idna

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_LOCAL_ATOM = re.compile(r"^(?:[a-z0-9!#$%&'*+/=?^_`{|}~.-]|[^\x00-\x7f])+$")
_MAILTO = re.compile(r"<\s*mailto:", re.IGNORECASE)
_QUOTED_LOCAL = re.compile(r'^"(?:[^"\\\r\n]|\\.)+"$')
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A quoted string (kept as it is), or the dots ending an address's domain: the standard library's address-list
# grammar reads `<j@acme.com.>` as no address at all, while the domain is acme.com (a fully qualified name).
# The domain ends at its last character that is not a dot (greedy, so a run of dots costs one pass, not a square).
_QUOTED_OR_DOMAIN_DOTS = re.compile(r'("(?:[^"\\]|\\.)*")|(@[^\s<>@,;:"()\[\]\\]*[^\s<>@,;:"()\[\]\\.])\.+(?=[\s>,;)]|$)')
MAX_LOCAL_PART = 64
# A shape normalize_email returns unchanged (lower-case atoms with single dots, LDH labels, an alphabetic
# top-level label), with a local part of at most MAX_LOCAL_PART characters. transform.columns skips Python for
# it; written for RE2 as well as re.
ALREADY_NORMAL = r"^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$"


@dataclass(frozen=True)
class RejectedAddress:
    """Text of an address header that is no usable address, and why."""

    raw: str
    reason: str


@dataclass(frozen=True)
class ParsedAddress:
    """One address out of a header or a form field."""

    raw: str
    display_name: str | None
    email: str
    domain: str


def _ascii_domain(domain: str) -> str | None:
    domain = domain.strip().rstrip(".").lower()
    if not domain or ".." in domain:
        return None
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii") if not domain.isascii() else domain
    except (idna.IDNAError, UnicodeError):
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None
    return ascii_domain


@lru_cache(maxsize=16_384)
def read_email(value: str | None) -> tuple[str | None, str | None]:
    """(the normalised address in value, None), or (None, why there is none). value may carry a display name."""
    if not value or not value.strip():
        return None, "empty"
    text = value.strip()
    if "<" in text and ">" in text:
        text = text[text.rfind("<") + 1:text.rfind(">")]
    text = text.strip().strip("<>").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:].strip()
    if "@" not in text:
        return None, "no @"
    local, _, domain = text.rpartition("@")
    local = local.strip()
    if local.startswith('"'):
        if not _QUOTED_LOCAL.match(local):
            return None, "invalid quoted local part"
    else:
        local = local.lower()
        if not local or not _LOCAL_ATOM.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
            return None, "invalid local part"
    if len(local) > MAX_LOCAL_PART:
        return None, "local part longer than 64 characters"
    ascii_domain = _ascii_domain(domain)
    if ascii_domain is None:
        return None, "invalid domain"
    return f"{local}@{ascii_domain}", None


def normalize_email(value: str | None) -> str | None:
    """The normalised address in value (which may carry a display name), or None when there is none."""
    return read_email(value)[0]


def email_domain(email: str | None) -> str | None:
    """The domain part of a normalised address."""
    if not email or "@" not in email:
        return None
    return email.rpartition("@")[2] or None


def decode_display_name(name: str | None) -> str | None:
    """A display name with RFC 2047 encoded-words decoded and whitespace folded."""
    if not name:
        return None
    try:
        decoded = str(make_header(decode_header(name)))
    except (UnicodeError, LookupError, ValueError):
        decoded = name
    decoded = " ".join(decoded.split()).strip('"').strip()
    return decoded or None


def parse_address_list(header: str | None) -> tuple[list[ParsedAddress], list[RejectedAddress]]:
    """Every address of an address header (To, Cc, ...; decoded text), groups flattened, and every part that
    is no usable address with the reason. `undisclosed-recipients:;` and other empty groups give nothing.
    """
    if not header or not header.strip():
        return [], []
    text = _QUOTED_OR_DOMAIN_DOTS.sub(lambda match: match[1] or match[2], _MAILTO.sub("<", header))
    try:
        addresses, rest = get_address_list(text)
    except (HeaderParseError, IndexError, ValueError) as error:
        return [], [RejectedAddress(header.strip(), f"unparseable address list: {error}")]
    parsed, rejected = [], []
    for mailbox in (m for address in addresses.addresses for m in address.all_mailboxes):
        raw = str(mailbox).strip()
        if mailbox.token_type == "invalid-mailbox":
            rejected.append(RejectedAddress(raw, "not an address"))
            continue
        email, reason = read_email(mailbox.addr_spec)
        if email is None:
            rejected.append(RejectedAddress(raw, reason or "not an address"))
            continue
        parsed.append(ParsedAddress(raw=mailbox.addr_spec, display_name=decode_display_name(mailbox.display_name), email=email,
                                    domain=email_domain(email) or ""))
    if rest.strip(" ,"):
        rejected.append(RejectedAddress(rest.strip(), "unparseable address list"))
    return parsed, rejected


def web_domain(url: str | None) -> str | None:
    """The registrable host of a website field: scheme, www., port, path and case removed."""
    if not url or not url.strip():
        return None
    text = url.strip()
    if "@" in text and "://" not in text:
        return email_domain(normalize_email(text))
    split = urlsplit(text if "://" in text else f"//{text}")
    host = (split.hostname or "").strip().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    return _ascii_domain(host) if host else None
