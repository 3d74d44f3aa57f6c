"""The CRM exports a drop can be, as declarations: the headers that give each CRM away, and the columns each field
of a deal is read from (pure).

Headers are compared normalised (`header_key`: lower case, punctuation to spaces), so `Close Date`, `close_date`,
`Close Date ` and Pipedrive's `Deal - Title` (-> `deal title`) are each one key. A CRM is recognised by the share
of its signature headers present (each signature entry lists the spellings one header has across export
versions); below MIN_CONFIDENCE the file is generic: mapped by common names, and what could not be mapped said.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

MIN_CONFIDENCE = 0.6
# The deal fields a file's columns map to (crm_deals' columns of the same names read them).
FIELDS = ("deal_id", "deal_name", "account_name", "account_website", "stage", "pipeline", "status", "amount",
          "currency", "probability", "close_date", "owner", "contact_name", "contact_email", "contact_phone")
CORE_FIELDS = ("deal_name", "account_name", "amount", "stage", "close_date")
Aliases = tuple[str, ...]


def header_key(header: str) -> str:
    """A header as compared: lower case, anything not a letter or digit a space, trimmed (`Deal - Title` ->
    `deal title`, `Probability (%)` -> `probability`)."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", header.lower()).split())


@dataclass(frozen=True)
class CrmFormat:
    """One CRM's export: its signature (alias groups, each a header it writes) and per field its column aliases."""

    name: str
    label: str
    signature: tuple[Aliases, ...]
    columns: Mapping[str, Aliases] = field(default_factory=dict)


GENERIC_COLUMNS: dict[str, Aliases] = {
    "deal_id": ("deal id", "id", "record id", "opportunity id"),
    "deal_name": ("deal name", "deal", "opportunity name", "opportunity", "deal title", "title", "name"),
    "account_name": ("account name", "company name", "company", "account", "organization name", "organization",
                     "organisation", "customer", "client"),
    "account_website": ("website", "company domain name", "domain", "company website", "web site"),
    "stage": ("deal stage", "stage", "sales stage", "phase"),
    "pipeline": ("pipeline",),
    "status": ("deal status", "status"),
    "amount": ("amount", "deal value", "value", "revenue", "deal amount", "total"),
    "currency": ("currency", "currency code", "deal currency"),
    "probability": ("probability", "win probability", "deal probability"),
    "close_date": ("close date", "closing date", "expected close date", "expected close", "close"),
    "owner": ("owner", "deal owner", "sales rep", "rep", "assigned to", "account manager"),
    "contact_name": ("contact name", "contact", "primary contact", "person", "contact person"),
    "contact_email": ("contact email", "email", "e mail", "email address", "person email"),
    "contact_phone": ("contact phone", "phone", "telephone", "phone number", "mobile", "person phone"),
}

FORMATS: tuple[CrmFormat, ...] = (
    CrmFormat("salesforce", "Salesforce",
              (("opportunity id",), ("opportunity name",), ("account name",), ("stage",), ("close date",),
               ("opportunity owner",)),
              {"deal_id": ("opportunity id",), "deal_name": ("opportunity name",), "currency": ("opportunity currency",),
               "owner": ("opportunity owner",)}),
    CrmFormat("hubspot", "HubSpot",
              (("deal name",), ("deal stage",), ("pipeline",), ("company name", "associated company"),
               ("deal owner",), ("record id",)),
              {"deal_id": ("record id",), "account_name": ("company name", "associated company"),
               "contact_name": ("associated contact",), "probability": ("deal probability",)}),
    CrmFormat("zoho", "Zoho CRM",
              (("deal name",), ("account name",), ("closing date",), ("deal owner",), ("stage",)),
              {"deal_id": ("record id",), "close_date": ("closing date",), "owner": ("deal owner",)}),
    CrmFormat("pipedrive", "Pipedrive",
              (("deal title", "title"), ("organization name", "deal organization", "organization"),
               ("value", "deal value"), ("expected close date", "deal expected close date"),
               ("contact person", "deal contact person")),
              {"deal_id": ("deal id", "id"), "deal_name": ("deal title", "title"),
               "account_name": ("organization name", "deal organization", "organization"),
               "amount": ("value", "deal value"), "currency": ("currency", "deal currency"),
               "close_date": ("expected close date", "deal expected close date"),
               "contact_name": ("contact person", "deal contact person"), "status": ("deal status", "status")}),
    CrmFormat("vtiger", "vTiger",
              (("account no",), ("accountname",), ("potentialname",), ("sales stage",), ("closingdate",)),
              {"deal_id": ("potential no",), "deal_name": ("potentialname",), "account_name": ("accountname",),
               "stage": ("sales stage",), "close_date": ("closingdate",), "owner": ("assigned user id", "assigned to"),
               "currency": ("currency id", "currency"), "contact_name": ("contact id", "contact name")}),
)
GENERIC = CrmFormat("generic", "generic CSV", (), {})
BY_NAME = {crm.name: crm for crm in (*FORMATS, GENERIC)}


@dataclass(frozen=True)
class Detection:
    """What a file is: its CRM, how sure (0-1) and why, and per deal field the header it is read from."""

    crm: str
    confidence: float
    reason: str
    mapping: dict[str, str]
    unmapped: list[str]


def map_columns(headers: Sequence[str], crm: CrmFormat, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Per deal field the header it is read from: the override's, the CRM's own alias, then a common name; a
    header serves one field only."""
    by_key = {header_key(h): h for h in reversed(headers) if h.strip()}  # the first of duplicate headers wins
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for name, header in (overrides or {}).items():
        if header in headers:
            mapping[name] = header
            used.add(header)
    for aliases_of in (crm.columns, GENERIC_COLUMNS):
        for name in FIELDS:
            if name in mapping:
                continue
            for alias in aliases_of.get(name, ()):
                found = by_key.get(alias)
                if found is not None and found not in used:
                    mapping[name] = found
                    used.add(found)
                    break
    return mapping


def _signature_score(keys: set[str], crm: CrmFormat) -> tuple[float, list[str]]:
    found = [next(alias for alias in group if alias in keys) for group in crm.signature if keys.intersection(group)]
    return len(found) / len(crm.signature), found


def detect_crm(headers: Sequence[str], forced: str | None = None,
               overrides: Mapping[str, str] | None = None) -> Detection:
    """The CRM whose export has these headers (`forced`: the configured one), its mapping and the reason."""
    keys = {header_key(h) for h in headers if h.strip()}
    ranked = sorted(((*_signature_score(keys, crm), crm) for crm in FORMATS), key=lambda s: -s[0])
    if forced:
        crm, confidence = BY_NAME[forced], 1.0
        reason = f"{crm.label}: set by FILE_DROP_MAPPINGS"
    elif ranked[0][0] >= MIN_CONFIDENCE:
        confidence, found, crm = ranked[0]
        reason = (f"{crm.label}: {len(found)} of {len(crm.signature)} signature headers ({', '.join(found)})"
                  + (f"; next {ranked[1][2].label} {ranked[1][0]:.0%}" if ranked[1][0] else ""))
    else:
        crm = GENERIC
    mapping = map_columns(headers, crm, overrides)
    if crm is GENERIC and not forced:
        confidence = sum(name in mapping for name in CORE_FIELDS) / len(CORE_FIELDS)
        best = f"; closest {ranked[0][2].label} {ranked[0][0]:.0%}" if ranked[0][0] else ""
        missing = [name for name in CORE_FIELDS if name not in mapping]
        reason = (f"generic: no CRM's signature headers{best}; mapped {len(mapping)} fields"
                  + (f", not found: {', '.join(missing)}" if missing else ""))
    used = set(mapping.values())
    unmapped = [h for h in headers if h.strip() and h not in used]
    return Detection(crm.name, round(confidence, 3), reason, mapping, unmapped)


# HubSpot's internal stage ids (its exports write them when labels are off), then words any CRM's stage names use.
_HUBSPOT_STAGES = {"appointmentscheduled": "qualification", "qualifiedtobuy": "qualification",
                   "presentationscheduled": "proposal", "decisionmakerboughtin": "negotiation",
                   "contractsent": "negotiation", "closedwon": "closed_won", "closedlost": "closed_lost"}
_STAGE_WORDS = (("closed_won", ("won", "closed won", "closedwon")),
                ("closed_lost", ("lost", "closed lost", "closedlost")),
                ("negotiation", ("negotiat", "contract", "review", "commit")),
                ("proposal", ("proposal", "quote", "presentation", "demo")),
                ("qualification", ("qualif", "needs analysis", "value proposition", "decision maker", "perception",
                                   "appointment", "contact made", "discovery")),
                ("prospecting", ("prospect", "lead", "new")))
STANDARD_STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost", "other")


def standard_stage(stage: str | None, status: str | None = None) -> str | None:
    """The standard stage of a CRM's stage name (and a Pipedrive-style won/lost status, which wins)."""
    state = header_key(status or "")
    if state in ("won", "lost"):
        return f"closed_{state}"
    if not stage or not stage.strip():
        return None
    key = header_key(stage)
    if key.replace(" ", "") in _HUBSPOT_STAGES:
        return _HUBSPOT_STAGES[key.replace(" ", "")]
    words = f" {key} "
    for standard, cues in _STAGE_WORDS:
        if any(f" {cue}" in words for cue in cues):
            return standard
    return "other"
