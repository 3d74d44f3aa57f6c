"""Column declarations: how a page of text cells becomes typed, normalised columns, one declaration per output.

A declaration takes the page (Arrow table of string cells, as Bulk CSV or flattened REST JSON gives them)
and the rows' phone regions (PhoneRegions), and returns its output arrays and, per row, the first reason the row cannot be
converted (None when it can). Salesforce's objects are lists of them (cloud_functions/salesforce_sync/records.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from transform import columns
from transform.email_normalizer import normalize_email, web_domain
from transform.values import to_float, to_int, to_str

Output = tuple[dict[str, pa.Array], "pa.Array | None"]


@dataclass(frozen=True)
class PhoneRegions:
    """Where a page's phone numbers are read: each row's region (its record's country, else the org's), and the
    org's own region (DEFAULT_PHONE_REGION), tried for a number invalid in its row's."""

    rows: pa.Array
    fallback: str | None = None


# A column declaration: (page of string cells, the rows' phone regions) -> output arrays and per-row errors.
Declaration = Callable[[pa.Table, PhoneRegions], Output]


def cells_of(page: pa.Table, field: str) -> pa.Array:
    """A field's cells as one array."""
    return page.column(field).combine_chunks()


def _missing(values: pa.Array, reason: str) -> pa.Array:
    return pc.if_else(pc.is_null(values), pa.scalar(reason), pa.scalar(None, pa.string()))


def required(name: str, field: str, convert: Callable[[pa.Array], tuple[pa.Array, Any]] = columns.text) -> Declaration:
    """A column every record must have: a record without it is rejected as "missing <field>"."""
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        values, errors = convert(cells_of(page, field))
        return {name: values}, columns.first_error([errors, _missing(values, f"missing {field}")])
    return declared


def converted(name: str, field: str, convert: Callable[[pa.Array], tuple[pa.Array, Any]]) -> Declaration:
    """One field through one of the transform.columns conversions."""
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        values, errors = convert(cells_of(page, field))
        return {name: values}, errors
    return declared


def text(name: str, field: str) -> Declaration:
    return converted(name, field, columns.text)


def flag(name: str, field: str, default: bool | None = None) -> Declaration:
    """A boolean; `default` stands in for a missing value when given."""
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        values, errors = columns.boolean(cells_of(page, field))
        return {name: values if default is None else pc.fill_null(values, default)}, errors
    return declared


def mapped(field: str, outputs: Mapping[str, pa.DataType], fn: Callable[[str], tuple]) -> Declaration:
    """fn(value) for each distinct value of a field, giving one value per output column."""
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        arrays, errors = columns.per_value(cells_of(page, field), fn, list(outputs.values()))
        return dict(zip(outputs, arrays)), errors
    return declared


def number(name: str, field: str) -> Declaration:
    return mapped(field, {name: pa.float64()}, lambda v: (to_float(v),))


def integer(name: str, field: str) -> Declaration:
    return mapped(field, {name: pa.int64()}, lambda v: (to_int(v),))


def constant(name: str, value: str) -> Declaration:
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        return {name: pa.array([value] * page.num_rows, pa.string())}, None
    return declared


def email(field: str) -> Declaration:
    """The raw email beside its normalised form and domain."""
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        raw, errors = columns.text(cells_of(page, field))
        (normalised, domain), _ = columns.emails(raw)
        return {"email_raw": raw, "email": normalised, "domain": domain}, errors
    return declared


def normalised_email(name: str, field: str) -> Declaration:
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        raw, errors = columns.text(cells_of(page, field))
        return {name: columns.emails(raw)[0][0]}, errors
    return declared


def phone(prefix: str, field: str, extension: bool = False) -> Declaration:
    """The raw phone beside its E.164 form (and extension), read in the row's region, else in the org's."""
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        raw, errors = columns.text(cells_of(page, field))
        (e164, ext), _ = columns.phones(raw, region.rows, fallback=region.fallback)
        return {prefix: raw, f"{prefix}_e164": e164, **({f"{prefix}_extension": ext} if extension else {})}, errors
    return declared


def website(field: str) -> Declaration:
    return mapped(field, {"website": pa.string(), "domain": pa.string()}, lambda v: (to_str(v), web_domain(to_str(v))))


def address_list(*values: Any) -> list[str]:
    """Normalised addresses of EmailMessage address fields ("a@x.com; b@y.com"), in order, once each."""
    seen: dict[str, None] = {}
    for value in values:
        for part in re.split(r"[;,]", to_str(value) or ""):
            email = normalize_email(part)
            if email:
                seen.setdefault(email)
    return list(seen)


def addresses(name: str, *fields: str) -> Declaration:
    """Every normalised address of several address fields, per record."""
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        cells = zip(*(cells_of(page, f).to_pylist() for f in fields))
        return {name: pa.array([address_list(*row) for row in cells], pa.list_(pa.string()))}, None
    return declared


def start_of_day(name: str, field: str) -> Declaration:
    """A date field as the timestamp of its midnight, UTC."""
    def declared(page: pa.Table, region: PhoneRegions) -> Output:
        values, errors = columns.date(cells_of(page, field))
        return {name: values.cast(columns.TIMESTAMP)}, errors
    return declared
