"""A CRM export's rows -> crm_deals, crm_people and crm_companies rows (pure, no I/O).

A deal is keyed by where it came from and its CRM's id: the drop's folder (`namespace`: two HubSpot portals
dropped in two folders never share a key), the CRM, and the deal's record id, so tomorrow's export of the same
CRM updates today's deals instead of adding them again. A file without an id column keys a deal by its
name and account instead. People are keyed by email (else name and company), companies by normalised name.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from cloud_functions.file_drop.crm_formats import Detection, standard_stage
from cloud_functions.file_drop.locale_values import currency_of, parse_amount, parse_date, parse_percent
from pipeline.runner import RejectedRecord
from transform.email_normalizer import email_domain, normalize_email, web_domain
from transform.phone_normalizer import to_e164

# Legal forms left out of a normalised company name, so `Acme, Inc.` and `ACME GmbH` compare equal (dotted ones,
# `S.A.`, as their letters are left once punctuation is a space; the longer first);
# bigquery/views/v_crm_deal_account_matches.sql applies the same rule to Salesforce's account names.
LEGAL_FORMS = ("s a s", "s a", "s l", "s r l", "s p a", "b v", "n v", "inc", "incorporated", "llc", "ltd", "limited", "gmbh", "ag", "sa", "sas", "sarl", "srl", "spa",
               "bv", "nv", "plc", "corp", "corporation", "co", "company", "oy", "ab", "as", "kk", "pty", "pte", "lp")
_LEGAL = re.compile(r"\b(" + "|".join(LEGAL_FORMS) + r")\b")
MATCH_COLUMNS = ("sf_contact_id", "sf_lead_id", "sf_account_id", "match_method", "match_confidence", "matched_at")


# Accented letters folded one for one (BigQuery and DuckDB both have TRANSLATE; DuckDB has no NORMALIZE).
ACCENTED = "àáâãäåāăąçćčďèéêëēėęěìíîïīįłñńňòóôõöøōőřśšşťùúûüūůűųýÿźżž"
PLAIN = "aaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooorssstuuuuuuuuyyzzz"
_FOLD = str.maketrans(ACCENTED, PLAIN)


def normalized_name(name: str | None) -> str | None:
    """A company name as compared across systems: lower case, accents folded, punctuation and legal forms out,
    single spaces (`Société Générale S.A.` -> `societe generale`); the views' SQL computes the same."""
    if not name:
        return None
    words = _LEGAL.sub(" ", re.sub(r"[^a-z0-9]+", " ", name.lower().translate(_FOLD)))
    return " ".join(words.split()) or None


@dataclass(frozen=True)
class FileContext:
    """What every row of one file is read with: the detection, the file's locale, where it came from."""

    detection: Detection
    decimal_mark: str
    day_first: bool
    namespace: str
    lineage: Mapping[str, Any]  # drop_bucket, drop_name, drop_generation, file_checksum
    phone_region: str = "US"
    free_mail: frozenset[str] = field(default_factory=frozenset)


def _cell(cells: Mapping[str, str], context: FileContext, name: str) -> str | None:
    header = context.detection.mapping.get(name)
    value = cells.get(header) if header else None
    return value.strip() or None if value is not None else None


def _hash(*parts: str | None) -> str:
    return hashlib.sha256("\x1f".join(part or "" for part in parts).encode()).hexdigest()[:32]


def _company_domain(website: str | None, email: str | None, free_mail: frozenset[str]) -> str | None:
    domain = web_domain(website) if website else None
    if domain:
        return domain
    from_mail = email_domain(email)
    return from_mail if from_mail and from_mail not in free_mail else None


def _currency(text: str | None) -> str | None:
    """An ISO currency code from a currency column (`EUR`, `eur`, `€`, `EUR - Euro`)."""
    if not text:
        return None
    return currency_of(text) or (text.upper() if len(text) == 3 and text.isalpha() else None)


def _typed(cells: Mapping[str, str], context: FileContext) -> dict[str, Any]:
    """The deal's typed values; RejectedRecord naming the cell that is not what its column holds."""
    def read(name: str, parse: Any) -> Any:
        text = _cell(cells, context, name)
        try:
            return parse(text)
        except ValueError as error:
            raise RejectedRecord(f"{name} ({context.detection.mapping[name]!r}): {error}") from None

    amount = read("amount", lambda t: parse_amount(t, context.decimal_mark))
    return {"amount": amount, "probability": read("probability", lambda t: parse_percent(t, context.decimal_mark)),
            "close_date": read("close_date", lambda t: parse_date(t, context.day_first))}


def deal_rows(record: Mapping[str, Any], context: FileContext) -> dict[str, list[dict[str, Any]]]:
    """The crm_deals row of one export row, and its person and company; RejectedRecord when it names no deal
    or a cell cannot be read."""
    cells: Mapping[str, str] = record["cells"]
    name, account = _cell(cells, context, "deal_name"), _cell(cells, context, "account_name")
    if not name:
        raise RejectedRecord("no deal name" + ("" if "deal_name" in context.detection.mapping
                                               else ": no column maps to the deal name"))
    typed = _typed(cells, context)
    amount = typed["amount"]
    crm, crm_id = context.detection.crm, _cell(cells, context, "deal_id")
    email_raw, phone = _cell(cells, context, "contact_email"), _cell(cells, context, "contact_phone")
    email, phone_e164 = normalize_email(email_raw), to_e164(phone, context.phone_region)
    account_normalized = normalized_name(account)
    status = _cell(cells, context, "status")
    stage = _cell(cells, context, "stage") or (status if standard_stage(None, status) is None else None)
    deal = {
        "deal_key": f"{context.namespace}:{crm}:{crm_id or _hash(name.lower(), account_normalized)}",
        "source_crm": crm, "crm_deal_id": crm_id, "deal_name": name, "account_name": account,
        "account_name_normalized": account_normalized,
        "account_domain": _company_domain(_cell(cells, context, "account_website"), email, context.free_mail),
        "stage": stage, "standard_stage": standard_stage(stage, status),
        "pipeline": _cell(cells, context, "pipeline"),
        "amount": amount.value if amount else None,
        "currency": _currency(_cell(cells, context, "currency")) or (amount.currency if amount else None),
        "probability": typed["probability"], "close_date": typed["close_date"],
        "owner": _cell(cells, context, "owner"), "contact_name": _cell(cells, context, "contact_name"),
        "contact_email": email, "contact_domain": email_domain(email), "contact_email_raw": email_raw, "contact_phone": phone,
        "contact_phone_e164": phone_e164, "drop_namespace": context.namespace, "row_number": record["row"],
        "raw_row": dict(cells), **context.lineage,
        # A changed row is matched again: the next resolution sees it as never examined.
        **dict.fromkeys(MATCH_COLUMNS), **dict.fromkeys(f"phone_{c}" for c in MATCH_COLUMNS),
    }
    rows: dict[str, list[dict[str, Any]]] = {"crm_deals": [deal]}
    rows["crm_people"] = _person(deal, context)
    rows["crm_companies"] = _company(deal, context)
    return rows


def _person(deal: Mapping[str, Any], context: FileContext) -> list[dict[str, Any]]:
    if not (deal["contact_email"] or deal["contact_name"] or deal["contact_phone_e164"]):
        return []
    key = deal["contact_email"] or _hash(deal["contact_name"], deal["contact_phone_e164"], deal["account_name_normalized"])
    return [{"person_key": f"{context.namespace}:{deal['source_crm']}:{key}", "source_crm": deal["source_crm"],
             "name": deal["contact_name"], "email": deal["contact_email"], "phone": deal["contact_phone"],
             "phone_e164": deal["contact_phone_e164"], "account_name": deal["account_name"],
             "drop_namespace": context.namespace, "file_checksum": context.lineage["file_checksum"]}]


def _company(deal: Mapping[str, Any], context: FileContext) -> list[dict[str, Any]]:
    if not deal["account_name_normalized"]:
        return []
    return [{"company_key": f"{context.namespace}:{deal['source_crm']}:{deal['account_name_normalized']}",
             "source_crm": deal["source_crm"], "name": deal["account_name"],
             "name_normalized": deal["account_name_normalized"], "domain": deal["account_domain"],
             "drop_namespace": context.namespace, "file_checksum": context.lineage["file_checksum"]}]


def row_record(number: int, headers: list[str], cells: list[str]) -> dict[str, Any]:
    """An export row as a record: its number (1 is the first after the header) and its cells by header; cells
    past the header (an unnamed trailing column) kept under `_extra` when not empty."""
    named = {header: cell for header, cell in zip(headers, cells) if header}
    extra = [cell for cell in cells[len(headers):] if cell.strip()]
    if extra:
        named["_extra"] = "\t".join(extra)
    return {"row": number, "cells": named}


def is_blank(cells: list[str]) -> bool:
    """A row with no value in any cell (a spreadsheet's empty line): not a record."""
    return not any(cell.strip() for cell in cells)
