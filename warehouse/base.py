"""The warehouse: one small interface, BigQuery in the cloud and DuckDB on a laptop.

SQL is written once, in BigQuery's dialect, with tables named `<dataset>.<table>` and values as
`@name` query parameters. BigQuery runs it as is; DuckDB runs it transpiled by sqlglot, with the
dataset as a DuckDB schema, so the same text serves both.

merge() stages a batch and MERGEs it into the target on the table's primary key. Duplicates inside the
staged batch are resolved first (highest version wins, then the later row), and a replayed older
version never overwrites a newer row. Only the columns the rows supply are written, so a sync never
clears the columns entity resolution owns.
"""
from __future__ import annotations

import abc
import contextlib
import uuid
from typing import Any, Iterator, Mapping, Protocol, Sequence

from warehouse.job_ledger import JobLedger
from warehouse.merge_sql import merge_columns, merge_target, row_groups, stamp_ingested_at
from warehouse.schemas import Column, TableSpec, load_table_specs, table_spec, view_sql_files
from warehouse.sql_text import quoted


class MergeBatcher(Protocol):
    """A run's way to its tables: pages are added, merged when flushed; only flushed rows are in the tables."""

    flush_rows: int

    @property
    def pending_rows(self) -> int:
        """Rows added and not merged yet."""

    def add(self, table: str, rows: Any, batch_id: str) -> int:
        """Adds a batch (row dicts or an Arrow table) for table; returns its row count."""

    def flush(self) -> int:
        """Merges every batch added since the last flush; returns the rows merged."""

    def discard(self) -> None:
        """Forgets what was added and not merged (a failed run), leaving nothing behind."""


class ImmediateMerges:
    """Every batch merged as it is added (DuckDB: a MERGE per page costs nothing and keeps memory flat)."""

    flush_rows = 0
    pending_rows = 0

    def __init__(self, warehouse: "Warehouse"):
        self._warehouse = warehouse

    def add(self, table: str, rows: Any, batch_id: str) -> int:
        return self._warehouse.merge(table, rows, batch_id=batch_id)

    def flush(self) -> int:
        return 0

    def discard(self) -> None:
        pass


class Warehouse(abc.ABC):
    """What the pipeline needs of a warehouse."""

    dataset: str
    # Where a job's scratch tables go (CREATE OR REPLACE TABLE <work_dataset>._x): on BigQuery the scratch
    # dataset, whose tables expire by default; an in-memory database on DuckDB.
    work_dataset: str

    @abc.abstractmethod
    def ensure_schema(self, fresh_tier: bool = True) -> list[str]:
        """Creates what is missing (datasets, tables, views, columns, and with fresh_tier the fresh tier of the
        tables pushes write); returns what it created (`table.column` for a column)."""

    def _create_views(self, existing: set[str]) -> list[str]:
        """Creates or replaces every view (views over views last); returns the ones that did not exist."""
        for path in view_sql_files():
            self.execute(path.read_text().replace("${dataset}", self.dataset))
        return [path.stem for path in view_sql_files() if path.stem not in existing]

    def ensure_fresh_tier(self) -> list[str]:
        """Creates the fresh tier of every table pushes write (warehouse/fresh.py: `<table>_fresh`, `<table>_live`)
        that is missing, and brings an existing one's columns to its table's; returns what it created."""
        from warehouse.fresh import ensure_fresh, fresh_name, live_name, pushed_tables

        existing = self.list_tables()
        ensured: dict[str, frozenset[str]] = {}
        for table in pushed_tables():
            ensure_fresh(self, table, ensured)
        return [name for table in pushed_tables() for name in (fresh_name(table), live_name(table))
                if name not in existing]

    @abc.abstractmethod
    def list_tables(self) -> set[str]:
        """Names of the tables and views in the dataset."""

    def merge(self, table: str, rows: Sequence[Mapping[str, Any]], *, key: Sequence[str] | None = None,
              version: str | None = None, batch_id: str | None = None) -> int:
        """Stages rows and MERGEs them into table on key; returns the number of rows staged.

        batch_id names the batch within its run (callers put the run id in it): on BigQuery a retry of
        the same batch with the same rows is recognised and not merged twice. Without one, the batch
        is new every time.

        Rows that supply different columns are merged in separate groups, so a column a row leaves out
        is never written for that row (a Gmail label change leaves the stored body alone). An Arrow
        table supplies its columns for every row.
        """
        batch_id = batch_id or f"adhoc_{uuid.uuid4().hex}"
        if hasattr(rows, "column_names"):  # an Arrow table
            return self._merge_arrow(table, rows, key=key, version=version, batch_id=batch_id)
        return sum(self._merge_group(table, group, key=key, version=version, batch_id=group_id)
                   for group_id, group in row_groups(rows, batch_id))

    def merge_batcher(self, flush_rows: int) -> "MergeBatcher":
        """Where a run's pages go before they are merged: here, straight into merge() (a MERGE costs nothing)."""
        return ImmediateMerges(self)

    def append(self, table: str, rows: Sequence[Mapping[str, Any]], *, batch_id: str) -> int:
        """Adds rows whose keys the table does not hold yet (a run's opening record); returns how many.

        Here a MERGE; on BigQuery a load job (free, no DML) whose id is the batch's, so a retry of the same
        batch appends nothing twice.
        """
        return self.merge(table, rows, batch_id=batch_id)

    def _merge_arrow(self, table: str, rows: Any, *, key: Sequence[str] | None, version: str | None,
                     batch_id: str) -> int:
        """Stages an Arrow table's rows and MERGEs them into table (by default as row dicts)."""
        return self._merge_group(table, rows.to_pylist(), key=key, version=version, batch_id=batch_id)

    @abc.abstractmethod
    def _merge_group(self, table: str, rows: Sequence[Mapping[str, Any]], *, key: Sequence[str] | None,
                     version: str | None, batch_id: str) -> int:
        """Stages rows that all supply the same columns and MERGEs them into table."""

    @abc.abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Runs a BigQuery-dialect SELECT and returns its rows as dicts."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int | None:
        """Runs a BigQuery-dialect statement (DML, DDL, script); returns affected rows when known."""

    def spec_of(self, table: str) -> TableSpec:
        """The table's spec: its schema file's columns, then the run-time columns add_columns declared."""
        from warehouse.fresh import base_name, fresh_spec

        if base_name(table) is not None:  # a fresh table: its table's columns (warehouse/fresh.py)
            return fresh_spec(self.spec_of(base_name(table)))  # type: ignore[arg-type]
        declared = self.__dict__.get("_run_time_columns", {}).get(table)
        return table_spec(table).with_columns(declared.values()) if declared else table_spec(table)

    def add_columns(self, table: str, columns: Sequence[Column]) -> list[str]:
        """Adds the columns the table lacks (NULLABLE: existing rows read NULL) and lets merge() write all of
        them from now on: columns beyond the schema file that a sync learns at run time (a Salesforce org's
        custom fields). Returns the names it added; a column the table has keeps its type (see table_columns)."""
        present = self.table_columns(table)
        missing = [Column(c.name, c.type, "NULLABLE", c.description, c.fields) for c in columns if c.name not in present]
        if missing:
            self._add_table_columns(table, missing)
        self.__dict__.setdefault("_run_time_columns", {}).setdefault(table, {}).update({c.name: c for c in columns})
        return [c.name for c in missing]

    def create_table(self, spec: TableSpec) -> None:
        """Creates the table of spec when it is missing (DDL: free on BigQuery)."""
        raise NotImplementedError(f"{type(self).__name__} cannot create tables")

    def read_rows(self, table: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every row of a (small) table, typed as query() returns them, without a query: on BigQuery
        tabledata.list, which bills nothing (a query bills at least 10 MB)."""
        names = ", ".join(columns) if columns else "*"
        return self.query(f"SELECT {names} FROM {quoted(self.dataset, table)}")

    def clear_rows(self, table: str) -> None:
        """Empties a table (on BigQuery a WRITE_TRUNCATE load of no rows: free, where DELETE bills 10 MB)."""
        self.execute(f"DELETE FROM {quoted(self.dataset, table)} WHERE TRUE")

    @abc.abstractmethod
    def table_columns(self, table: str) -> dict[str, str]:
        """The table's columns as they are in the warehouse: name -> BigQuery type (INT64, FLOAT64, NUMERIC,
        BOOL, STRING, DATE, TIMESTAMP, ...; ARRAY<...> when repeated)."""

    @abc.abstractmethod
    def _add_table_columns(self, table: str, columns: Sequence[Column]) -> None:
        """ALTER TABLE ... ADD COLUMN for each of columns (all NULLABLE)."""

    def set_column_type(self, table: str, column: Column) -> None:
        """ALTER COLUMN ... SET DATA TYPE column.type; BigQuery accepts only a type the values coerce to (INT64 to
        NUMERIC, BIGNUMERIC or FLOAT64; NUMERIC to BIGNUMERIC or FLOAT64): the caller checks that."""
        self.execute(f"ALTER TABLE {quoted(self.dataset, table)} ALTER COLUMN {column.name} "
                     f"SET DATA TYPE {column.type}")

    @contextlib.contextmanager
    def memory_for_statements(self, limit: str | None) -> Iterator[None]:
        """Statements in the block may use up to limit of memory (DuckDB; BigQuery sizes its own slots)."""
        yield

    def drop_work_table(self, name: str) -> None:
        """Drops a scratch table of the work dataset if it is there."""
        self.execute(f"DROP TABLE IF EXISTS {quoted(self.work_dataset, name)}")

    ledger: JobLedger  # every statement and load this warehouse ran, per run (what each run cost)

    def close(self) -> None:  # noqa: B027 - an optional hook: a warehouse holding no connection keeps it
        """Releases connections."""

    def table_counts(self) -> dict[str, int]:
        """Row count of every table."""
        return {name: self.query(f"SELECT COUNT(*) AS n FROM {quoted(self.dataset, name)}")[0]["n"]
                for name in load_table_specs()}

    def _merge_plan(self, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str] | None,
                    version: str | None) -> tuple[TableSpec, list[dict[str, Any]], list[str], tuple[str, ...], str | None]:
        spec, key, version = merge_target(self.spec_of(table), key, version)
        stamped = stamp_ingested_at(spec, rows)
        columns = merge_columns(spec, stamped, key)
        if version not in columns:
            version = None
        return spec, stamped, columns, key, version
