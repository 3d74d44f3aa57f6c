"""A loopback Salesforce that simple-salesforce runs against unmodified (TLS, as the client insists).

Serves the fake company's CRM: Account, Contact, Lead (from sandbox.company) and Opportunity, Task,
Event, EmailMessage derived from them, with OpportunityHistory and OpportunityFieldHistory (each
opportunity's stage path, sandbox.opportunity_history; an edit of an opportunity's stage, amount or close
date adds rows, as Salesforce does). Speaks: SOAP login (/services/Soap/u/<v>), the OAuth token
endpoint, query/queryAll with nextRecordsUrl paging (2,000 rows a page, Sforce-Query-Options batchSize),
SOQL `SELECT f FROM O [WHERE C >= t] [ORDER BY C, Id] [LIMIT n]` with C the object's cursor (SystemModstamp,
CreatedDate for OpportunityFieldHistory, which has no SystemModstamp) and
`SELECT COUNT() ...`, `sobjects/<O>/describe` with the custom fields an admin added or removed between runs
(add_field, remove_field: every describe type, address and location compounds, formula fields), Bulk API 2.0 query jobs with CSV results paged by Sforce-Locator, /limits, the
Sforce-Limit-Info header on every data response, REQUEST_LIMIT_EXCEEDED once the daily budget is
spent, deleted rows (queryAll only), and the harness's latency and 429/5xx knobs. The shapes Salesforce sends
beside the usual ones (Bulk jobs that fail or abort, concurrency 403s, Z datetimes, malformed CSV rows, non-scalar
and oversized values) come from sandbox.salesforce_variety, from a seed, off unless asked for.

Records are generated from (seed, index), in cursor order; edits, deletions and new records live in an
overlay with fresh SystemModstamps, so a million base contacts cost no memory until served.

    python -m sandbox.salesforce --contacts 200000      # prints the URL and credentials, serves until ^C
"""
from __future__ import annotations

import argparse
import bisect
import csv
import io
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from config.settings import Settings
from sandbox.company import EPOCH, LOCAL_RUN_SIZE, STEP_SECONDS, CompanySize, FakeCompany, sf_id
from sandbox.opportunity_history import (
    MODIFIED_AFTER,
    PATHS,
    PeriodicRows,
    changed_fields,
    field_history_events,
    field_history_row,
    history_events,
    history_row,
    is_tracked_change,
    moment_time,
    opportunity_values,
    step_values,
)
from sandbox.salesforce_variety import JOB_ERRORS, Variety
from sandbox.server import Faults, Handler, Request, Response, RunningSandbox, SandboxServer, serve_until_interrupted

API_VERSION = "59.0"
DEFAULT_BATCH = 2000
ORG_ID = "00D000000000001AAA"
_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<cursor>\w+)\s*(?P<op>>=|>)\s*(?P<since>[0-9T:.+\-Z]+))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>[\w\s,]+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.IGNORECASE | re.DOTALL)


def sf_datetime(value: datetime) -> str:
    """Salesforce's JSON datetime form: 2024-01-01T00:00:00.000+0000."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")[:23] + "+0000"


def z_datetime(value: datetime) -> str:
    """The other form Bulk CSV results write a datetime in: 2024-01-01T00:00:00.000Z."""
    return sf_datetime(value)[:23] + "Z"


def parse_soql_datetime(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return sf_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _json_fields(record: dict[str, Any], fields: list[str], version: str) -> dict[str, Any]:
    """A record's fields as REST JSON: a relationship field nested in its parent's record (null without a parent)."""
    out: dict[str, Any] = {}
    for path in fields:
        relation, _, name = path.partition(".")
        if not name:
            out[path] = _json_value(record.get(path))
        elif record.get(f"{relation}Id"):
            parent = out.setdefault(relation, {"attributes": {
                "type": relation, "url": f"/services/data/v{version}/sobjects/{relation}/{record[f'{relation}Id']}"}})
            parent[name] = _json_value(record.get(path))
        else:
            out[relation] = None
    return out


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(_json_value(value))


class SalesforceError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return Response.json([{"message": self.message, "errorCode": self.code}], self.status)


# Standard fields whose describe type a generated value does not tell.
STANDARD_TYPES = {"Probability": "percent", "ExpectedRevenue": "currency", "StageName": "picklist",
                  "ForecastCategory": "picklist", "Field": "picklist", "DataType": "picklist", "OldValue": "anyType",
                  "NewValue": "anyType"}


def _describe_type(name: str, value: Any) -> str:
    """The describe type of a standard field, from its name and a generated value."""
    if name in STANDARD_TYPES:
        return STANDARD_TYPES[name]
    if name == "Id":
        return "id"
    if name.endswith("Id"):
        return "reference"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "currency" if name == "Amount" else "double"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    return {"Email": "email", "Phone": "phone", "MobilePhone": "phone", "Website": "url"}.get(name, "string")


# describe's `length` (characters) by field type: text fields declare theirs, others say 0. A textarea is taken
# at its longest (Long Text Area, 131,072), the others at the common 255 (ids and references 18).
FIELD_LENGTHS = {**dict.fromkeys(("string", "picklist", "multipicklist", "combobox", "phone", "email", "url",
                                  "encryptedstring", "anyType"), 255),
                 "id": 18, "reference": 18, "textarea": 131_072}


# The components of a custom compound field, by its type: (suffix, component type).
COMPOUND_PARTS = {"location": (("Latitude", "double"), ("Longitude", "double")),
                  "address": (("Street", "textarea"), ("City", "string"), ("PostalCode", "string"),
                              ("StateCode", "picklist"), ("CountryCode", "picklist"))}


def _component_values(values: Callable[[int], dict[str, Any]], part: str) -> Callable[[int], Any]:
    """The values of a compound field's component, from the compound's (component suffix -> value)."""
    return lambda index: values(index).get(part)


@dataclass
class ObjectData:
    """One sObject: a count of generated records plus an overlay of changed ones."""

    name: str
    prefix: str
    base_count: int
    make: Callable[[int], dict[str, Any]]
    overlay: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: int = 0
    stored: list[dict[str, Any]] | None = None  # the generated records, once preload() has run
    # Custom fields as describe lists them, and the generator of each one's values (None: empty until edited).
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_values: dict[str, Callable[[int], Any] | None] = field(default_factory=dict)
    # The field generated records are ordered by (their index order): SOQL may filter and order by it.
    cursor: str = "SystemModstamp"
    # The generated records from an index on, in order, where that is cheaper than one at a time (history rows).
    sequence: Callable[[int], Iterator[dict[str, Any]]] | None = None

    def preload(self) -> None:
        """Generates every base record now and keeps it, as an org holds its data before anyone queries."""
        self.stored = [record for _, record in self._generated_from(0)]

    def generate(self, index: int) -> dict[str, Any]:
        """A generated record with its custom fields' values."""
        return self._with_custom(index, self.make(index))

    def _with_custom(self, index: int, record: dict[str, Any]) -> dict[str, Any]:
        for name, values in self.custom_values.items():
            if values is not None:
                record[name] = values(index)
        return record

    def base(self, index: int) -> dict[str, Any]:
        return self.stored[index] if self.stored is not None else self.generate(index)

    def _generated_from(self, start: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, record) of the generated records from an index on."""
        if self.stored is not None or self.sequence is None:
            return ((index, self.base(index)) for index in range(start, self.base_count))
        return ((index, self._with_custom(index, record))
                for index, record in zip(range(start, self.base_count), self.sequence(start)))

    def describe(self, version: str) -> dict[str, Any]:
        """The object's describe: its standard fields (typed from a generated record), then its custom fields."""
        sample = self.make(0)
        standard = [{"name": name, "type": kind, "label": name, "custom": False, "calculated": False,
                     "compoundFieldName": None, "nillable": name != "Id", "length": FIELD_LENGTHS.get(kind, 0)}
                    for name, value in sample.items() if not name.startswith("true_")
                    for kind in (_describe_type(name, value),)]
        return {"name": self.name, "label": self.name, "custom": False, "keyPrefix": self.prefix,
                "urls": {"describe": f"/services/data/v{version}/sobjects/{self.name}/describe"},
                "fields": [*standard, *self.custom.values()]}

    def field_names(self) -> set[str]:
        return {f["name"] for f in self.describe(API_VERSION)["fields"]}

    def record(self, index: int) -> dict[str, Any]:
        return self.overlay.get(sf_id(self.prefix, index)) or self.base(index)

    def _first_base_index(self, since: datetime | None, strict: bool) -> int:
        """The first generated record at (or, strict, after) `since`: their cursors grow with the index."""
        if since is None:
            return 0
        find = bisect.bisect_right if strict else bisect.bisect_left
        return find(range(self.base_count), since, key=lambda index: self.base(index)[self.cursor])

    def _changed(self, since: datetime | None, strict: bool, include_deleted: bool) -> list[dict[str, Any]]:
        changed = sorted(self.overlay.values(), key=lambda r: (r[self.cursor], r["Id"]))
        if since is not None:
            stamps = [r[self.cursor] for r in changed]
            changed = changed[(bisect.bisect_right if strict else bisect.bisect_left)(stamps, since):]
        return [r for r in changed if include_deleted or not r.get("IsDeleted")]

    def select(self, since: datetime | None, strict: bool, include_deleted: bool) -> tuple[int, Iterator[dict[str, Any]]]:
        """How many records match, and the records in (cursor, Id) order, generated lazily."""
        start = self._first_base_index(since, strict)
        overlaid = {int(record_id[3:15]) for record_id in self.overlay}
        changed = self._changed(since, strict, include_deleted)
        base_total = max(0, self.base_count - start) - sum(1 for i in overlaid if start <= i < self.base_count)

        def rows() -> Iterator[dict[str, Any]]:
            for index, record in self._generated_from(start):
                if index not in overlaid:
                    yield record
            yield from changed

        return base_total + len(changed), rows()


@dataclass
class QueryCursor:
    """An open REST query (its query locator): the rows still to serve and the newest page served."""

    object_name: str
    fields: list[str]
    rows: Iterator[dict[str, Any]]
    total: int
    batch: int
    next_offset: int = 0
    pages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, offset: int) -> list[dict[str, Any]]:
        """The records from an offset: the next page, or the newest one again (a retried request)."""
        with self.lock:
            if offset not in self.pages:
                if offset != self.next_offset:
                    raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "query locator out of order")
                chunk = list(itertools.islice(self.rows, self.batch))
                self.pages = {offset: chunk}  # keep only the newest page, for a retried request
                self.next_offset = offset + len(chunk)
            return self.pages[offset]


# How a results request names a job's state in its 412 message (Bulk API 2.0, Get Results for a Query Job).
_STATUS_WORDS = {"UploadComplete": "UPLOAD_COMPLETE", "InProgress": "IN_PROGRESS", "Failed": "FAILED",
                 "Aborted": "ABORTED", "JobComplete": "JOB_COMPLETE"}


@dataclass
class BulkJob:
    """A Bulk API 2.0 query job: its rows, its state, and every results page served so far by its locator."""

    id: str
    object_name: str
    operation: str
    fields: list[str]
    rows: Iterator[dict[str, Any]]
    state: str = "UploadComplete"
    ends: str = "JobComplete"  # the state it reaches after its InProgress polls (Failed, Aborted: Variety)
    version: str = API_VERSION  # the API version it was created with: its results are read with the same
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    modified: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    polls: int = 0
    processed: int = 0
    next_locator: str = ""
    served: dict[str, tuple[list[dict[str, Any]], str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def poll(self, in_progress_polls: int) -> None:
        """A status poll: the job is InProgress for the first `in_progress_polls` of them, then it ends (JobComplete,
        or Failed or Aborted)."""
        self.polls += 1
        if self.state in ("UploadComplete", "InProgress"):
            state = "InProgress" if self.polls <= in_progress_polls else self.ends
            self.state, self.modified = state, self.modified if state == self.state else datetime.now(timezone.utc)

    def results(self, locator: str, max_records: int, version: str) -> tuple[list[dict[str, Any]], str]:
        """The records of a results page and the locator of the next one ("null" after the last)."""
        if version != self.version:
            raise SalesforceError(409, "INVALIDJOB", f"results of a job created with API {self.version} read with {version}")
        if self.state != "JobComplete":  # Salesforce answers 412 Precondition Failed, not 400
            raise SalesforceError(412, "JOB_NOT_COMPLETE", "can only download query results of successfully completed "
                                  f"bulk job with status: JOB_COMPLETE. Current status: {_STATUS_WORDS[self.state]}")
        with self.lock:
            if locator not in self.served:
                if locator != self.next_locator:
                    raise SalesforceError(400, "INVALID_LOCATOR", "locator out of order")
                chunk = list(itertools.islice(self.rows, max_records))
                next_locator = secrets.token_hex(4) if len(chunk) == max_records else "null"
                # Every page stays readable by its locator, as Salesforce keeps a job's results for days.
                self.served[locator] = (chunk, next_locator)
                self.next_locator = next_locator
                self.processed += len(chunk)
            return self.served[locator]

    def view(self, version: str) -> dict[str, Any]:
        """The job as its create and status calls answer it."""
        return {"id": self.id, "operation": self.operation, "object": self.object_name,
                "createdById": "005000000000000AAA", "createdDate": sf_datetime(self.created),
                "systemModstamp": sf_datetime(self.modified), "state": self.state, "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(self.version), "jobType": "V2Query", "lineEnding": "LF",
                "columnDelimiter": "COMMA", "numberRecordsProcessed": self.processed, "retries": 0,
                "totalProcessingTime": int((self.modified - self.created).total_seconds() * 1000),
                **({"errorMessage": JOB_ERRORS[self.state]} if self.state in JOB_ERRORS else {})}


DEFAULT_CREDENTIALS = {"username": "sync@sandbox.example", "password": "sandbox-password",
                       "security_token": "sandbox-token", "client_id": "sandbox-client-id",
                       "client_secret": "sandbox-client-secret", "refresh_token": "sandbox-refresh-token"}


class SalesforceState:
    """The org's data, changes, sessions, API budget and cursors; shared by the routes."""

    def __init__(self, company: FakeCompany, *, daily_limit: int = 1_000_000, variety: Variety | None = None):
        self.company = company
        self.variety = variety or Variety(seed=company.seed)
        size = company.size
        # Salesforce's own record of how opportunities moved, derived from each opportunity's index.
        self.history = PeriodicRows(size.accounts * 2, history_events())
        self.field_history = PeriodicRows(size.accounts * 2, field_history_events())
        self.objects = {o.name: o for o in (
            ObjectData("Account", "001", size.accounts, self._account),
            ObjectData("Contact", "003", size.contacts, self._contact),
            ObjectData("Lead", "00Q", size.leads, self._lead),
            ObjectData("Opportunity", "006", size.accounts * 2, self._opportunity),
            ObjectData("Task", "00T", size.contacts // 2, self._task),
            ObjectData("Event", "00U", size.contacts // 5, self._event),
            ObjectData("EmailMessage", "02s", size.contacts // 4, self._email_message),
            ObjectData("OpportunityHistory", "008", self.history.count,
                       lambda index: next(self._opportunity_history(index)), sequence=self._opportunity_history),
            ObjectData("OpportunityFieldHistory", "017", self.field_history.count,
                       lambda index: next(self._opportunity_field_history(index)),
                       cursor="CreatedDate", sequence=self._opportunity_field_history),
        )}
        self.daily_limit = daily_limit
        self.api_used = 0
        self.credentials = dict(DEFAULT_CREDENTIALS)
        self.sessions: set[str] = set()
        self.lock = threading.RLock()
        self.cursors: dict[str, QueryCursor] = {}
        self.jobs: dict[str, BulkJob] = {}
        self._last_stamp = EPOCH
        self.bulk_enabled = True
        self.bulk_in_progress_polls = 1  # status polls a Bulk job answers InProgress before JobComplete

    # -- generated records (Salesforce field names only; true_* keys are ground truth for tests)
    def _account(self, i: int) -> dict[str, Any]:
        return self.company.account(i)

    def _contact(self, i: int) -> dict[str, Any]:
        return self.company.contact(i)

    def _lead(self, i: int) -> dict[str, Any]:
        return self.company.lead(i)

    def _stamps(self, i: int) -> dict[str, Any]:
        created = EPOCH + timedelta(seconds=i * STEP_SECONDS)
        return {"CreatedDate": created, "LastModifiedDate": created + timedelta(hours=1),
                "SystemModstamp": created + timedelta(hours=1), "IsDeleted": False}

    def _opportunity(self, i: int) -> dict[str, Any]:
        values = opportunity_values(i)
        stamps = self._stamps(i)
        modified = stamps["CreatedDate"] + MODIFIED_AFTER  # after the last step of its path
        return {"Id": sf_id("006", i), "AccountId": sf_id("001", i // 2), "Name": f"Deal {i}", **values,
                "Type": "New Business", "IsClosed": values["StageName"].startswith("Closed"),
                "IsWon": values["StageName"] == "Closed Won", "OwnerId": sf_id("005", i % 7),
                **stamps, "LastModifiedDate": modified, "SystemModstamp": modified}

    def _opportunity_history(self, start: int) -> Iterator[dict[str, Any]]:
        """The OpportunityHistory rows from an index on: a step of each opportunity's path."""
        for index, i, moment, (residue, step) in self.history.iterate(start):
            yield history_row(self._opportunity(i), index, moment_time(moment), step_values(i, PATHS[residue][step]))

    def _opportunity_field_history(self, start: int) -> Iterator[dict[str, Any]]:
        """The OpportunityFieldHistory rows from an index on: each tracked field a step changed."""
        for index, i, moment, (residue, step, name) in self.field_history.iterate(start):
            path = PATHS[residue]
            old, new = (None, None) if name == "created" else (step_values(i, path[step - 1])[name],
                                                                step_values(i, path[step])[name])
            yield field_history_row(self._opportunity(i), index, moment_time(moment), name, old, new)

    def _task(self, i: int) -> dict[str, Any]:
        contact = self.company.contact(i * 2 % max(1, self.company.size.contacts))
        return {"Id": sf_id("00T", i), "Subject": ("Call", "Follow up", "Send quote")[i % 3],
                "WhoId": contact["Id"], "WhatId": contact["AccountId"], "AccountId": contact["AccountId"],
                "OwnerId": sf_id("005", i % 7), "Status": "Completed" if i % 4 else "Open",
                "ActivityDate": (EPOCH + timedelta(days=i % 365)).date(), "CallType": "Outbound" if i % 3 == 0 else None,
                "CallDurationInSeconds": 60 + i % 600 if i % 3 == 0 else None, **self._stamps(i)}

    def _event(self, i: int) -> dict[str, Any]:
        contact = self.company.contact(i * 5 % max(1, self.company.size.contacts))
        start = EPOCH + timedelta(days=i % 365, hours=9 + i % 8)
        return {"Id": sf_id("00U", i), "Subject": "Meeting", "WhoId": contact["Id"], "WhatId": contact["AccountId"],
                "AccountId": contact["AccountId"], "OwnerId": sf_id("005", i % 7), "StartDateTime": start,
                "EndDateTime": start + timedelta(minutes=30), **self._stamps(i)}

    def _email_message(self, i: int) -> dict[str, Any]:
        contact = self.company.contact(i * 4 % max(1, self.company.size.contacts))
        employee = self.company.employees()[i % 3]
        incoming = i % 2 == 0
        contact_address = contact["Email"] or contact["true_email"]
        return {"Id": sf_id("02s", i), "Subject": f"Re: proposal {i}", "ParentId": None,
                "RelatedToId": contact["AccountId"], "ActivityId": sf_id("00T", i),
                "FromAddress": contact_address if incoming else employee,
                "FromName": f"{contact['FirstName']} {contact['LastName']}" if incoming else "Sales",
                "ToAddress": employee if incoming else contact_address, "CcAddress": None,
                "MessageDate": EPOCH + timedelta(days=i % 365), "Incoming": incoming, "Status": "3",
                "CreatedById": sf_id("005", i % 7), **self._stamps(i)}

    # -- changes
    def _next_stamp(self) -> datetime:
        with self.lock:
            now = datetime.now(timezone.utc)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            self._last_stamp = max(now, self._last_stamp + timedelta(milliseconds=1))
            return self._last_stamp

    def edit(self, object_name: str, index: int, **fields: Any) -> dict[str, Any]:
        """Changes a record as a user would: its SystemModstamp moves to now. An opportunity's change of stage,
        amount, close date or probability adds its OpportunityHistory and OpportunityFieldHistory rows."""
        return self._save(object_name, self.objects[object_name].record(index), fields, created=False)

    def _save(self, object_name: str, before: dict[str, Any], fields: dict[str, Any], created: bool) -> dict[str, Any]:
        stamp = self._next_stamp()
        record = {**before, **fields, "LastModifiedDate": stamp, "SystemModstamp": stamp}
        self.objects[object_name].overlay[record["Id"]] = record
        if object_name == "Opportunity":
            self._track(None if created else before, record, stamp)
        return record

    def _track(self, before: dict[str, Any] | None, after: dict[str, Any], stamp: datetime) -> None:
        """What Salesforce writes itself when an opportunity is created or changed."""
        if before is not None and before.get("IsDeleted") != after.get("IsDeleted"):
            self._flag_history(after, stamp)
        if before is None or is_tracked_change(before, after):
            self._add_history("OpportunityHistory", lambda index: history_row(after, index, stamp, after))
        for name, old, new in changed_fields(before, after):
            self._add_history("OpportunityFieldHistory",
                              partial(field_history_row, after, when=stamp, field=name, old=old, new=new))

    def _add_history(self, object_name: str, row: Callable[[int], dict[str, Any]]) -> None:
        data = self.objects[object_name]
        record = row(data.base_count + data.created)
        data.created += 1
        data.overlay[record["Id"]] = record

    def _flag_history(self, opportunity: dict[str, Any], stamp: datetime) -> None:
        """An opportunity deleted (or restored) takes its history rows with it into the recycle bin (or out).

        The sandbox moves OpportunityHistory's SystemModstamp with it; OpportunityFieldHistory has none."""
        index = int(opportunity["Id"][3:15])
        for data, rows in ((self.objects["OpportunityHistory"], self.history),
                           (self.objects["OpportunityFieldHistory"], self.field_history)):
            base = [data.record(i) for i in rows.indexes_of(index)]
            own = [r for r in data.overlay.values() if r["OpportunityId"] == opportunity["Id"]]
            for record in {r["Id"]: r for r in (*base, *own)}.values():
                moved = {"SystemModstamp": stamp} if "SystemModstamp" in record else {}
                data.overlay[record["Id"]] = {**record, "IsDeleted": opportunity.get("IsDeleted"), **moved}

    def delete(self, object_name: str, index: int) -> dict[str, Any]:
        """Moves a record to the recycle bin: queryAll still returns it, IsDeleted true."""
        return self.edit(object_name, index, IsDeleted=True)

    def create(self, object_name: str, **fields: Any) -> dict[str, Any]:
        """Adds a new record (generated at the next index), stamped now."""
        data = self.objects[object_name]
        index = data.base_count + data.created
        data.created += 1
        return self._save(object_name, data.record(index), fields, created=True)

    def add_field(self, object_name: str, name: str, field_type: str, values: Callable[[int], Any] | None = None,
                  *, formula: bool = False, label: str | None = None) -> None:
        """Adds a custom field (as an admin would in Setup), or changes its type. `values(index)` fills the
        generated records; without it the field is empty until a record is edited. A compound type
        (address, location) adds its components too; `values` then gives a dict of component suffix -> value."""
        data = self.objects[object_name]
        base = name.removesuffix("__c")
        data.custom[name] = {"name": name, "type": field_type, "label": label or base.replace("_", " "), "custom": True,
                             "calculated": formula, "compoundFieldName": None, "nillable": True,
                             "length": FIELD_LENGTHS.get(field_type, 0)}
        for part, part_type in COMPOUND_PARTS.get(field_type, ()):
            component = f"{base}__{part}__s"
            data.custom[component] = {"name": component, "type": part_type, "label": f"{base} ({part})", "custom": True,
                                      "calculated": False, "compoundFieldName": name, "nillable": True,
                                      "length": FIELD_LENGTHS.get(part_type, 0)}
            data.custom_values[component] = None if values is None else _component_values(values, part)
        if field_type not in COMPOUND_PARTS:
            data.custom_values[name] = values

    def remove_field(self, object_name: str, name: str) -> None:
        """Deletes a custom field (and a compound's components): describe and SOQL no longer know it."""
        data = self.objects[object_name]
        for field_name in [n for n, f in data.custom.items() if n == name or f["compoundFieldName"] == name]:
            data.custom.pop(field_name)
            data.custom_values.pop(field_name, None)

    def current(self, object_name: str, include_deleted: bool = True) -> Iterator[dict[str, Any]]:
        """Every record of an object as it stands now."""
        return self.objects[object_name].select(None, False, include_deleted)[1]

    # -- budget
    def spend(self) -> None:
        with self.lock:
            if self.api_used >= self.daily_limit:
                raise SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.api_used += 1

    def limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.daily_limit}"}

    # -- SOQL
    def select(self, soql: str, include_deleted: bool) -> tuple[ObjectData, list[str] | None, int, Iterator[dict[str, Any]]]:
        match = _SOQL.match(soql)
        if not match:
            raise SalesforceError(400, "MALFORMED_QUERY", f"sandbox cannot run this SOQL: {soql[:200]}")
        data = self.objects.get(match["object"])
        if data is None:
            raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{match['object']}' is not supported.")
        fields = [f.strip() for f in match["fields"].split(",")]
        self._check_cursor(data, match["cursor"], match["order"])
        since = parse_soql_datetime(match["since"]) if match["since"] else None
        total, rows = data.select(since, match["op"] == ">", include_deleted)
        if match["limit"]:
            total = min(total, int(match["limit"]))
            rows = itertools.islice(rows, total)
        if fields == ["COUNT()"]:
            return data, None, total, rows
        sample = data.make(0) if data.base_count else {}
        known = data.field_names()
        unknown = [f for f in fields if sample and f not in known and not self._parent_field(data, f, sample)]
        if unknown:
            raise SalesforceError(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity '{data.name}'.")
        related = [f for f in fields if "." in f]
        if related:
            rows = ({**r, **{f: self._parent_value(r, f) for f in related}} for r in rows)
        return data, fields, total, rows

    @staticmethod
    def _check_cursor(data: ObjectData, where: str | None, order: str | None) -> None:
        """The sandbox filters and orders by the object's cursor only; a field the object lacks is refused as
        Salesforce refuses it (OpportunityFieldHistory has no SystemModstamp)."""
        for word in filter(None, (where, *(re.split(r"[\s,]+", order.strip()) if order else ()))):
            if word.upper() not in ("ASC", "ID") and word not in data.field_names():
                raise SalesforceError(400, "INVALID_FIELD", f"No such column '{word}' on entity '{data.name}'.")
        if where and where != data.cursor:
            raise SalesforceError(400, "MALFORMED_QUERY", f"sandbox filters {data.name} by {data.cursor} only: {where}")
        if order and not re.fullmatch(rf"{data.cursor}(\s+ASC)?(\s*,\s*Id(\s+ASC)?)?", order.strip(), re.I):
            raise SalesforceError(400, "MALFORMED_QUERY", f"sandbox orders by {data.cursor}, Id only: {order}")

    def _parent_field(self, data: ObjectData, field: str, sample: dict[str, Any]) -> bool:
        """A relationship field to a parent ("Account.BillingCountry" on Contact: AccountId, then the field)."""
        relation, _, name = field.partition(".")
        parent = self.objects.get(relation)
        return bool(name) and f"{relation}Id" in sample and parent is not None and name in parent.make(0)

    def _parent_value(self, record: dict[str, Any], field: str) -> Any:
        relation, _, name = field.partition(".")
        parent_id = record.get(f"{relation}Id")
        return self.objects[relation].record(int(parent_id[3:15])).get(name) if parent_id else None


_LOGIN_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>'
    '<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>'
    '<detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>'
    'Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault>'
    '</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>')


def _login_response(url: str, version: str, session: str) -> str:
    """The SOAP loginResponse simple-salesforce reads its session id and instance from."""
    return ('<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f'<metadataServerUrl>{url}/services/Soap/m/{version}/{ORG_ID}</metadataServerUrl>'
            '<passwordExpired>false</passwordExpired><sandbox>true</sandbox>'
            f'<serverUrl>{url}/services/Soap/u/{version}/{ORG_ID}</serverUrl>'
            f'<sessionId>{session}</sessionId><userId>005000000000000AAA</userId>'
            '</result></loginResponse></soapenv:Body></soapenv:Envelope>')


def _csv_page(fields: list[str], records: list[dict[str, Any]], variety: Variety) -> bytes:
    """A Bulk results page: a quoted header and rows, LF line endings, each row in the shape Variety gives it.

    A surrogate-escaped value ("\\udcff") goes out as the byte it stands for: a cell that is not UTF-8."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(fields)
    rows = ([v if v.__class__ is str else _csv_value(v) for v in map(record.get, fields)] for record in records)
    if variety.z_datetime_rate or variety.malformed_row_rate or variety.oversized_rate:
        rows = (variety.csv_cells(record, fields, row, z_datetime) for record, row in zip(records, rows))
    writer.writerows(rows)
    return text.getvalue().encode("utf-8", "surrogateescape")


class SalesforceApi:
    """The routes of Salesforce the pipeline uses, over one org's state: SOAP and OAuth login, then the data API
    (REST query paging, describe, limits, Bulk API 2.0 query jobs), each data call authorised by a session,
    counted against the daily budget and answered with the Sforce-Limit-Info header."""

    DATA_PREFIX = r"/services/data/v(?P<version>\d+\.\d)"

    def __init__(self, state: SalesforceState, server: SandboxServer):
        self.state, self.server = state, server
        server.route("POST", r"/services/Soap/u/(?P<version>[\d.]+)", "soap_login")(self.soap_login)
        server.route("POST", r"/services/oauth2/token", "oauth_token")(self.oauth_token)
        data_routes: tuple[tuple[str, str, str, Handler], ...] = (
            ("GET", r"/query/?", "query", self.query),
            ("GET", r"/queryAll/?", "queryAll", self.query_all),
            ("GET", r"/(?P<kind>query|queryAll)/(?P<cursor>01g\w+)-(?P<offset>\d+)", "query_more", self.query_more),
            ("GET", r"/sobjects/(?P<object>\w+)/describe/?", "describe", self.describe),
            ("GET", r"/limits/?", "limits", self.limits),
            ("POST", r"/jobs/query/?", "bulk_create", self.bulk_create),
            ("GET", r"/jobs/query/(?P<job>750\w+)", "bulk_status", self.bulk_status),
            ("GET", r"/jobs/query/(?P<job>750\w+)/results", "bulk_results", self.bulk_results))
        for method, pattern, name, handler in data_routes:
            server.route(method, self.DATA_PREFIX + pattern, name)(self._data_call(handler))

    def _data_call(self, handler: Handler) -> Handler:
        """A data API handler behind the session check and the API budget; errors as Salesforce answers them."""
        def answer(request: Request) -> Response:
            try:
                self._authorise(request)
                concurrency = self.state.variety.concurrency_limit()
                if concurrency:
                    raise SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", concurrency)
                self.state.spend()
                response = handler(request)
            except SalesforceError as error:
                response = error.response()
            response.headers.update(self.state.limit_header())
            return response
        return answer

    def _authorise(self, request: Request) -> None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if token not in self.state.sessions:
            raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _new_session(self) -> str:
        token = f"{ORG_ID}!{secrets.token_urlsafe(24)}"
        self.state.sessions.add(token)
        return token

    # -- login
    def soap_login(self, request: Request) -> Response:
        body = request.body.decode("utf-8")
        username = re.search(r"<n1:username>(.*?)</n1:username>", body, re.S)
        password = re.search(r"<n1:password>(.*?)</n1:password>", body, re.S)
        creds = self.state.credentials
        if not (username and password and username.group(1) == escape(creds["username"])
                and password.group(1) == escape(creds["password"] + creds["security_token"])):
            return Response(500, _LOGIN_FAULT, {"Content-Type": "text/xml"})
        xml = _login_response(self.server.url, request.params["version"], self._new_session())
        return Response(200, xml, {"Content-Type": "text/xml"})

    def oauth_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        creds = self.state.credentials
        ok = form.get("client_id") == creds["client_id"] and form.get("client_secret") == creds["client_secret"] and (
            (form.get("grant_type") == "refresh_token" and form.get("refresh_token") == creds["refresh_token"])
            or (form.get("grant_type") == "password" and form.get("username") == creds["username"]
                and form.get("password") == creds["password"] + creds["security_token"]))
        if not ok:
            return Response.json({"error": "invalid_grant", "error_description": "authentication failure"}, 400)
        url = self.server.url
        return Response.json({"access_token": self._new_session(), "instance_url": url, "token_type": "Bearer",
                              "scope": "api refresh_token",
                              "id": f"{url}/id/{ORG_ID}/005000000000000AAA",
                              "issued_at": str(int(time.time() * 1000)), "signature": "sandbox"})

    # -- REST query
    def query(self, request: Request) -> Response:
        return self._start_query(request, include_deleted=False)

    def query_all(self, request: Request) -> Response:
        return self._start_query(request, include_deleted=True)

    def query_more(self, request: Request) -> Response:
        return self._query_page(request.params["cursor"], int(request.params["offset"]),
                                request.params["kind"] == "queryAll", request.params["version"])

    def _start_query(self, request: Request, include_deleted: bool) -> Response:
        data, fields, total, rows = self.state.select(request.arg("q") or "", include_deleted)
        if fields is None:
            return Response.json({"totalSize": total, "done": True, "records": []})
        batch = re.search(r"batchSize=(\d+)", request.headers.get("Sforce-Query-Options", ""))
        batch_size = min(DEFAULT_BATCH, max(200, int(batch.group(1)))) if batch else DEFAULT_BATCH
        cursor_id = f"01g{secrets.token_hex(6)}"
        self.state.cursors[cursor_id] = QueryCursor(data.name, fields, rows, total, batch_size)
        return self._query_page(cursor_id, 0, include_deleted, request.params["version"])

    def _query_page(self, cursor_id: str, offset: int, include_deleted: bool, version: str) -> Response:
        cursor = self.state.cursors.get(cursor_id)
        if cursor is None:
            raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        records = cursor.page(offset)
        end = offset + len(records)
        done = end >= cursor.total
        kind = "queryAll" if include_deleted else "query"
        variety = self.state.variety
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done, "records": [
            variety.json_record(r, cursor.fields, {"attributes": {
                "type": cursor.object_name, "url": f"/services/data/v{version}/sobjects/{cursor.object_name}/{r['Id']}"},
                **_json_fields(r, cursor.fields, version)}) for r in records]}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/v{version}/{kind}/{cursor_id}-{end}"
        else:  # like Salesforce, the locator stays valid a while: a retried last page is answered again
            cursor.rows = iter(())
        return Response.json(body)

    # -- describe and limits
    def describe(self, request: Request) -> Response:
        data = self.state.objects.get(request.params["object"])
        if data is None:
            raise SalesforceError(404, "NOT_FOUND", f"The requested resource does not exist: {request.params['object']}")
        return Response.json(data.describe(request.params["version"]))

    def limits(self, request: Request) -> Response:
        state = self.state
        return Response.json({"DailyApiRequests": {"Max": state.daily_limit,
                                                   "Remaining": max(0, state.daily_limit - state.api_used)}})

    # -- Bulk API 2.0 query jobs
    def bulk_create(self, request: Request) -> Response:
        if not self.state.bulk_enabled:
            raise SalesforceError(400, "API_DISABLED_FOR_ORG", "Bulk API 2.0 is not enabled for this org")
        spec = request.json()
        operation = spec.get("operation")
        if operation not in ("query", "queryAll"):
            raise SalesforceError(400, "INVALIDJOB", f"unknown operation {operation!r}")
        data, fields, _, rows = self.state.select(spec.get("query", ""), operation == "queryAll")
        if fields is None:
            raise SalesforceError(400, "INVALIDJOB", "Bulk API 2.0 query does not support COUNT()")
        job = BulkJob(f"750{secrets.token_hex(7)}", data.name, operation, fields, rows,
                      ends=self.state.variety.job_end(), version=request.params["version"])
        self.state.jobs[job.id] = job
        return Response.json(job.view(request.params["version"]))

    def _job(self, job_id: str) -> BulkJob:
        job = self.state.jobs.get(job_id)
        if job is None:
            raise SalesforceError(404, "NOT_FOUND", f"job {job_id} not found")
        return job

    def bulk_status(self, request: Request) -> Response:
        job = self._job(request.params["job"])
        job.poll(self.state.bulk_in_progress_polls)
        return Response.json(job.view(request.params["version"]))

    def bulk_results(self, request: Request) -> Response:
        job = self._job(request.params["job"])
        records, next_locator = job.results(request.arg("locator") or "", int(request.arg("maxRecords") or 50_000),
                                            request.params["version"])
        return Response(200, _csv_page(job.fields, records, self.state.variety),
                        {"Content-Type": "text/csv; charset=UTF-8", "Sforce-Locator": next_locator,
                         "Sforce-NumberOfRecords": str(len(records))})


def build_server(state: SalesforceState, faults: Faults | None = None) -> SandboxServer:
    """The TLS server with every Salesforce route the pipeline uses."""
    server = SandboxServer("salesforce", tls=True, faults=faults)
    SalesforceApi(state, server)
    return server


# Custom field types the sample fields cycle through, with a value of record i for each.
SAMPLE_FIELD_TYPES: tuple[tuple[str, Callable[[int], Any]], ...] = (
    ("picklist", lambda i: ("SMB", "Mid-Market", "Enterprise")[i % 3]), ("string", lambda i: f"ref-{i:08d}"),
    ("boolean", lambda i: i % 3 == 0), ("int", lambda i: i % 5000), ("double", lambda i: (i % 1000) / 8),
    ("currency", lambda i: 1000 + (i % 997) * 12.5), ("percent", lambda i: float(i % 100)),
    ("date", lambda i: (EPOCH + timedelta(days=i % 900)).date()),
    ("datetime", lambda i: EPOCH + timedelta(minutes=i)), ("multipicklist", lambda i: "CRM;Analytics" if i % 2 else "CRM"),
)


def add_sample_fields(state: "SalesforceState", object_name: str, count: int) -> list[str]:
    """Adds `count` filled custom fields of the sample types (in turn) to an object; returns their API names."""
    names = []
    for n in range(count):
        kind, values = SAMPLE_FIELD_TYPES[n % len(SAMPLE_FIELD_TYPES)]
        names.append(f"Sample_{kind.title()}_{n}__c")
        state.add_field(object_name, names[-1], kind, values)
    return names


class SalesforceSandbox(RunningSandbox):
    """A started Salesforce fake: state + server. Use as a context manager."""

    def __init__(self, size: CompanySize | None = None, *, seed: int = 42, faults: Faults | None = None,
                 daily_limit: int = 1_000_000, preload: bool = False, contact_custom_fields: int = 0,
                 variety: Variety | None = None):
        self.state = SalesforceState(FakeCompany(seed, size), daily_limit=daily_limit,
                                     variety=variety or Variety(seed=seed))
        add_sample_fields(self.state, "Contact", contact_custom_fields)
        if preload:
            for data in self.state.objects.values():
                data.preload()
        self.server = build_server(self.state, faults)

    def client_environment(self) -> dict[str, str]:
        """The settings and secrets that point the pipeline at this sandbox (password login)."""
        creds = self.state.credentials
        return {"SALESFORCE_LOGIN_URL": self.url, "SALESFORCE_CA_BUNDLE": str(self.server.cert_path),
                "SALESFORCE_USERNAME": creds["username"], "SALESFORCE_PASSWORD": creds["password"],
                "SALESFORCE_SECURITY_TOKEN": creds["security_token"]}


def for_local_run(settings: Settings) -> SalesforceSandbox:
    """The sandbox `make run` starts (the registry's `sandbox`), not yet started."""
    return SalesforceSandbox(LOCAL_RUN_SIZE)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a loopback Salesforce until interrupted.")
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--leads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--preload", action="store_true",
                        help="generate every record before serving (about 1.2 GB per million contacts), so "
                             "requests measure the server rather than the fake company's generator")
    parser.add_argument("--rare-shapes", type=float, default=0.0,
                        help="rate (0-1) of each rare shape Salesforce sends: Bulk jobs that fail or abort, concurrency "
                             "403s, Z datetimes, malformed CSV rows, non-scalar and oversized values (sandbox.salesforce_variety)")
    parser.add_argument("--custom-fields", type=int, default=0,
                        help="filled custom fields on Contact (Sample_<Type>_<n>__c, cycling through the types)")
    args = parser.parse_args()
    size = CompanySize(accounts=args.accounts or max(1, args.contacts // 10), contacts=args.contacts,
                       leads=args.leads if args.leads is not None else args.contacts // 2)
    serve_until_interrupted(
        SalesforceSandbox(size, seed=args.seed, faults=Faults(latency_seconds=args.latency), preload=args.preload,
                          contact_custom_fields=args.custom_fields, variety=Variety(
                              seed=args.seed, bulk_end_rate=args.rare_shapes, concurrency_rate=args.rare_shapes,
                              z_datetime_rate=args.rare_shapes, malformed_row_rate=args.rare_shapes,
                              non_scalar_rate=args.rare_shapes, oversized_rate=args.rare_shapes)),
        f"Salesforce sandbox at {{url}} ({size.accounts} accounts, {size.contacts} contacts, {size.leads} leads)",
        "export SALESFORCE_LOGIN_URL={url}", "export SALESFORCE_CA_BUNDLE={cert}",
        "(credentials: DEFAULT_CREDENTIALS in sandbox/salesforce.py)")


if __name__ == "__main__":
    main()
