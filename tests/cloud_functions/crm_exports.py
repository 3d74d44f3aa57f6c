"""CRM deal exports written as each CRM writes them, from a seed, with the rows they hold known.

Six formats (Salesforce, HubSpot, Zoho, Pipedrive, vTiger, a generic sheet) x eleven variants of encoding,
delimiter and locale (US: `$1,234.56`, 12/31/2026; European: `1.234,56 €`, 31/12/2026 or 31.12.2026), with the
mess real exports have: a byte-order mark or none, UTF-16 "Unicode text", Windows-1252, a deal name quoted
across lines, headers with trailing spaces, an empty trailing column, a blank line, and one row whose amount
is not a number (it must be rejected with the reason).
"""
from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

FIELDS = ("deal_id", "deal_name", "account_name", "stage", "amount", "close_date", "probability", "owner",
          "contact_name", "contact_email", "contact_phone", "currency")
# Per format: the header it writes for each field it has (None: it has no such column), and extra columns.
HEADERS: dict[str, dict[str, str]] = {
    "salesforce": {"deal_id": "Opportunity ID", "deal_name": "Opportunity Name", "account_name": "Account Name",
                   "stage": "Stage", "amount": "Amount", "close_date": "Close Date", "probability": "Probability (%)",
                   "owner": "Opportunity Owner", "contact_name": "Contact Name", "contact_email": "Contact Email",
                   "contact_phone": "Contact Phone", "_extra": "Lead Source"},
    "hubspot": {"deal_id": "Record ID", "deal_name": "Deal Name", "stage": "Deal Stage", "_pipeline": "Pipeline",
                "amount": "Amount", "close_date": "Close Date", "owner": "Deal owner", "account_name": "Company Name",
                "contact_name": "Associated Contact", "contact_email": "Contact Email", "contact_phone": "Phone Number",
                "_extra": "Create Date"},
    "zoho": {"deal_id": "Record Id", "deal_name": "Deal Name", "account_name": "Account Name", "stage": "Stage",
             "amount": "Amount", "close_date": "Closing Date", "owner": "Deal Owner", "probability": "Probability (%)",
             "contact_name": "Contact Name", "contact_email": "Email", "contact_phone": "Phone", "_extra": "Lead Source"},
    "pipedrive": {"deal_id": "Deal - ID", "deal_name": "Deal - Title", "account_name": "Deal - Organization",
                  "amount": "Deal - Value", "currency": "Deal - Currency", "stage": "Deal - Stage",
                  "close_date": "Deal - Expected close date", "owner": "Deal - Owner",
                  "contact_name": "Deal - Contact person", "contact_email": "Person - Email",
                  "contact_phone": "Person - Phone", "_extra": "Deal - Label"},
    "vtiger": {"deal_id": "potential_no", "deal_name": "potentialname", "_account_no": "account_no",
               "account_name": "accountname", "stage": "sales_stage", "amount": "amount", "close_date": "closingdate",
               "probability": "probability", "owner": "assigned_user_id", "contact_name": "contact_id",
               "contact_email": "email", "contact_phone": "phone", "_extra": "leadsource"},
    "generic": {"deal_name": "Deal", "account_name": "Company", "amount": "Value", "stage": "Phase",
                "close_date": "Close", "owner": "Rep", "contact_name": "Contact", "contact_email": "Email",
                "contact_phone": "Phone", "_extra": "Notes"},
}
STAGES: dict[str, list[tuple[str, str]]] = {  # (as the CRM writes it, the standard stage)
    "salesforce": [("Prospecting", "prospecting"), ("Qualification", "qualification"),
                   ("Proposal/Price Quote", "proposal"), ("Negotiation/Review", "negotiation"),
                   ("Closed Won", "closed_won"), ("Closed Lost", "closed_lost")],
    "hubspot": [("appointmentscheduled", "qualification"), ("presentationscheduled", "proposal"),
                ("contractsent", "negotiation"), ("closedwon", "closed_won"), ("closedlost", "closed_lost")],
    "zoho": [("Needs Analysis", "qualification"), ("Value Proposition", "qualification"),
             ("Proposal/Price Quote", "proposal"), ("Closed Won", "closed_won"), ("Closed-Lost to Competition", "closed_lost")],
    "pipedrive": [("Lead In", "prospecting"), ("Contact Made", "qualification"), ("Demo Scheduled", "proposal"),
                  ("Negotiations Started", "negotiation")],
    "vtiger": [("Prospecting", "prospecting"), ("Id. Decision Makers", "qualification"),
               ("Negotiation or Review", "negotiation"), ("Closed Won", "closed_won")],
    "generic": [("New", "prospecting"), ("Qualified", "qualification"), ("Proposal sent", "proposal"), ("Won", "closed_won")],
}


@dataclass(frozen=True)
class Variant:
    name: str
    encoding: str  # as Python writes it: utf-16 and utf-8-sig write a byte-order mark
    delimiter: str
    locale: str  # us or eu
    messy_headers: bool = False  # trailing spaces and an empty trailing column


VARIANTS = (
    Variant("utf8-comma-us", "utf-8", ",", "us"),
    Variant("utf8bom-comma-us", "utf-8-sig", ",", "us", messy_headers=True),
    Variant("utf8-semicolon-eu", "utf-8", ";", "eu"),
    Variant("utf8bom-semicolon-eu", "utf-8-sig", ";", "eu", messy_headers=True),
    Variant("utf8-tab-eu", "utf-8", "\t", "eu"),
    Variant("utf16-tab-us", "utf-16", "\t", "us"),
    Variant("utf16-tab-eu", "utf-16", "\t", "eu", messy_headers=True),
    Variant("cp1252-comma-us", "cp1252", ",", "us"),
    Variant("cp1252-semicolon-eu", "cp1252", ";", "eu", messy_headers=True),
    Variant("cp1252-tab-us", "cp1252", "\t", "us"),
    Variant("utf16le-tab-eu", "utf-16-le", "\t", "eu"),  # Unicode text without a byte-order mark
)
ACCOUNTS = ("Société Générale", "Müller & Söhne GmbH", "Acme, Inc.", "Globex Corporation", "Øresund Logistik AB",
            "Initech", "Café Olé S.L.", "Umbrella \"Health\" Ltd")
PEOPLE = ("Zoë Martin", "Jürgen Weiß", "Ana O'Neil", "Li Wei", "José Núñez", "Sam Lee")
ROWS = 9  # good rows per file; plus one that is rejected


@dataclass(frozen=True)
class ExpectedDeal:
    deal_name: str
    account_name: str
    amount: Decimal
    close_date: date
    standard_stage: str
    contact_email: str
    currency: str | None


@dataclass(frozen=True)
class Export:
    path: Path
    crm: str
    variant: Variant
    deals: list[ExpectedDeal]
    rejected_rows: int


def _amount_text(value: Decimal, locale: str, with_symbol: bool) -> str:
    if locale == "us":
        text = f"{value:,.2f}"
        return f"${text}" if with_symbol else text
    text = f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{text} €" if with_symbol else text


def _date_text(day: date, locale: str, index: int) -> str:
    if locale == "us":
        return day.strftime("%m/%d/%Y")
    return day.strftime("%d.%m.%Y" if index % 3 == 2 else "%d/%m/%Y")


def _deal(rng: random.Random, crm: str, index: int, locale: str) -> tuple[dict[str, str], ExpectedDeal]:
    stage, standard = rng.choice(STAGES[crm])
    amount = Decimal(rng.randrange(100, 5_000_000)) / 100
    close = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 700))
    if index == 0:
        close = close.replace(day=28)  # a day past 12 in the first row: the file's day order is decidable
    person = rng.choice(PEOPLE)
    account = rng.choice(ACCOUNTS)
    email = f"{person.split()[0].lower().replace('ë', 'e').replace('ü', 'u').replace('é', 'e')}.{index}@{crm}-example.com"
    name = f"{account.split()[0]} renewal {index}" + ("\nsecond line" if index == 3 else "")
    with_symbol = crm in ("salesforce", "zoho", "vtiger")
    cells = {"deal_id": f"{crm[:2].upper()}{index:05d}", "deal_name": name, "account_name": account,
             "stage": stage, "amount": _amount_text(amount, locale, with_symbol), "close_date": _date_text(close, locale, index),
             "probability": str(rng.choice((10, 25, 50, 90))), "owner": rng.choice(PEOPLE),
             "contact_name": person, "contact_email": f" {email.upper()} " if index == 1 else email,
             "contact_phone": "+1 415 555 01%02d" % index, "currency": "EUR" if locale == "eu" else "USD",
             "_extra": "Web", "_pipeline": "default", "_account_no": f"ACC{index}"}
    currency = "EUR" if locale == "eu" and (with_symbol or crm == "pipedrive") else (
        "USD" if with_symbol or crm == "pipedrive" else None)
    return cells, ExpectedDeal(name, account, amount, close, standard, email, currency)


def write_export(folder: Path, crm: str, variant: Variant, seed: int) -> Export:
    """One export file under folder/<crm>-<variant>/ (its own folder: its deals' key space)."""
    rng = random.Random(f"{seed}:{crm}:{variant.name}")
    headers = HEADERS[crm]
    names = [f"{h} " if variant.messy_headers and i % 2 else h for i, h in enumerate(headers.values())]
    if variant.messy_headers:
        names.append("")
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=variant.delimiter, lineterminator="\r\n")
    writer.writerow(names)
    deals = []
    for index in range(ROWS):
        cells, expected = _deal(rng, crm, index, variant.locale)
        deals.append(expected)
        writer.writerow([cells[field] for field in headers] + ([""] if variant.messy_headers else []))
        if index == 4:
            writer.writerow([""] * len(names))  # a blank line: no record
    bad, _ = _deal(rng, crm, ROWS, variant.locale)
    bad["amount"] = "n/a pending"
    writer.writerow([bad[field] for field in headers] + ([""] if variant.messy_headers else []))
    path = folder / f"{crm}-{variant.name}" / f"{crm}_deals.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode(variant.encoding))
    return Export(path, crm, variant, deals, rejected_rows=1)


def write_all(folder: Path, seed: int = 7) -> list[Export]:
    """Every format in every variant: 66 files."""
    return [write_export(folder, crm, variant, seed) for crm in HEADERS for variant in VARIANTS]


def deal_values(row: dict[str, Any]) -> ExpectedDeal:
    """A crm_deals row as the ExpectedDeal it should equal."""
    return ExpectedDeal(row["deal_name"], row["account_name"], Decimal(row["amount"]).quantize(Decimal("0.01")),
                        row["close_date"], row["standard_stage"], row["contact_email"], row["currency"])
