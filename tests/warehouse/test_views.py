"""The analyst views: every column described in the view's DDL (BigQuery keeps the descriptions), the
descriptions naming exactly the columns the view returns, and the DDL running on DuckDB as transpiled."""
from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from warehouse.duckdb_warehouse import to_duckdb_sql
from warehouse.schemas import view_sql_files


def described_columns(text: str) -> dict[str, str]:
    """Column name -> description of a CREATE VIEW statement's column list, parsed as BigQuery."""
    create = sqlglot.parse_one(text.replace("${dataset}", "sales_intelligence"), read="bigquery")
    assert isinstance(create, exp.Create) and create.kind == "VIEW"
    described = {}
    for column in create.this.expressions:
        options = [p for c in column.constraints for p in c.kind.expressions if p.name == "description"]
        described[column.name] = options[0].args["value"].this if options else ""
    return described


@pytest.mark.parametrize("path", view_sql_files(), ids=lambda p: p.stem)
def test_every_view_column_has_a_description(path, warehouse):
    """The view's column list names each column it returns, in order, each with a non-empty description."""
    described = described_columns(path.read_text())
    returned = list(warehouse.table_columns(path.stem))
    assert list(described) == returned
    assert all(described.values()), [c for c, d in described.items() if not d]


def test_descriptions_are_dropped_for_duckdb_only():
    """DuckDB gets the column list without OPTIONS (it has no column descriptions); BigQuery runs the file as written."""
    for path in view_sql_files():
        text = path.read_text().replace("${dataset}", "sales_intelligence")
        assert "OPTIONS(description=" in text and "OPTIONS" not in to_duckdb_sql(text)
