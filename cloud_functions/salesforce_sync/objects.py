"""The seven Salesforce objects as declarations, and their pure record -> row transforms.

Every object is read with an explicit field list, merged on `Id`, and followed by its
`SystemModstamp` cursor. Emails and phones get normalised columns beside the raw ones, because
entity resolution joins on them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from utils.email_normalizer import email_domain, normalize_email, web_domain
from utils.phone_normalizer import parse_phone
from utils.sync_runner import RejectedRecord
from utils.values import to_bool, to_date, to_datetime, to_float, to_int, to_str

COMMON_FIELDS = ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")
CURSOR = "SystemModstamp"
PRIMARY_KEY = "Id"


@dataclass(frozen=True)
class SalesforceObject:
    """One object: where it goes, what is read, how a record becomes a row."""

    name: str
    table: str
    fields: tuple[str, ...]
    to_row: Callable[[dict[str, Any], str], dict[str, Any]]

    def soql(self, since: str | None = None, ordered: bool = True) -> str:
        """The SOQL that reads it, from an inclusive SystemModstamp bound when given."""
        soql = f"SELECT {', '.join(self.fields)} FROM {self.name}"
        if since:
            soql += f" WHERE {CURSOR} >= {since}"
        return soql + (f" ORDER BY {CURSOR}, {PRIMARY_KEY}" if ordered else "")


def _common(record: dict[str, Any]) -> dict[str, Any]:
    record_id = to_str(record.get("Id"))
    if not record_id:
        raise RejectedRecord("missing Id")
    modstamp = to_datetime(record.get(CURSOR))
    if modstamp is None:
        raise RejectedRecord("missing SystemModstamp")
    return {"id": record_id, "is_deleted": bool(to_bool(record.get("IsDeleted"))),
            "created_date": to_datetime(record.get("CreatedDate")),
            "last_modified_date": to_datetime(record.get("LastModifiedDate")), "system_modstamp": modstamp}


def _phone(prefix: str, raw: Any, region: str, extension: bool = False) -> dict[str, Any]:
    text = to_str(raw)
    parsed = parse_phone(text, region) if text else None
    row = {prefix: text, f"{prefix}_e164": parsed.e164 if parsed else None}
    if extension:
        row[f"{prefix}_extension"] = parsed.extension if parsed else None
    return row


def _email(raw: Any) -> dict[str, Any]:
    text = to_str(raw)
    email = normalize_email(text)
    return {"email_raw": text, "email": email, "domain": email_domain(email)}


def account_row(record: dict[str, Any], region: str) -> dict[str, Any]:
    website = to_str(record.get("Website"))
    return {**_common(record), "name": to_str(record.get("Name")), "type": to_str(record.get("Type")),
            "industry": to_str(record.get("Industry")), "website": website, "domain": web_domain(website),
            **_phone("phone", record.get("Phone"), region), "billing_country": to_str(record.get("BillingCountry")),
            "owner_id": to_str(record.get("OwnerId"))}


def _person(record: dict[str, Any], region: str) -> dict[str, Any]:
    return {**_common(record), "first_name": to_str(record.get("FirstName")),
            "last_name": to_str(record.get("LastName")), "title": to_str(record.get("Title")),
            **_email(record.get("Email")), **_phone("phone", record.get("Phone"), region, extension=True),
            **_phone("mobile_phone", record.get("MobilePhone"), region),
            "owner_id": to_str(record.get("OwnerId")), "lead_source": to_str(record.get("LeadSource"))}


def contact_row(record: dict[str, Any], region: str) -> dict[str, Any]:
    return {**_person(record, region), "account_id": to_str(record.get("AccountId")),
            "mailing_country": to_str(record.get("MailingCountry"))}


def lead_row(record: dict[str, Any], region: str) -> dict[str, Any]:
    return {**_person(record, region), "company": to_str(record.get("Company")), "status": to_str(record.get("Status")),
            "country": to_str(record.get("Country")), "is_converted": to_bool(record.get("IsConverted")),
            "converted_contact_id": to_str(record.get("ConvertedContactId")),
            "converted_account_id": to_str(record.get("ConvertedAccountId")),
            "converted_date": to_date(record.get("ConvertedDate"))}


def opportunity_row(record: dict[str, Any], region: str) -> dict[str, Any]:
    return {**_common(record), "account_id": to_str(record.get("AccountId")), "name": to_str(record.get("Name")),
            "stage_name": to_str(record.get("StageName")), "amount": to_float(record.get("Amount")),
            "probability": to_float(record.get("Probability")), "close_date": to_date(record.get("CloseDate")),
            "type": to_str(record.get("Type")), "is_closed": to_bool(record.get("IsClosed")),
            "is_won": to_bool(record.get("IsWon")), "owner_id": to_str(record.get("OwnerId"))}


def _activity(record: dict[str, Any], activity_type: str) -> dict[str, Any]:
    return {**_common(record), "activity_type": activity_type, "subject": to_str(record.get("Subject")),
            "who_id": to_str(record.get("WhoId")), "what_id": to_str(record.get("WhatId")),
            "account_id": to_str(record.get("AccountId")), "owner_id": to_str(record.get("OwnerId"))}


def task_row(record: dict[str, Any], region: str) -> dict[str, Any]:
    activity_date = to_date(record.get("ActivityDate"))
    return {**_activity(record, "Task"), "status": to_str(record.get("Status")),
            "activity_at": to_datetime(activity_date.isoformat()) if activity_date else None,
            "call_type": to_str(record.get("CallType")),
            "call_duration_seconds": to_int(record.get("CallDurationInSeconds"))}


def event_row(record: dict[str, Any], region: str) -> dict[str, Any]:
    return {**_activity(record, "Event"), "activity_at": to_datetime(record.get("StartDateTime")),
            "end_at": to_datetime(record.get("EndDateTime"))}


def address_list(*values: Any) -> list[str]:
    """Normalised addresses of EmailMessage address fields ("a@x.com; b@y.com"), in order, once each."""
    seen: dict[str, None] = {}
    for value in values:
        for part in re.split(r"[;,]", to_str(value) or ""):
            email = normalize_email(part)
            if email:
                seen.setdefault(email)
    return list(seen)


def email_message_row(record: dict[str, Any], region: str) -> dict[str, Any]:
    from_address = to_str(record.get("FromAddress"))
    return {**_common(record), "activity_type": "EmailMessage", "subject": to_str(record.get("Subject")),
            "what_id": to_str(record.get("RelatedToId")), "owner_id": to_str(record.get("CreatedById")),
            "status": to_str(record.get("Status")), "activity_at": to_datetime(record.get("MessageDate")),
            "from_address": from_address, "from_email": normalize_email(from_address),
            "to_address": to_str(record.get("ToAddress")),
            "to_emails": address_list(record.get("ToAddress"), record.get("CcAddress")),
            "is_incoming": to_bool(record.get("Incoming"))}


_PERSON = ("FirstName", "LastName", "Title", "Email", "Phone", "MobilePhone", "OwnerId", "LeadSource")
_ACTIVITY = ("Subject", "WhoId", "WhatId", "AccountId", "OwnerId")

OBJECTS: dict[str, SalesforceObject] = {o.name: o for o in (
    SalesforceObject("Account", "sf_accounts", (*COMMON_FIELDS, "Name", "Type", "Industry", "Website", "Phone",
                                                 "BillingCountry", "OwnerId"), account_row),
    SalesforceObject("Contact", "sf_contacts", (*COMMON_FIELDS, "AccountId", *_PERSON, "MailingCountry"), contact_row),
    SalesforceObject("Lead", "sf_leads", (*COMMON_FIELDS, *_PERSON, "Company", "Status", "Country", "IsConverted",
                                           "ConvertedContactId", "ConvertedAccountId", "ConvertedDate"), lead_row),
    SalesforceObject("Opportunity", "sf_opportunities", (*COMMON_FIELDS, "AccountId", "Name", "StageName", "Amount",
                                                          "Probability", "CloseDate", "Type", "IsClosed", "IsWon",
                                                          "OwnerId"), opportunity_row),
    SalesforceObject("Task", "sf_activities", (*COMMON_FIELDS, *_ACTIVITY, "Status", "ActivityDate", "CallType",
                                                "CallDurationInSeconds"), task_row),
    SalesforceObject("Event", "sf_activities", (*COMMON_FIELDS, *_ACTIVITY, "StartDateTime", "EndDateTime"), event_row),
    SalesforceObject("EmailMessage", "sf_activities", (*COMMON_FIELDS, "Subject", "RelatedToId", "CreatedById", "Status",
                                                        "MessageDate", "FromAddress", "ToAddress", "CcAddress",
                                                        "Incoming"), email_message_row),
)}
