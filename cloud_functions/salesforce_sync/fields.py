"""A Salesforce org's own fields: `describe` -> the custom fields chosen in settings -> typed warehouse columns.

Custom fields differ per org, so they are not in bigquery/schemas: each run of an object that has custom
fields configured (SALESFORCE_CUSTOM_FIELDS) describes it, maps each chosen field by its Salesforce type to a
BigQuery type, adds the columns its table lacks (Warehouse.add_columns, NULLABLE, on BigQuery and DuckDB)
and reads them with the declared standard fields, in the Bulk CSV and the REST path alike.

Column names are the API names lower-snake-cased like the standard columns, suffix kept
(`Industry_Segment__c` -> `industry_segment__c`, `RenewalDate__c` -> `renewal_date__c`): a `__c` or `__s`
suffix never collides with a standard column. What the org's fields are, and when one was first seen or
went missing, is kept in `sf_custom_fields` (one row per object and field), so a field removed in
Salesforce is reported in the run's details once, and its column stays (it stops filling). A field whose type
changed is written into its column when the column holds the new type (anything as STRING, an int as NUMERIC
or FLOAT64), the column is widened when it can be (INT64 to NUMERIC or FLOAT64, NUMERIC to FLOAT64: WIDENS),
and the run is refused naming the field otherwise (never a silent conversion).

Compound fields (address, location) cannot be read by Bulk API 2.0; their components (`Geo__Latitude__s`,
`Site__City__s`, ...) are ordinary fields, so choosing a compound reads its components.
Formula fields are left out unless opted in per field (SALESFORCE_FORMULA_FIELDS): their value changes
when what they compute from changes, without touching the record's SystemModstamp, so an incremental read
never sees it; an object with an opted-in formula field is synced in full every SALESFORCE_FORMULA_REFRESH_HOURS
(sync.formula_refresh_due).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import pyarrow as pa

from observability.logger import get_logger
from transform import columns
from warehouse import Warehouse
from warehouse.fresh import latest_rows
from warehouse.schemas import Column, table_spec

if TYPE_CHECKING:
    from cloud_functions.salesforce_sync.client import SalesforceClient
    from cloud_functions.salesforce_sync.records import SalesforceObject
    from config.settings import Settings

log = get_logger(__name__)
ALL = "*"
REGISTRY = "sf_custom_fields"
# describe type -> BigQuery type. Text-like types (picklists, ids, phones, ...) stay text as Salesforce
# sends them: a multipicklist is "a;b;c" (SPLIT(x, ';') in SQL), a time "10:30:00.000Z".
BIGQUERY_TYPES = {
    **dict.fromkeys(("string", "textarea", "picklist", "multipicklist", "combobox", "phone", "email", "url", "id",
                     "reference", "encryptedstring", "time"), "STRING"),
    "boolean": "BOOL", "int": "INT64", "long": "INT64", "double": "FLOAT64", "percent": "FLOAT64",
    "currency": "NUMERIC", "date": "DATE", "datetime": "TIMESTAMP",
}
UNREAD = {"base64": "a base64 field cannot be queried by Bulk API 2.0",
          "address": "a compound field: its components are read instead",
          "location": "a compound field: its components are read instead",
          "anyType": "no fixed type", "complexvalue": "no fixed type"}
CONVERSIONS: dict[str, Callable[[pa.Array], tuple[pa.Array, Any]]] = {
    "STRING": columns.text, "BOOL": columns.boolean, "INT64": columns.integer, "FLOAT64": columns.number,
    "NUMERIC": columns.number, "DATE": columns.date, "TIMESTAMP": columns.timestamp,
}
# A stored column of the key's type takes values of these types unchanged in meaning.
HOLDS = {"STRING": set(BIGQUERY_TYPES.values()), "FLOAT64": {"INT64", "NUMERIC"}, "NUMERIC": {"INT64"}}
# A stored column of the key's type is widened to these (ALTER COLUMN SET DATA TYPE): BigQuery changes a column only
# to a type its values coerce to, INT64 to NUMERIC, BIGNUMERIC or FLOAT64 and NUMERIC to BIGNUMERIC or FLOAT64
# (GoogleSQL conversion rules, "Coerce to"); DuckDB does the same. A value written before keeps its meaning.
WIDENS = {"INT64": {"NUMERIC", "FLOAT64"}, "NUMERIC": {"FLOAT64"}}


class SchemaChangeRefused(RuntimeError):
    """A field's type changed in Salesforce into one its stored column cannot hold."""


@dataclass(frozen=True)
class OrgField:
    """One custom field of an object as the run reads it."""

    name: str
    column: str
    salesforce_type: str
    bigquery_type: str
    label: str = ""
    formula: bool = False

    def as_column(self) -> Column:
        return Column(self.column, self.bigquery_type, "NULLABLE", f"{self.name} ({self.label}, {self.salesforce_type})")


def column_name(api_name: str) -> str:
    """The column of a custom field: `Industry_Segment__c` -> `industry_segment__c`, `ns__Score__c` -> `ns__score__c`."""
    base, _, suffix = api_name.rpartition("__")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).lower() + "__" + suffix.lower()


def chosen_fields(describe: Mapping[str, Any], wanted: Sequence[str], formulas: Sequence[str]
                  ) -> tuple[list[OrgField], dict[str, str]]:
    """The custom fields to read (wanted API names, or ALL; compounds stand for their components; formula
    fields only when in `formulas`), and each custom field left out with the reason."""
    wanted_set = set(wanted) | set(formulas)
    chosen: list[OrgField] = []
    left_out: dict[str, str] = {}
    for field in describe.get("fields", []):
        name = field["name"]
        if not field.get("custom"):
            continue
        if not (ALL in wanted_set or name in wanted_set or field.get("compoundFieldName") in wanted_set):
            continue
        kind = field.get("type", "")
        if field.get("calculated") and name not in formulas:
            left_out[name] = "formula field: changes without touching SystemModstamp (opt in: SALESFORCE_FORMULA_FIELDS)"
        elif kind in UNREAD or kind not in BIGQUERY_TYPES:
            left_out[name] = UNREAD.get(kind, f"unsupported type {kind}")
        else:
            chosen.append(OrgField(name, column_name(name), kind, BIGQUERY_TYPES[kind], field.get("label", ""),
                                   bool(field.get("calculated"))))
    return chosen, left_out


def missing_fields(describe: Mapping[str, Any], wanted: Sequence[str], formulas: Sequence[str]) -> list[str]:
    """The named custom fields (SALESFORCE_CUSTOM_FIELDS, SALESFORCE_FORMULA_FIELDS) the org's describe does not
    have: misspelt, or deleted from the org. Otherwise they would be read by no one and reported nowhere."""
    known = {f["name"] for f in describe.get("fields", [])} | {
        f["compoundFieldName"] for f in describe.get("fields", []) if f.get("compoundFieldName")}
    return sorted({name for name in [*wanted, *formulas] if name != ALL and name not in known})


def _check_names(fields: Sequence[OrgField], standard: Sequence[str], table: str) -> None:
    seen: dict[str, str] = {}
    for field in fields:
        if field.column in standard:
            raise SchemaChangeRefused(f"custom field {field.name} would be column {table}.{field.column}, a standard column")
        if field.column in seen:
            raise SchemaChangeRefused(f"custom fields {seen[field.column]} and {field.name} would both be column "
                                      f"{table}.{field.column}")
        seen[field.column] = field.name


def stored_type(field: OrgField, stored: Mapping[str, str], object_name: str, table: str) -> str:
    """The column type a field is written as: the stored column's when that holds the field's type, the field's own
    when the column is new or can be widened to it (the caller widens it); refused otherwise."""
    have = stored.get(field.column)
    if have is None or have == field.bigquery_type or field.bigquery_type in WIDENS.get(have, ()):
        return field.bigquery_type
    if field.bigquery_type in HOLDS.get(have, ()):
        return have
    raise SchemaChangeRefused(
        f"{object_name}.{field.name} is now {field.salesforce_type} ({field.bigquery_type}) in Salesforce, but column "
        f"{table}.{field.column} holds {have}: refusing to convert it (a column is widened only from INT64 to NUMERIC "
        f"or FLOAT64, or from NUMERIC to FLOAT64). Change the column by hand (ALTER TABLE ... ALTER COLUMN "
        f"{field.column} SET DATA TYPE ..., or rename it to keep its history) and run again")


@dataclass
class FieldChanges:
    """What a run learnt about an object's custom fields (for the run's details)."""

    fields: list[str]
    columns_added: list[str]
    columns_widened: dict[str, str]  # column -> "INT64 -> FLOAT64"
    fields_removed: list[str]
    left_out: dict[str, str]
    formula_fields: list[str]
    fields_missing: list[str]

    def details(self) -> dict[str, Any]:
        found = {"custom_fields": self.fields, "columns_added": self.columns_added,
                 "columns_widened": self.columns_widened, "fields_removed": self.fields_removed,
                 "fields_left_out": self.left_out, "fields_missing": self.fields_missing}
        return {"schema": {k: v for k, v in found.items() if v}}


def prepare_columns(object_name: str, table: str, standard: Sequence[str], describe: Mapping[str, Any],
                    warehouse: Warehouse, wanted: Sequence[str], formulas: Sequence[str]
                    ) -> tuple[list[OrgField], FieldChanges]:
    """The custom fields to read this run, their columns added to the table where missing or widened to a field's
    wider type, and what changed since the registry's last record (new fields recorded, removed ones marked and
    reported once). Every type change is checked before any column is touched."""
    chosen, left_out = chosen_fields(describe, wanted, formulas)
    _check_names(chosen, standard, table)
    stored = warehouse.table_columns(table)
    typed = [OrgField(f.name, f.column, f.salesforce_type, stored_type(f, stored, object_name, table), f.label, f.formula)
             for f in chosen]
    widened = {f.column: f"{stored[f.column]} -> {f.bigquery_type}" for f in typed
               if stored.get(f.column) not in (None, f.bigquery_type)}
    for field in typed:
        if field.column in widened:
            warehouse.set_column_type(table, field.as_column())
    added = warehouse.add_columns(table, [f.as_column() for f in typed])
    present = {f["name"] for f in describe.get("fields", [])}
    removed = _record(warehouse, object_name, table, typed, present)
    missing = missing_fields(describe, wanted, formulas)
    if missing:
        log.warning(f"custom fields named for {object_name} are not in the org's describe (misspelt, or deleted): "
                    f"{', '.join(missing)}", extra={"json_fields": {"object": object_name, "fields_missing": missing}})
    return typed, FieldChanges([f.name for f in typed], added, widened, removed, left_out,
                               [f.name for f in typed if f.formula], missing)


def _record(warehouse: Warehouse, object_name: str, table: str, fields: Sequence[OrgField], present: set[str]) -> list[str]:
    """Writes new, changed and newly removed fields into the registry; returns the fields newly gone from Salesforce."""
    known = _registered(warehouse, object_name)
    now = datetime.now(timezone.utc)
    rows = []
    for field in fields:
        before = known.get(field.name)
        if before and before["removed_at"] is None and (before["salesforce_type"], before["bigquery_type"]) == (
                field.salesforce_type, field.bigquery_type):
            continue
        rows.append({"object_name": object_name, "field_name": field.name, "table_name": table,
                     "column_name": field.column, "label": field.label, "salesforce_type": field.salesforce_type,
                     "bigquery_type": field.bigquery_type, "is_formula": field.formula, "changed_at": now,
                     "removed_at": None, **({"first_seen_at": now} if before is None else {})})
    removed = sorted(name for name, row in known.items() if row["removed_at"] is None and name not in present)
    rows += [{"object_name": object_name, "field_name": name, "changed_at": now, "removed_at": now} for name in removed]
    if rows:  # rows of different columns merge as separate groups: first_seen_at is written once
        warehouse.merge(REGISTRY, rows)
    return removed


def _registered(warehouse: Warehouse, object_name: str) -> dict[str, dict[str, Any]]:
    """The registry's rows of an object by field name, read without a query (a small table: tabledata.list on
    BigQuery, free, where a query bills 10 MB on every run of the object, push runs included), with what the fresh
    tier holds of it not yet folded (warehouse/fresh.py)."""
    return {r["field_name"]: r for r in latest_rows(warehouse, REGISTRY, {"object_name": object_name})}


def with_org_fields(obj: "SalesforceObject", client: "SalesforceClient", warehouse: Warehouse,
                    settings: "Settings") -> tuple["SalesforceObject", dict[str, Any]]:
    """The object reading the custom fields settings choose for it, and what changed (for the run's details);
    the object as declared, without a describe call, when none are chosen."""
    wanted = settings.salesforce_custom_fields.get(obj.name, [])
    formulas = settings.salesforce_formula_fields.get(obj.name, [])
    if not wanted and not formulas:
        return obj, {}
    custom, changes = prepare_columns(obj.name, obj.table, table_spec(obj.table).column_names,
                                      client.describe(obj.name), warehouse, wanted, formulas)
    return obj.with_fields(custom), changes.details()
