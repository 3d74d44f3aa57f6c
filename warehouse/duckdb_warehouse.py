"""DuckDB: the embedded warehouse, running the BigQuery SQL transpiled by sqlglot."""
from __future__ import annotations

import contextlib
import json
import threading
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from warehouse.base import Warehouse
from warehouse.job_ledger import JobLedger, statement_kind, statement_target
from warehouse.merge_sql import POSITION_COLUMN, batch_partitions, check_supplied, merge_sql, merge_target, prunes
from warehouse.schemas import Column, TableSpec, load_table_specs
from warehouse.sql_text import parameters_used, quoted


@lru_cache(maxsize=512)
def to_duckdb_sql(sql: str) -> str:
    """BigQuery SQL transpiled to DuckDB SQL (cached: the same statements run many times)."""
    import sqlglot

    statements = sqlglot.transpile(sql, read="bigquery", write="duckdb")
    return ";\n".join(statements)


def _arrow_type(column: Column) -> Any:
    import pyarrow as pa

    if column.type in ("RECORD", "STRUCT"):
        inner = pa.struct([pa.field(f.name, _arrow_type(f)) for f in column.fields])
    else:
        inner = {
            "STRING": pa.string(), "BYTES": pa.binary(), "INT64": pa.int64(), "INTEGER": pa.int64(),
            "FLOAT64": pa.float64(), "FLOAT": pa.float64(), "NUMERIC": pa.float64(), "BIGNUMERIC": pa.float64(),
            "BOOL": pa.bool_(), "BOOLEAN": pa.bool_(), "TIMESTAMP": pa.timestamp("us", tz="UTC"),
            "DATETIME": pa.timestamp("us"), "DATE": pa.date32(), "TIME": pa.time64("us"), "JSON": pa.string(),
        }[column.type]
    return pa.list_(inner) if column.repeated else inner


def _arrow_value(column: Column, value: Any) -> Any:
    if value is None:
        return None
    if column.type == "JSON" and not isinstance(value, str):
        return json.dumps(value, default=str)
    if column.type in ("NUMERIC", "BIGNUMERIC") and isinstance(value, (Decimal, str)):
        return float(value)
    return value


_BIGQUERY_OF_DUCKDB = {"VARCHAR": "STRING", "BLOB": "BYTES", "BIGINT": "INT64", "INTEGER": "INT64", "DOUBLE": "FLOAT64",
                       "BOOLEAN": "BOOL", "TIMESTAMP WITH TIME ZONE": "TIMESTAMP", "TIMESTAMP": "DATETIME",
                       "DATE": "DATE", "TIME": "TIME", "JSON": "JSON"}


def _bigquery_type_of_duckdb(duck_type: str) -> str:
    """The BigQuery type a DuckDB column stands for (the inverse of Column.duckdb_type)."""
    if duck_type.endswith("[]"):
        return f"ARRAY<{_bigquery_type_of_duckdb(duck_type[:-2])}>"
    if duck_type.startswith("DECIMAL"):
        return "NUMERIC"
    return _BIGQUERY_OF_DUCKDB.get(duck_type, "STRUCT" if duck_type.startswith("STRUCT") else duck_type)


def _needs_shaping(duck_type: Any) -> bool:
    text = str(duck_type)
    return "JSON" in text or "[]" in text


def _shaped(value: Any, duck_type: Any) -> Any:
    """A DuckDB value as BigQuery's client gives it: JSON parsed, a NULL repeated field as []."""
    kind = duck_type.id
    if kind == "list":
        child = duck_type.children[0][1]
        return [] if value is None else [_shaped(v, child) for v in value]
    if kind == "struct":
        return None if value is None else {name: _shaped(value[name], t) for name, t in duck_type.children}
    if str(duck_type) == "JSON" and isinstance(value, str):
        return json.loads(value)
    return value


def _shaped_row(row: tuple[Any, ...], shaped: Sequence[tuple[int, Any]]) -> tuple[Any, ...]:
    values = list(row)
    for index, duck_type in shaped:
        values[index] = _shaped(values[index], duck_type)
    return tuple(values)


class DuckDBWarehouse(Warehouse):
    """The embedded warehouse: one DuckDB file, the dataset as a schema, BigQuery SQL via sqlglot."""

    def __init__(self, path: str | Path, dataset: str = "sales_intelligence", memory_limit: str | None = None):
        import duckdb

        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.dataset = dataset
        self.work_dataset = "_work"
        self.ledger = JobLedger()
        self._lock = threading.RLock()
        self._con = duckdb.connect(str(path))
        self._con.execute("SET TimeZone = 'UTC'")
        # Row order of a table means nothing here (every read says ORDER BY when it matters); dropping
        # it lets DuckDB write CREATE TABLE AS and UPDATE results in parallel.
        self._con.execute("SET preserve_insertion_order = false")
        # DuckDB checkpoints each 16 MB of WAL by default, and each checkpoint rewrites the table's last, partly
        # filled row group: a full load's pages (3-8 MB of WAL each) rewrote it every few pages. Committed rows
        # are in the WAL either way: a killed run loses nothing, and the next open replays up to 128 MB of WAL.
        # Measured on a 200,000-contact full load: the inserts 1.5 s -> 1.1 s with the final checkpoint;
        # 1,000,000 contacts with 20 custom fields 69 s -> 53 s, same peak.
        self._con.execute("SET checkpoint_threshold = '128MB'")
        self._con.execute(f"ATTACH ':memory:' AS {self.work_dataset}")
        if memory_limit:
            self._con.execute(f"SET memory_limit = '{memory_limit}'")

    @contextlib.contextmanager
    def memory_for_statements(self, limit: str | None) -> Iterator[None]:
        # Entity resolution's candidate step holds many hash tables at once (they cannot spill): the low limit
        # that keeps a long sync's memory flat is raised for its block only.
        if not limit:
            yield
            return
        with self._lock:
            (before,) = self._con.execute("SELECT current_setting('memory_limit')").fetchall()[0]
            self._con.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            with self._lock:
                self._con.execute(f"SET memory_limit = '{before}'")

    def list_tables(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [self.dataset]).fetchall()}

    def ensure_schema(self, fresh_tier: bool = True) -> list[str]:
        existing = self.list_tables()
        with self._lock:
            self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {self.dataset}")
            created = []
            for spec in load_table_specs().values():
                if spec.name in existing:
                    created += [f"{spec.name}.{c}" for c in self._add_missing_columns(spec)]
                    continue
                self._con.execute(spec.duckdb_ddl(self.dataset))
                self._con.execute(f"COMMENT ON TABLE {self.dataset}.{spec.name} IS "
                                  f"'{spec.bigquery_layout().replace(chr(39), chr(39) * 2)}'")
                created.append(spec.name)
            created += self._create_views(existing)
        return created + (self.ensure_fresh_tier() if fresh_tier else [])

    def _add_missing_columns(self, spec: TableSpec) -> list[str]:
        """Adds the schema file's columns that the existing table lacks (NULL in existing rows); their names."""
        have = {r[0] for r in self._con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [self.dataset, spec.name]).fetchall()}
        missing = [c for c in spec.columns if c.name not in have]
        for column in missing:
            self._con.execute(f'ALTER TABLE {self.dataset}.{spec.name} ADD COLUMN "{column.name}" {column.duckdb_type()}')
        return [c.name for c in missing]

    def create_table(self, spec: TableSpec) -> None:
        with self._lock:
            self._con.execute(spec.duckdb_ddl(self.dataset))

    def table_columns(self, table: str) -> dict[str, str]:
        with self._lock:
            found = self._con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                [self.dataset, table]).fetchall()
        return {name: _bigquery_type_of_duckdb(duck_type) for name, duck_type in found}

    def _add_table_columns(self, table: str, columns: Sequence[Column]) -> None:
        with self._lock:
            for column in columns:
                self._con.execute(f'ALTER TABLE {self.dataset}.{table} ADD COLUMN IF NOT EXISTS "{column.name}" '
                                  f'{column.duckdb_type()}')

    def set_column_type(self, table: str, column: Column) -> None:
        with self._lock:  # the project's DuckDB type: sqlglot would make NUMERIC a DECIMAL(18, 3)
            self._con.execute(f'ALTER TABLE {self.dataset}.{table} ALTER COLUMN "{column.name}" SET DATA TYPE '
                              f'{column.duckdb_type()}')

    def _merge_group(self, table: str, rows: Sequence[Mapping[str, Any]], *, key: Sequence[str] | None,
                     version: str | None, batch_id: str) -> int:
        if not rows:
            return 0
        import pyarrow as pa

        spec, rows, columns, key, version = self._merge_plan(table, rows, key, version)
        by_name = {c.name: c for c in spec.columns}
        arrays = [pa.array([_arrow_value(by_name[c], r.get(c)) for r in rows], type=_arrow_type(by_name[c]))
                  for c in columns]
        return self._merge_staged(spec, pa.Table.from_arrays(arrays, names=columns), key, version)

    def _merge_arrow(self, table: str, rows: Any, *, key: Sequence[str] | None, version: str | None,
                     batch_id: str) -> int:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not rows.num_rows:
            return 0
        spec, key, version = merge_target(self.spec_of(table), key, version)
        supplied = set(rows.column_names)
        check_supplied(spec, supplied, key)
        for k in key:
            if rows.column(k).null_count:
                position = pc.index(pc.is_null(rows.column(k)), True).as_py()
                raise ValueError(f"row {position} for {spec.name} has a null key column ({', '.join(key)})")
        if "ingested_at" in spec.column_names and "ingested_at" not in supplied:
            now = pa.scalar(datetime.now(timezone.utc), pa.timestamp("us", tz="UTC"))
            rows = rows.append_column("ingested_at", pa.repeat(now, rows.num_rows))
            supplied.add("ingested_at")
        columns = [c for c in spec.column_names if c in supplied]
        by_name = {c.name: c for c in spec.columns}
        batch = pa.table({c: rows.column(c).cast(_arrow_type(by_name[c])) for c in columns})
        return self._merge_staged(spec, batch, key, version if version in columns else None)

    def _merge_staged(self, spec: TableSpec, batch: Any, key: Sequence[str], version: str | None) -> int:
        """MERGEs an Arrow batch of the table's types (newest version, then last position, wins per key)."""
        import pyarrow as pa

        columns = batch.column_names
        batch = batch.append_column(POSITION_COLUMN, pa.array(range(batch.num_rows), type=pa.int64()))
        table = spec.name
        staging = f"_staging_{table}"
        prune = None
        if prunes(spec, columns):
            import pyarrow.compute as pc

            prune = batch_partitions(spec, pc.unique(batch.column(spec.partition_field)).to_pylist())
        sql = to_duckdb_sql(merge_sql(spec, self.dataset, quoted(staging), columns, key, version, prune))
        with self._lock:
            self._con.register(staging, batch)
            try:
                # One statement: DuckDB applies the whole MERGE or nothing.
                self._con.execute(sql)
            finally:
                self._con.unregister(staging)
        self.ledger.record("merge", table, batch.num_rows)
        return batch.num_rows

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._con.execute(to_duckdb_sql(sql), parameters_used(sql, params) or None)
            names = [d[0] for d in cursor.description]
            shaped = [(i, d[1]) for i, d in enumerate(cursor.description) if _needs_shaping(d[1])]
            rows = cursor.fetchall()
        self.ledger.record("select", statement_target(sql), len(rows))
        if shaped:
            rows = [_shaped_row(row, shaped) for row in rows]
        return [dict(zip(names, row)) for row in rows]

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int | None:
        kind = statement_kind(sql)
        with self._lock:
            # DuckDB updates row ids that arrive out of order one by one: an UPDATE ... FROM whose target it
            # chose to hash (on estimates) took 4 s for 200,000 rows instead of 0.1 s. Without the optimizer
            # that swaps a join's sides, the target stays the side scanned in order.
            if kind == "update":
                self._con.execute("SET disabled_optimizers = 'build_side_probe_side'")
            try:
                result = self._con.execute(to_duckdb_sql(sql), parameters_used(sql, params) or None)
                try:
                    row = result.fetchone()
                except Exception:  # DDL has no result set
                    row = None
            finally:
                if kind == "update":
                    self._con.execute("RESET disabled_optimizers")
            affected = int(row[0]) if row and isinstance(row[0], int) else None
        self.ledger.record(kind, statement_target(sql), affected or 0)
        return affected

    def close(self) -> None:
        with self._lock:
            self._con.close()



