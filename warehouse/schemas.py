"""Table definitions read from bigquery/schemas: the single source of truth for every table.

`<table>.json` holds the columns (BigQuery JSON schema format); `tables.yaml` holds partitioning,
clustering, the primary key and the version column. From them come the BigQuery DDL
(create_tables.sql), the DuckDB DDL and the BigQuery client's SchemaField lists.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "bigquery" / "schemas"
VIEWS_DIR = Path(__file__).resolve().parent.parent / "bigquery" / "views"

_DUCKDB_TYPES = {
    "STRING": "VARCHAR", "BYTES": "BLOB", "INT64": "BIGINT", "INTEGER": "BIGINT", "FLOAT64": "DOUBLE",
    "FLOAT": "DOUBLE", "NUMERIC": "DECIMAL(38, 9)", "BIGNUMERIC": "DOUBLE", "BOOL": "BOOLEAN",
    "BOOLEAN": "BOOLEAN", "TIMESTAMP": "TIMESTAMPTZ", "DATETIME": "TIMESTAMP", "DATE": "DATE",
    "TIME": "TIME", "JSON": "JSON",
}


@dataclass(frozen=True)
class Column:
    """One column of a table, as in the BigQuery JSON schema."""

    name: str
    type: str
    mode: str = "NULLABLE"
    description: str = ""
    fields: tuple["Column", ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Column":
        return cls(name=data["name"], type=data["type"].upper(), mode=data.get("mode", "NULLABLE").upper(),
                   description=data.get("description", ""),
                   fields=tuple(cls.from_json(f) for f in data.get("fields", [])))

    @property
    def repeated(self) -> bool:
        return self.mode == "REPEATED"

    @classmethod
    def of_warehouse_type(cls, name: str, kind: str) -> "Column":
        """A NULLABLE (or REPEATED, for ARRAY<...>) column of a type as Warehouse.table_columns spells it."""
        repeated = kind.startswith("ARRAY<")
        return cls(name, kind[6:-1] if repeated else kind, "REPEATED" if repeated else "NULLABLE")

    def to_json(self) -> dict[str, Any]:
        """The column as a BigQuery JSON schema entry."""
        data: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode, "description": self.description}
        return {**data, "fields": [f.to_json() for f in self.fields]} if self.fields else data

    def bigquery_type(self) -> str:
        """The column's type in BigQuery DDL (ARRAY/STRUCT spelled out)."""
        if self.type in ("RECORD", "STRUCT"):
            inner = f"STRUCT<{', '.join(f'{f.name} {f.bigquery_type()}' for f in self.fields)}>"
        else:
            inner = self.type
        return f"ARRAY<{inner}>" if self.repeated else inner

    def duckdb_type(self) -> str:
        """The column's type in DuckDB DDL."""
        if self.type in ("RECORD", "STRUCT"):
            inner = f"STRUCT({', '.join(f'{f.name} {f.duckdb_type()}' for f in self.fields)})"
        else:
            inner = _DUCKDB_TYPES[self.type]
        return f"{inner}[]" if self.repeated else inner


@dataclass(frozen=True)
class TableSpec:
    """A table: its columns and how BigQuery stores it."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    version: str | None
    partition_field: str | None
    partition_type: str
    cluster: tuple[str, ...]
    # The partition column never changes for a key: MERGEs carry the batch's range of it (see tables.yaml).
    partition_immutable: bool = False
    # BigQuery deletes a partition this many days after its date (None: kept for ever).
    partition_expiration_days: int | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def partition_column(self) -> Column:
        """The column the table is partitioned on (KeyError for an unpartitioned table)."""
        if self.partition_field is None:
            raise KeyError(f"table {self.name} is not partitioned")
        return self.column(self.partition_field)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name} has no column {name!r}")

    def schema_json(self) -> list[dict[str, Any]]:
        """The columns as the BigQuery JSON schema file holds them (read once per process), then any
        run-time columns (with_columns) after them."""
        declared = _schema_file(self.name) if (SCHEMA_DIR / f"{self.name}.json").exists() else []
        if len(self.columns) == len(declared):
            return declared
        known = {c["name"] for c in declared}
        return declared + [c.to_json() for c in self.columns if c.name not in known]

    def with_columns(self, extra: Iterable[Column]) -> "TableSpec":
        """The table with run-time columns beyond its schema file (a Salesforce org's custom fields)."""
        known = set(self.column_names)
        return replace(self, columns=self.columns + tuple(c for c in extra if c.name not in known))

    def bigquery_ddl(self, dataset: str) -> str:
        """CREATE TABLE IF NOT EXISTS in BigQuery's dialect, with partitioning and clustering."""
        cols = ",\n".join(
            f"  {c.name} {c.bigquery_type()}{' NOT NULL' if c.mode == 'REQUIRED' else ''}"
            for c in self.columns)
        ddl = f"CREATE TABLE IF NOT EXISTS {dataset}.{self.name} (\n{cols}\n)"
        if self.partition_field:
            column_type = self.column(self.partition_field).type
            if column_type == "DATE":
                ddl += f"\nPARTITION BY DATE_TRUNC({self.partition_field}, {self.partition_type})"
            elif self.partition_type == "DAY":
                ddl += f"\nPARTITION BY DATE({self.partition_field})"
            else:
                ddl += f"\nPARTITION BY TIMESTAMP_TRUNC({self.partition_field}, {self.partition_type})"
        if self.cluster:
            ddl += f"\nCLUSTER BY {', '.join(self.cluster)}"
        description = self.description.replace('"', "'")
        expiration = f", partition_expiration_days = {self.partition_expiration_days}" \
            if self.partition_field and self.partition_expiration_days else ""
        return ddl + f'\nOPTIONS (description = "{description}"{expiration});'

    def bigquery_layout(self) -> str:
        """Partitioning, clustering and key in words (recorded as the DuckDB table's comment)."""
        partition = f"{self.partition_type}({self.partition_field})" if self.partition_field else "none"
        return (f"{self.description} | BigQuery partition: {partition}; cluster: {', '.join(self.cluster) or 'none'}; "
                f"primary key: {', '.join(self.primary_key)}")

    def duckdb_ddl(self, schema: str) -> str:
        """CREATE TABLE IF NOT EXISTS in DuckDB's dialect (no partitioning; NOT NULL kept)."""
        cols = ",\n".join(
            f"  {c.name} {c.duckdb_type()}{' NOT NULL' if c.mode == 'REQUIRED' else ''}" for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {schema}.{self.name} (\n{cols}\n);"


def _validate(spec: TableSpec) -> None:
    names = set(spec.column_names)
    for name in (*spec.primary_key, *spec.cluster, *filter(None, [spec.version, spec.partition_field])):
        if name not in names:
            raise ValueError(f"tables.yaml: {spec.name} names column {name!r}, which {spec.name}.json lacks")
    if not spec.primary_key:
        # A merge without a key would silently append: every table must declare one.
        raise ValueError(f"tables.yaml: {spec.name} has no primary_key")


@lru_cache(maxsize=None)
def _schema_file(name: str) -> list[dict[str, Any]]:
    return json.loads((SCHEMA_DIR / f"{name}.json").read_text())


@lru_cache(maxsize=1)
def load_table_specs() -> dict[str, TableSpec]:
    """Every table, by name, in tables.yaml order."""
    layout = yaml.safe_load((SCHEMA_DIR / "tables.yaml").read_text())
    specs: dict[str, TableSpec] = {}
    for name, meta in layout.items():
        columns = tuple(Column.from_json(c) for c in _schema_file(name))
        partition = meta.get("partition") or {}
        spec = TableSpec(
            name=name, description=meta.get("description", ""), columns=columns,
            primary_key=tuple(meta.get("primary_key", [])), version=meta.get("version"),
            partition_field=partition.get("field"), partition_type=partition.get("type", "DAY"),
            partition_immutable=bool(partition.get("immutable", False)),
            partition_expiration_days=partition.get("expiration_days"),
            cluster=tuple(meta.get("cluster", [])))
        _validate(spec)
        specs[name] = spec
    missing = {p.stem for p in SCHEMA_DIR.glob("*.json")} - set(specs)
    if missing:
        raise ValueError(f"schema files without an entry in tables.yaml: {sorted(missing)}")
    return specs


def table_spec(name: str) -> TableSpec:
    """One table's spec; KeyError naming the table when it is unknown."""
    specs = load_table_specs()
    if name not in specs:
        raise KeyError(f"unknown table {name!r}; tables are {', '.join(specs)}")
    return specs[name]


def view_sql_files() -> list[Path]:
    """The analyst views (BigQuery SQL files) in the order they can be created: those reading tables only, then
    those of derived/ (they read views), each in name order."""
    return sorted(VIEWS_DIR.glob("*.sql")) + sorted((VIEWS_DIR / "derived").glob("*.sql"))


VIEW_TEMPLATES_DIR = VIEWS_DIR.parent / "view_templates"


def activity_timeline_sql() -> str:
    """The text of bigquery/views/v_activity_timeline.sql: its template with every registered source's timeline.sql
    as a branch (config/sources.py), in the sources' order."""
    from config.sources import registered

    branches = {name: text for name, source in registered().items() if (text := source.timeline_sql())}
    parts = "".join(f"{name} AS (\n{_indented(_without_comment_header(text))}\n),\n" for name, text in branches.items())
    template = (VIEW_TEMPLATES_DIR / "v_activity_timeline.sql").read_text()
    header = ("-- Generated by `make schemas` from bigquery/view_templates/v_activity_timeline.sql and each source's "
              "timeline.sql:\n-- do not edit; edit those.\n")
    return header + (template.replace("${source_list}", ", ".join(branches))
                     .replace("${source_activities}", parts)
                     .replace("${source_union}", "\n  UNION ALL ".join(f"SELECT * FROM {name}" for name in branches)))


def _without_comment_header(text: str) -> str:
    lines = text.strip().splitlines()
    while lines and lines[0].startswith("--"):
        lines.pop(0)
    return "\n".join(lines)


def _indented(text: str) -> str:
    return "\n".join(f"  {line}" if line else line for line in text.splitlines())


def create_tables_sql(dataset: str = "sales_intelligence") -> str:
    """The whole create_tables.sql text for a dataset."""
    header = ("-- Generated by scripts/generate_create_tables.py from bigquery/schemas/*.json and tables.yaml.\n"
              "-- Do not edit: edit the schema files and run `make schemas`.\n\n")
    return header + "\n\n".join(spec.bigquery_ddl(dataset) for spec in load_table_specs().values()) + "\n"


_LEGACY_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def standard_type(field_type: str, mode: str | None = None) -> str:
    """A BigQuery type by its standard SQL name (the API still answers INTEGER, FLOAT, BOOLEAN)."""
    name = _LEGACY_TYPES.get(field_type.upper(), field_type.upper())
    return f"ARRAY<{name}>" if (mode or "").upper() == "REPEATED" else name
