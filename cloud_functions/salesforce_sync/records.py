"""The Salesforce objects as declarations: fields read, target table, and column-wise transforms.

Every object is read with an explicit field list, merged on `Id`, and followed by its cursor:
`SystemModstamp`, or `CreatedDate` for OpportunityFieldHistory, which has no SystemModstamp (its rows are
only ever added). Emails and phones get normalised columns beside the raw ones, because entity resolution
joins on them.

A page (Bulk CSV cells, or REST JSON records) is transformed a column at a time with transform.columns:
each column declaration turns source fields into output columns, and a row any declaration cannot
convert is rejected with the first reason. `to_row` runs the same declarations on one record. The
declarations themselves (required, text, email, phone, ...) are transform.column_declarations.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from cloud_functions.salesforce_sync.fields import CONVERSIONS, OrgField
from pipeline.runner import RejectedRecord
from transform import columns
from transform.column_declarations import (
    Declaration,
    PhoneRegions,
    addresses,
    cells_of,
    constant,
    converted,
    email,
    flag,
    integer,
    normalised_email,
    number,
    phone,
    required,
    start_of_day,
    text,
    website,
)

# The most text any Salesforce field holds: Long Text Area and Rich Text Area fields, 131,072 characters
# (Salesforce Help, "Custom Field Types"); every other text field holds less (255 for most). A longer value
# is no Salesforce value, and storing it whole would let one record weigh megabytes.
MAX_TEXT_CHARS = 131_072
COMMON_FIELDS = ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")
CURSOR = "SystemModstamp"
PRIMARY_KEY = "Id"

@dataclass(frozen=True)
class SalesforceObject:
    """One object: where it goes, what is read, how its fields become columns."""

    name: str
    table: str
    fields: tuple[str, ...]
    declarations: tuple[Declaration, ...]
    # Fields naming the record's country, first known one wins: its phone numbers are read there.
    countries: tuple[str, ...] = ()
    # The field incremental reads follow (CreatedDate where there is no SystemModstamp: rows only added).
    cursor: str = CURSOR

    def soql(self, since: str | None = None, ordered: bool = True) -> str:
        """The SOQL that reads it, from an inclusive cursor bound when given."""
        soql = f"SELECT {', '.join(self.fields)} FROM {self.name}"
        if since:
            soql += f" WHERE {self.cursor} >= {since}"
        return soql + (f" ORDER BY {self.cursor}, {PRIMARY_KEY}" if ordered else "")

    def with_fields(self, custom: Sequence[OrgField]) -> "SalesforceObject":
        """The object reading an org's custom fields too, each into its column by its BigQuery type."""
        return replace(self, fields=(*self.fields, *(f.name for f in custom)), declarations=(
            *self.declarations, *(converted(f.column, f.name, CONVERSIONS[f.bigquery_type]) for f in custom)))

    def transform(self, page: pa.Table | Sequence[Mapping[str, Any]], region: str) -> tuple[pa.Table, list[tuple[Any, str]]]:
        """The rows of a page (CSV cells or JSON records), and each rejected record with its reason.

        Phone numbers are read in the region of the record's country (`countries`), else in `region`; a number
        invalid in its record's country is read in `region` too (an org writes its own international prefix:
        `011 44 20 7686 5244` on a UK contact of a US org).
        """
        records = None if isinstance(page, pa.Table) else list(page)
        cells = columns.text_table([_flat(r, self.fields) for r in records], self.fields) if records is not None \
            else _with_fields(page, self.fields)
        outputs: dict[str, pa.Array] = {}
        known = columns.country_regions([cells_of(cells, f) for f in self.countries]) if self.countries else None
        regions = pa.repeat(region.upper(), cells.num_rows) if known is None else \
            pc.coalesce(known, pa.scalar(region.upper()))
        if known is not None:
            outputs["phone_country_code"] = columns.calling_codes(known)
        errors = [columns.unstorable_rows(cells), beyond_field_limit(cells, self.fields)]
        for declaration in self.declarations:
            arrays, error = declaration(cells, PhoneRegions(regions, region.upper()))
            outputs.update(arrays)
            errors.append(error)
        rows = pa.table(outputs)
        reasons = columns.first_error(errors)
        if reasons is None:
            return rows, []
        bad = pc.is_valid(reasons)
        bad_records = cells.filter(bad).to_pylist() if records is None else \
            [records[i] for i in pc.indices_nonzero(bad).to_pylist()]
        return rows.filter(pc.invert(bad)), list(zip(bad_records, reasons.filter(bad).to_pylist()))

    def to_row(self, record: Mapping[str, Any], region: str) -> dict[str, Any]:
        """One record's row; raises RejectedRecord with the reason when it cannot be converted."""
        rows, rejected = self.transform([record], region)
        if rejected:
            raise RejectedRecord(rejected[0][1])
        return rows.to_pylist()[0]


def beyond_field_limit(cells: pa.Table, fields: Sequence[str]) -> pa.Array | None:
    """Per row, the first of `fields` holding more text than any Salesforce field can (MAX_TEXT_CHARS); None when
    no row does."""
    errors = []
    for field in fields:
        column = cells_of(cells, field)
        # Bytes bound characters from above: only a column with a long cell is measured in characters.
        if column.type != pa.string() or not pc.any(pc.greater(pc.binary_length(column), MAX_TEXT_CHARS)).as_py():
            continue
        errors.append(pa.array([f"{field} holds {n:,} characters, more than the {MAX_TEXT_CHARS:,} of any Salesforce "
                                "text field" if n is not None and n > MAX_TEXT_CHARS else None
                                for n in pc.utf8_length(column).to_pylist()], pa.string()))
    return columns.first_error(errors)


def _flat(record: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A REST record's fields by name; a relationship field ("Account.BillingCountry") read from its nested record."""
    flat = {}
    for field in fields:
        value: Any = record
        for part in field.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        flat[field] = value
    return flat


def _with_fields(page: pa.Table, fields: Sequence[str]) -> pa.Table:
    """The page with every field present (a field the server left out is all nulls)."""
    missing = [f for f in fields if f not in page.column_names]
    for field in missing:
        page = page.append_column(field, pa.nulls(page.num_rows, pa.string()))
    return page


COMMON = (
    required("id", "Id"), required("system_modstamp", CURSOR, columns.timestamp),
    flag("is_deleted", "IsDeleted", default=False),
    converted("created_date", "CreatedDate", columns.timestamp),
    converted("last_modified_date", "LastModifiedDate", columns.timestamp),
)
PERSON = (
    text("first_name", "FirstName"), text("last_name", "LastName"), text("title", "Title"), email("Email"),
    phone("phone", "Phone", extension=True), phone("mobile_phone", "MobilePhone"), text("owner_id", "OwnerId"),
    text("lead_source", "LeadSource"),
)
ACTIVITY = (text("subject", "Subject"), text("who_id", "WhoId"), text("what_id", "WhatId"),
            text("account_id", "AccountId"), text("owner_id", "OwnerId"))
# History objects: Salesforce writes a row per change; nobody edits one. OpportunityHistory has a SystemModstamp
# (it moves when the opportunity is deleted or restored); OpportunityFieldHistory has none.
HISTORY = (required("id", "Id"), required("created_date", "CreatedDate", columns.timestamp),
           flag("is_deleted", "IsDeleted", default=False), text("opportunity_id", "OpportunityId"),
           text("created_by_id", "CreatedById"))
_HISTORY_FIELDS = ("Id", "IsDeleted", "OpportunityId", "CreatedById", "CreatedDate")
_PERSON_FIELDS = ("FirstName", "LastName", "Title", "Email", "Phone", "MobilePhone", "OwnerId", "LeadSource")
_ACTIVITY_FIELDS = ("Subject", "WhoId", "WhatId", "AccountId", "OwnerId")

OBJECTS: dict[str, SalesforceObject] = {o.name: o for o in (
    SalesforceObject("Account", "sf_accounts",
                     (*COMMON_FIELDS, "Name", "Type", "Industry", "Website", "Phone", "BillingCountry",
                      "ShippingCountry", "OwnerId"),
                     (*COMMON, text("name", "Name"), text("type", "Type"), text("industry", "Industry"),
                      website("Website"), phone("phone", "Phone"), text("billing_country", "BillingCountry"),
                      text("owner_id", "OwnerId")), countries=("BillingCountry", "ShippingCountry")),
    SalesforceObject("Contact", "sf_contacts",
                     (*COMMON_FIELDS, "AccountId", *_PERSON_FIELDS, "MailingCountry", "Account.BillingCountry"),
                     (*COMMON, *PERSON, text("account_id", "AccountId"), text("mailing_country", "MailingCountry")),
                     countries=("MailingCountry", "Account.BillingCountry")),
    SalesforceObject("Lead", "sf_leads",
                     (*COMMON_FIELDS, *_PERSON_FIELDS, "Company", "Status", "Country", "IsConverted",
                      "ConvertedContactId", "ConvertedAccountId", "ConvertedDate"),
                     (*COMMON, *PERSON, text("company", "Company"), text("status", "Status"), text("country", "Country"),
                      flag("is_converted", "IsConverted"), text("converted_contact_id", "ConvertedContactId"),
                      text("converted_account_id", "ConvertedAccountId"),
                      converted("converted_date", "ConvertedDate", columns.date)), countries=("Country",)),
    SalesforceObject("Opportunity", "sf_opportunities",
                     (*COMMON_FIELDS, "AccountId", "Name", "StageName", "Amount", "Probability", "CloseDate", "Type",
                      "IsClosed", "IsWon", "OwnerId"),
                     (*COMMON, text("account_id", "AccountId"), text("name", "Name"), text("stage_name", "StageName"),
                      number("amount", "Amount"), number("probability", "Probability"),
                      converted("close_date", "CloseDate", columns.date), text("type", "Type"),
                      flag("is_closed", "IsClosed"), flag("is_won", "IsWon"), text("owner_id", "OwnerId"))),
    SalesforceObject("Task", "sf_activities",
                     (*COMMON_FIELDS, *_ACTIVITY_FIELDS, "Status", "ActivityDate", "CallType", "CallDurationInSeconds"),
                     (*COMMON, constant("activity_type", "Task"), *ACTIVITY, text("status", "Status"),
                      start_of_day("activity_at", "ActivityDate"), text("call_type", "CallType"),
                      integer("call_duration_seconds", "CallDurationInSeconds"))),
    SalesforceObject("Event", "sf_activities", (*COMMON_FIELDS, *_ACTIVITY_FIELDS, "StartDateTime", "EndDateTime"),
                     (*COMMON, constant("activity_type", "Event"), *ACTIVITY,
                      converted("activity_at", "StartDateTime", columns.timestamp),
                      converted("end_at", "EndDateTime", columns.timestamp))),
    SalesforceObject("EmailMessage", "sf_activities",
                     (*COMMON_FIELDS, "Subject", "RelatedToId", "CreatedById", "Status", "MessageDate", "FromAddress",
                      "ToAddress", "CcAddress", "Incoming"),
                     (*COMMON, constant("activity_type", "EmailMessage"), text("subject", "Subject"),
                      text("what_id", "RelatedToId"), text("owner_id", "CreatedById"), text("status", "Status"),
                      converted("activity_at", "MessageDate", columns.timestamp), text("from_address", "FromAddress"),
                      normalised_email("from_email", "FromAddress"),
                      text("to_address", "ToAddress"), addresses("to_emails", "ToAddress", "CcAddress"),
                      flag("is_incoming", "Incoming"))),
    SalesforceObject("OpportunityHistory", "sf_opportunity_history",
                     (*_HISTORY_FIELDS, CURSOR, "StageName", "Amount", "ExpectedRevenue", "CloseDate", "Probability",
                      "ForecastCategory"),
                     (*HISTORY, required("system_modstamp", CURSOR, columns.timestamp), text("stage_name", "StageName"),
                      converted("amount", "Amount", columns.number),
                      converted("expected_revenue", "ExpectedRevenue", columns.number),
                      converted("close_date", "CloseDate", columns.date),
                      converted("probability", "Probability", columns.number),
                      text("forecast_category", "ForecastCategory"))),
    SalesforceObject("OpportunityFieldHistory", "sf_opportunity_field_history",
                     (*_HISTORY_FIELDS, "Field", "DataType", "OldValue", "NewValue"),
                     (*HISTORY, text("field", "Field"), text("data_type", "DataType"), text("old_value", "OldValue"),
                      text("new_value", "NewValue")), cursor="CreatedDate"),
)}
