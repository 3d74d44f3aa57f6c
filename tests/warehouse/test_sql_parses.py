"""Every SQL statement the project generates parses as BigQuery SQL (and so can run on BigQuery).

Beyond these walks, every statement any test runs on DuckDB has been parsed with sqlglot's BigQuery
reader on its way (warehouse.base.to_duckdb_sql), which raises on what it cannot parse.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from observability.monitoring import ErrorPublisher
from pipeline.runner import run_sync
from tests.helpers import ListSource
from warehouse import DuckDBWarehouse
from warehouse.merge_sql import merge_sql
from warehouse.schemas import create_tables_sql, load_table_specs, view_sql_files

ROOT = Path(__file__).resolve().parents[2]


def parses_as_bigquery(sql: str) -> None:
    statements = sqlglot.parse(sql, read="bigquery", error_level=ErrorLevel.RAISE)
    assert statements and all(s is not None for s in statements), sql


class RecordingWarehouse(DuckDBWarehouse):
    """A DuckDB warehouse that remembers every BigQuery-dialect statement it was given."""

    seen: list[str]

    def query(self, sql, params=None):
        self.seen.append(sql)
        return super().query(sql, params)

    def execute(self, sql, params=None):
        self.seen.append(sql)
        return super().execute(sql, params)


def test_create_tables_sql_parses():
    """The generated DDL parses, one CREATE TABLE per table."""
    statements = sqlglot.parse(create_tables_sql(), read="bigquery", error_level=ErrorLevel.RAISE)
    assert len([s for s in statements if s is not None]) == len(load_table_specs())


@pytest.mark.parametrize("name", sorted(load_table_specs()))
def test_merge_statement_parses(name):
    """The MERGE of every table, with every column supplied, parses."""
    spec = load_table_specs()[name]
    parses_as_bigquery(merge_sql(spec, "sales_intelligence", f"sales_intelligence._staging_{name}",
                                 spec.column_names, spec.primary_key, spec.version))


def test_statements_of_a_run_parse(settings):
    """Every statement a whole sync run sends to the warehouse parses."""
    warehouse = RecordingWarehouse(settings.duckdb_path)
    warehouse.seen = []
    warehouse.ensure_schema()
    run_sync(ListSource(5, broken={1}).job(), warehouse=warehouse, publisher=ErrorPublisher(settings),
             settings=settings)
    assert warehouse.seen
    for sql in warehouse.seen:
        parses_as_bigquery(sql)


@pytest.mark.parametrize("path", [*view_sql_files(), *sorted((ROOT / "entity_resolution" / "sql").glob("*.sql"))],
                         ids=lambda p: p.name)
def test_sql_files_parse(path):
    """Views and entity-resolution SQL files parse."""
    from entity_resolution.match_tables import matched, scope_parts

    text = path.read_text()
    written = {**dict.fromkeys((m.table for m in matched()), "TRUE"), "hubspot_sequence_enrollments": "FALSE",
               "dialpad_calls": "(dialpad_calls.started_at >= TIMESTAMP '2027-06-15 00:00:00+00:00')"}
    for placeholder, value in {"dataset": "sales_intelligence", "work": "sales_intelligence", "target": "dialpad_calls",
                               "value_column": "external_number_e164", "value_type": "phone", "prefix": "",
                               **scope_parts("sales_intelligence", written)}.items():
        text = text.replace("${" + placeholder + "}", value)
    parses_as_bigquery(text)


def test_statements_of_an_entity_resolution_run_parse(settings):
    """Every statement an entity-resolution run sends (scope, candidates, updates, summary) parses."""
    from config.secrets import SecretStore
    from entity_resolution.matcher import ResolutionRequest, resolve_entities
    from pipeline.runtime import Runtime

    warehouse = RecordingWarehouse(settings.duckdb_path)
    warehouse.seen = []
    warehouse.ensure_schema()
    resolve_entities(ResolutionRequest(sync_type="full"), Runtime(settings, warehouse, ErrorPublisher(settings),
                                                             SecretStore(settings)))
    assert any(sql.lstrip().startswith("UPDATE") or "\nUPDATE" in sql for sql in warehouse.seen)
    for sql in warehouse.seen:
        parses_as_bigquery(sql)
