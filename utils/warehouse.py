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
import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol, Sequence

from config.settings import Settings
from utils.job_ledger import JobLedger, job_cost, statement_kind, statement_target
from utils.logger import get_logger
from utils.schemas import Column, TableSpec, load_table_specs, table_spec, view_sql_files

log = get_logger(__name__)

POSITION_COLUMN = "_batch_position"
_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
# Columns stamped when a batch is merged: not part of what a batch is (a retried batch is the same batch).
MERGE_TIME_COLUMNS = frozenset({"ingested_at"})


def quoted(*parts: str) -> str:
    """A table path quoted for GoogleSQL (`dataset.table`): unquoted, a dash is legal only in its first part."""
    return "`" + ".".join(parts) + "`"


def safe_table_name(text: str) -> str:
    """text as a table name of only [A-Za-z0-9_] (run ids carry dashes), at most 1,024 characters."""
    return _NAME_UNSAFE.sub("_", text)[:1024]


_PARAMETER = re.compile(r"@(\w+)")


def parameters_used(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params the statement refers to (@name): DuckDB refuses extra ones, so callers may pass a superset."""
    if not params:
        return {}
    names = set(_PARAMETER.findall(sql))
    return {k: v for k, v in params.items() if k in names}


# A MERGE names at most this many spans of partitions; beyond, the nearest spans are joined.
MAX_PARTITION_SPANS = 32


@dataclass(frozen=True)
class PartitionSpans:
    """The partitions a staged batch touches, as spans of consecutive partitions (the first one's start, the
    last one's end: whole partitions, as BigQuery prunes), and whether some row has none (__NULL__)."""

    spans: tuple[tuple[Any, Any], ...]
    has_null: bool = False

    def predicate(self, column: Column, alias: str = "target") -> str:
        """`<alias>.<column>` within the spans, as constants BigQuery prunes partitions by."""
        name = f"{alias}.{column.name}"
        parts = [f"({name} >= {_literal(column, start)} AND {name} < {_literal(column, end)})"
                 for start, end in self.spans]
        parts += [f"{name} IS NULL"] if self.has_null else []
        if not parts:
            return "FALSE"
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _literal(column: Column, value: Any) -> str:
    if column.type == "DATE":
        return f"DATE '{value.isoformat()}'"
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def prunes(spec: TableSpec, columns: Sequence[str]) -> bool:
    """Whether a MERGE of these columns into the table carries its batch's partitions."""
    return bool(spec.partition_field and spec.partition_immutable and spec.partition_field in columns)


def partition_numbers(values: Iterable[Any], unit: str) -> tuple[set[int], bool]:
    """The partitions (DAY, MONTH, YEAR or HOUR numbers) of values, and whether one was None."""
    numbers: set[int] = set()
    has_null = False
    for value in values:
        if value is None:
            has_null = True
        else:
            numbers.add(_partition_number(value, unit))
    return numbers, has_null


def _partition_number(value: Any, unit: str) -> int:
    if isinstance(value, datetime) and value.tzinfo:
        value = value.astimezone(timezone.utc)
    if unit == "MONTH":
        return value.year * 12 + value.month - 1
    if unit == "YEAR":
        return value.year
    day = value.toordinal()
    return day * 24 + value.hour if unit == "HOUR" and isinstance(value, datetime) else day


def _partition_start(number: int, unit: str, column_type: str) -> Any:
    """The first value of partition `number` (a DATE, or a UTC TIMESTAMP)."""
    if unit == "MONTH":
        start = date(number // 12, number % 12 + 1, 1)
    elif unit == "YEAR":
        start = date(number, 1, 1)
    elif unit == "HOUR":
        moment = datetime.fromordinal(number // 24).replace(hour=number % 24, tzinfo=timezone.utc)
        return moment.date() if column_type == "DATE" else moment
    else:
        start = date.fromordinal(number)
    return start if column_type == "DATE" else datetime(start.year, start.month, start.day, tzinfo=timezone.utc)


def partition_spans(numbers: set[int], unit: str, column_type: str, has_null: bool = False) -> PartitionSpans:
    """Consecutive partitions joined into spans; the nearest spans joined further while too many remain."""
    ordered = sorted(numbers)
    cuts = [i for i in range(1, len(ordered)) if ordered[i] - ordered[i - 1] > 1]
    if len(cuts) >= MAX_PARTITION_SPANS:  # keep the widest gaps as the cuts
        cuts = sorted(sorted(cuts, key=lambda i: ordered[i] - ordered[i - 1])[-(MAX_PARTITION_SPANS - 1):])
    bounds = [0, *cuts, len(ordered)]
    spans = tuple((_partition_start(ordered[a], unit, column_type), _partition_start(ordered[b - 1] + 1, unit, column_type))
                  for a, b in zip(bounds, bounds[1:]) if b > a)
    return PartitionSpans(spans, has_null)


def batch_partitions(spec: TableSpec, values: Iterable[Any]) -> PartitionSpans:
    """The partitions of the table that a batch with these partition-column values touches."""
    numbers, has_null = partition_numbers(values, spec.partition_type)
    return partition_spans(numbers, spec.partition_type, spec.column(spec.partition_field).type, has_null)


def merge_sql(spec: TableSpec, dataset: str, staging: str, columns: Sequence[str],
              key: Sequence[str], version: str | None, prune: PartitionSpans | None = None) -> str:
    """The MERGE statement (BigQuery dialect) of a staged batch (a quoted path) into its table.

    With the batch's partitions, the ON clause also bounds the target's partition column by constants,
    so BigQuery scans and bills only those partitions (tables.yaml: partition.immutable).
    """
    order = f"{version} DESC, {POSITION_COLUMN} DESC" if version else f"{POSITION_COLUMN} DESC"
    on = " AND ".join(f"target.{k} = source.{k}" for k in key)
    if prune is not None and spec.partition_field:
        on += f"\n  AND {prune.predicate(spec.column(spec.partition_field))}"
    updates = ", ".join(f"{c} = source.{c}" for c in columns if c not in key)
    newer = f" AND (target.{version} IS NULL OR source.{version} >= target.{version})" if version in columns else ""
    sql = (
        f"MERGE INTO {quoted(dataset, spec.name)} AS target\n"
        f"USING (\n"
        f"  SELECT {', '.join(columns)} FROM {staging}\n"
        f"  QUALIFY ROW_NUMBER() OVER (PARTITION BY {', '.join(key)} ORDER BY {order}) = 1\n"
        f") AS source\n"
        f"ON {on}\n")
    if updates:
        sql += f"WHEN MATCHED{newer} THEN UPDATE SET {updates}\n"
    sql += (f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) "
            f"VALUES ({', '.join(f'source.{c}' for c in columns)})")
    return sql


def _merge_target(spec: TableSpec, key: Sequence[str] | None,
                  version: str | None) -> tuple[TableSpec, tuple[str, ...], str | None]:
    """The table's spec, the merge key (its primary key unless given) and version column (its own unless given)."""
    return spec, tuple(key or spec.primary_key), version if version is not None else spec.version


def _check_supplied(spec: TableSpec, supplied: set[str], key: Sequence[str]) -> None:
    unknown = supplied - set(spec.column_names)
    if unknown:
        raise ValueError(f"rows for {spec.name} carry columns it does not have: {sorted(unknown)}")
    missing_key = set(key) - supplied
    if missing_key:
        raise ValueError(f"rows for {spec.name} lack key columns {sorted(missing_key)}")


def _merge_columns(spec: TableSpec, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> list[str]:
    """The table's columns that the rows supply, in schema order; unknown columns are an error."""
    supplied: set[str] = set()
    for row in rows:
        supplied.update(row)
    _check_supplied(spec, supplied, key)
    for position, row in enumerate(rows):
        if any(row.get(k) is None for k in key):
            raise ValueError(f"row {position} for {spec.name} has a null key column ({', '.join(key)})")
    return [c for c in spec.column_names if c in supplied]


def _stamp_ingested_at(spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ingested_at set to now where the table has that column and the row does not."""
    if "ingested_at" not in spec.column_names:
        return [dict(r) for r in rows]
    now = datetime.now(timezone.utc)
    return [{**r, "ingested_at": r.get("ingested_at") or now} for r in rows]


def row_groups(rows: Sequence[Mapping[str, Any]], batch_id: str) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """Rows grouped by the columns they supply, each group with its batch id (`<batch_id>_g<n>` when several)."""
    groups: dict[frozenset[str], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    if len(groups) == 1:
        return [(batch_id, next(iter(groups.values())))]
    return [(f"{batch_id}_g{number}", group) for number, group in enumerate(groups.values())]


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
    def ensure_schema(self) -> list[str]:
        """Creates what is missing (datasets, tables, views, columns); returns what it created (`table.column` for a column)."""

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
        is never written for that row (a re-sync without a transcript keeps the stored one). An Arrow
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

    def close(self) -> None:
        """Releases connections."""

    def table_counts(self) -> dict[str, int]:
        """Row count of every table."""
        return {name: self.query(f"SELECT COUNT(*) AS n FROM {quoted(self.dataset, name)}")[0]["n"]
                for name in load_table_specs()}

    def _merge_plan(self, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str] | None,
                    version: str | None) -> tuple[TableSpec, list[dict[str, Any]], list[str], tuple[str, ...], str | None]:
        spec, key, version = _merge_target(self.spec_of(table), key, version)
        stamped = _stamp_ingested_at(spec, rows)
        columns = _merge_columns(spec, stamped, key)
        if version not in columns:
            version = None
        return spec, stamped, columns, key, version


# ---------------------------------------------------------------- DuckDB


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


_LEGACY_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def _standard_type(field_type: str, mode: str | None = None) -> str:
    """A BigQuery type by its standard SQL name (the API still answers INTEGER, FLOAT, BOOLEAN)."""
    name = _LEGACY_TYPES.get(field_type.upper(), field_type.upper())
    return f"ARRAY<{name}>" if (mode or "").upper() == "REPEATED" else name


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
            (before,) = self._con.execute("SELECT current_setting('memory_limit')").fetchone()
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

    def ensure_schema(self) -> list[str]:
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
            for path in view_sql_files():
                self.execute(path.read_text().replace("${dataset}", self.dataset))
                if path.stem not in existing:
                    created.append(path.stem)
            return created

    def _add_missing_columns(self, spec: TableSpec) -> list[str]:
        """Adds the schema file's columns that the existing table lacks (NULL in existing rows); their names."""
        have = {r[0] for r in self._con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [self.dataset, spec.name]).fetchall()}
        missing = [c for c in spec.columns if c.name not in have]
        for column in missing:
            self._con.execute(f'ALTER TABLE {self.dataset}.{spec.name} ADD COLUMN "{column.name}" {column.duckdb_type()}')
        return [c.name for c in missing]

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
        spec, key, version = _merge_target(self.spec_of(table), key, version)
        supplied = set(rows.column_names)
        _check_supplied(spec, supplied, key)
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
        with self._lock:
            result = self._con.execute(to_duckdb_sql(sql), parameters_used(sql, params) or None)
            try:
                row = result.fetchone()
            except Exception:  # DDL has no result set
                row = None
            affected = int(row[0]) if row and isinstance(row[0], int) else None
        self.ledger.record(statement_kind(sql), statement_target(sql), affected or 0)
        return affected

    def close(self) -> None:
        with self._lock:
            self._con.close()


# ---------------------------------------------------------------- BigQuery


class WarehouseUnavailable(RuntimeError):
    """The configured warehouse cannot be reached or does not match its configuration."""


def _json_ready(value: Any) -> Any:
    """A value as a load job's newline-delimited JSON expects it."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    return value


def job_id_for(kind: str, table: str, batch_id: str) -> str:
    """A BigQuery job id of only the characters job ids allow."""
    return _JOB_ID_UNSAFE.sub("_", f"{kind}_{table}_{batch_id}")[:1024]


def batch_digest(payload: Sequence[Mapping[str, Any]]) -> str:
    """What identifies a staged batch's content: its rows less the columns stamped at merge time."""
    content = [{k: v for k, v in row.items() if k not in MERGE_TIME_COLUMNS} for row in payload]
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _query_parameter(name: str, value: Any) -> Any:
    from google.cloud import bigquery

    if isinstance(value, (list, tuple)):
        element = value[0] if value else ""
        return bigquery.ArrayQueryParameter(name, _scalar_type(element), list(value))
    return bigquery.ScalarQueryParameter(name, _scalar_type(value), value)


def _scalar_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        return "NUMERIC"
    if isinstance(value, datetime):
        return "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    return "STRING"


def bigquery_client(settings: Settings) -> Any:
    """The BigQuery client the settings describe: Google's API, or BIGQUERY_API_ENDPOINT anonymously."""
    from google.cloud import bigquery

    endpoint = settings.bigquery_api_endpoint
    if not endpoint:
        return bigquery.Client(project=settings.gcp_project, location=settings.bigquery_location)
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    _check_reachable(endpoint)
    return bigquery.Client(project=settings.gcp_project, location=settings.bigquery_location,
                           credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=endpoint))


def _check_reachable(endpoint: str) -> None:
    """Fails at once, naming the setting, when nothing listens at endpoint (the client would retry for minutes)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WarehouseUnavailable(f"BIGQUERY_API_ENDPOINT must be an http(s) URL, not {endpoint!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=5).close()
    except OSError as error:
        raise WarehouseUnavailable(f"BIGQUERY_API_ENDPOINT={endpoint} cannot be reached: {error}") from None


_INLINE_TYPES = {"STRING", "INT64", "FLOAT64", "NUMERIC", "BOOL", "TIMESTAMP", "DATE"}


def _inline_type(column: Column) -> str | None:
    """The query parameter type that carries a value of the column (JSON as its text; None: not inlined)."""
    name = "STRING" if column.type == "JSON" else _standard_type(column.type)
    return None if column.repeated or name not in _INLINE_TYPES else name


def _is_json(field: Any) -> bool:
    return getattr(field, "field_type", None) == "JSON"


class BigQueryWarehouse(Warehouse):
    """BigQuery: load jobs into expiring staging tables of the scratch dataset, then MERGE; never streaming."""

    def __init__(self, settings: Settings, client: Any = None):
        self.client = client if client is not None else bigquery_client(settings)
        self.ledger = JobLedger()
        self.project = settings.gcp_project
        self.dataset = settings.dataset
        # Staging tables and entity resolution's work tables: a dataset whose tables expire by default.
        self.work_dataset = settings.scratch_dataset
        self.location = settings.bigquery_location
        self.staging_lifetime = timedelta(hours=settings.staging_expiration_hours)

    def _schema(self, spec: TableSpec, extra: Iterable[dict[str, Any]] = ()) -> list[Any]:
        from google.cloud import bigquery

        return [bigquery.SchemaField.from_api_repr(c) for c in [*spec.schema_json(), *extra]]

    def list_tables(self) -> set[str]:
        return {t.table_id for t in self.client.list_tables(f"{self.project}.{self.dataset}")}

    def _staging_schema(self, spec: TableSpec, columns: Sequence[str]) -> list[Any]:
        """The staging table's fields: the columns a batch supplies, then its position in the batch."""
        position = {"name": POSITION_COLUMN, "type": "INT64", "mode": "REQUIRED"}
        return [f for f in self._schema(spec, [position]) if f.name in {*columns, POSITION_COLUMN}]

    def ensure_schema(self) -> list[str]:
        """Creates what is missing: datasets, tables, views, and columns an existing table lacks."""
        created = self._ensure_dataset(self.dataset, None)
        created += self._ensure_dataset(self.work_dataset, self.staging_lifetime)
        existing = self.list_tables()
        for spec in load_table_specs().values():
            if spec.name in existing:
                created += [f"{spec.name}.{c}" for c in self._add_missing_columns(spec)]
            else:
                self.client.create_table(self._table(spec), exists_ok=True)
                created.append(spec.name)
        for path in view_sql_files():
            self.execute(path.read_text().replace("${dataset}", self.dataset))
            if path.stem not in existing:
                created.append(path.stem)
        return created

    def _ensure_dataset(self, name: str, table_lifetime: timedelta | None) -> list[str]:
        """Creates the dataset when missing ([name] then); refuses one that lives in another location."""
        from google.api_core import exceptions
        from google.cloud import bigquery

        try:
            found = self.client.get_dataset(f"{self.project}.{name}")
        except exceptions.NotFound:
            dataset = bigquery.Dataset(f"{self.project}.{name}")
            dataset.location = self.location
            if table_lifetime is not None:
                dataset.default_table_expiration_ms = int(table_lifetime.total_seconds() * 1000)
            self.client.create_dataset(dataset, exists_ok=True)
            return [name]
        if found.location and found.location.upper() != self.location.upper():
            raise WarehouseUnavailable(
                f"dataset {self.project}.{name} is in location {found.location}, but BIGQUERY_LOCATION is "
                f"{self.location}: set BIGQUERY_LOCATION={found.location} or use another DATASET")
        return []

    def _table(self, spec: TableSpec) -> Any:
        from google.cloud import bigquery

        table = bigquery.Table(f"{self.project}.{self.dataset}.{spec.name}", schema=self._schema(spec))
        table.description = spec.description
        if spec.partition_field:
            table.time_partitioning = bigquery.TimePartitioning(type_=spec.partition_type, field=spec.partition_field)
        if spec.cluster:
            table.clustering_fields = list(spec.cluster)
        return table

    def _add_missing_columns(self, spec: TableSpec) -> list[str]:
        """Appends the schema file's columns that the existing table lacks (as NULLABLE); returns their names."""
        table = self.client.get_table(f"{self.project}.{self.dataset}.{spec.name}")
        have = {f.name for f in table.schema}
        missing = [f for f in self._schema(spec) if f.name not in have]
        if missing:
            # BigQuery adds columns only as NULLABLE or REPEATED; existing rows read NULL (or []).
            table.schema = [*table.schema, *(f if f.mode != "REQUIRED" else f.__class__.from_api_repr(
                {**f.to_api_repr(), "mode": "NULLABLE"}) for f in missing)]
            self.client.update_table(table, ["schema"])
        return [f.name for f in missing]

    def table_columns(self, table: str) -> dict[str, str]:
        fields = self.client.get_table(f"{self.project}.{self.dataset}.{table}").schema
        return {f.name: _standard_type(f.field_type, f.mode) for f in fields}

    def _add_table_columns(self, table: str, columns: Sequence[Column]) -> None:
        from google.cloud import bigquery

        # One schema patch for all of them: BigQuery rate-limits a table's metadata updates.
        found = self.client.get_table(f"{self.project}.{self.dataset}.{table}")
        have = {f.name for f in found.schema}
        found.schema = [*found.schema, *(bigquery.SchemaField.from_api_repr(c.to_json()) for c in columns
                                         if c.name not in have)]
        self.client.update_table(found, ["schema"])

    def _merge_group(self, table: str, rows: Sequence[Mapping[str, Any]], *, key: Sequence[str] | None,
                     version: str | None, batch_id: str) -> int:
        if len(rows) == 1 and all(_inline_type(c) for c in self.spec_of(table).columns if c.name in rows[0]):
            return self._merge_one_row(table, rows[0], key, version, batch_id)
        merges = StagedMerges(self, flush_rows=len(rows))
        try:
            merges.stage(table, rows, batch_id, key=key, version=version)
            return merges.flush()
        finally:
            merges.discard()

    def _merge_one_row(self, table: str, row: Mapping[str, Any], key: Sequence[str] | None, version: str | None,
                       batch_id: str) -> int:
        """One row (a run's record, a watermark) MERGEd from query parameters: no staging table, so the
        statement references one table, not two (each referenced table bills 10 MB at least)."""
        from google.cloud import bigquery

        spec, (row,), columns, key, version = self._merge_plan(table, [row], key, version)
        params, select = [], []
        for number, name in enumerate(columns):
            column, value = spec.column(name), row.get(name)
            if column.type == "JSON":  # a JSON parameter as its text, parsed in the statement
                value = None if value is None else value if isinstance(value, str) else json.dumps(value, default=str)
                select.append(f"PARSE_JSON(@v{number}) AS {name}")
            else:
                select.append(f"@v{number} AS {name}")
            params.append(bigquery.ScalarQueryParameter(f"v{number}", _inline_type(column), value))
        source = f"(SELECT {', '.join(select)}, 0 AS {POSITION_COLUMN})"
        prune = batch_partitions(spec, [row.get(spec.partition_field)]) if prunes(spec, columns) else None
        sql = merge_sql(spec, self.dataset, source, columns, key, version, prune)
        payload = [{c: _json_ready(row.get(c)) for c in columns}]
        config = bigquery.QueryJobConfig(query_parameters=params)
        merge = self._run_job(lambda job_id: self.client.query(sql, job_config=config, job_id=job_id,
                                                               location=self.location, job_retry=None),
                              job_id_for("merge", table, f"{batch_id}_{batch_digest(payload)}"))
        self.ledger.record("merge", table, 1, job_cost(merge))
        return 1

    def append(self, table: str, rows: Sequence[Mapping[str, Any]], *, batch_id: str) -> int:
        spec, rows, columns, _key, _version = self._merge_plan(table, rows, None, None)
        payload = [{c: _json_ready(r.get(c)) for c in columns} for r in rows]
        self._load_rows(table, f"{self.project}.{self.dataset}.{table}",
                        [f for f in self._schema(spec) if f.name in columns], payload,
                        job_id_for("append", table, f"{batch_id}_{batch_digest(payload)}"))
        return len(rows)

    def _load_rows(self, table: str, destination: str, schema: list[Any], payload: list[dict[str, Any]],
                   job_id: str) -> None:
        """Appends NDJSON-ready rows to an existing table by a load job under job_id; counted under table."""
        from google.cloud import bigquery

        config = bigquery.LoadJobConfig(
            schema=schema, source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER)
        load = self._run_job(lambda attempt_id: self.client.load_table_from_json(
            payload, destination, job_config=config, job_id=attempt_id, location=self.location), job_id)
        self.ledger.record("load", table, len(payload), job_cost(load))

    def merge_batcher(self, flush_rows: int) -> "StagedMerges":
        """Pages staged by load jobs (free) and MERGEd once flush_rows are staged, at a checkpoint or at the
        end: a 1,000,000-row full load is a few DML statements per table, not one per page."""
        return StagedMerges(self, flush_rows)

    def _run_job(self, start: Any, job_id: str, attempts: int = 5) -> Any:
        """Starts a job with a fixed id, waits for it and returns it.

        A job that already exists under the id (a retry of the same batch) is awaited instead; one that
        ended in an error is not the batch's outcome, so the job runs again under the next attempt's id.
        """
        from google.api_core import exceptions

        for attempt in range(attempts):
            attempt_id = job_id if attempt == 0 else f"{job_id}_retry{attempt}"[:1024]
            try:
                job = start(attempt_id)
            except exceptions.Conflict:
                job = self.client.get_job(attempt_id, location=self.location)
                if job.state == "DONE" and job.error_result:
                    continue
            job.result()
            return job
        raise RuntimeError(f"BigQuery job {job_id} failed in each of {attempts} earlier attempts")

    def _config_for(self, sql: str, params: Mapping[str, Any] | None) -> Any:
        from google.cloud import bigquery

        return bigquery.QueryJobConfig(
            query_parameters=[_query_parameter(k, v) for k, v in parameters_used(sql, params).items()])

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        job = self.client.query(sql, job_config=self._config_for(sql, params), location=self.location)
        result = job.result()
        json_columns = [f.name for f in (result.schema or []) if _is_json(f)]
        rows = [dict(row.items()) for row in result]
        self.ledger.record("select", statement_target(sql), len(rows), job_cost(job))
        for row in rows:
            for name in json_columns:  # a JSON value is a Python object on both warehouses
                if isinstance(row[name], str):
                    row[name] = json.loads(row[name])
        return rows

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int | None:
        job = self.client.query(sql, job_config=self._config_for(sql, params), location=self.location)
        job.result()
        affected = getattr(job, "num_dml_affected_rows", None)
        self.ledger.record(statement_kind(sql), statement_target(sql), affected or 0, job_cost(job))
        return affected

    def drop_work_table(self, name: str) -> None:
        self.client.delete_table(f"{self.project}.{self.work_dataset}.{name}", not_found_ok=True)


@dataclass
class _StagingArea:
    """One staging table of the scratch dataset: the batches added for a table with the same columns."""

    name: str
    spec: TableSpec
    columns: list[str]
    key: tuple[str, ...]
    version: str | None
    first_batch: str
    rows: int = 0
    digests: list[str] = field(default_factory=list)
    partitions: set[int] = field(default_factory=set)  # of an immutable partition column: what the MERGE scans
    null_partition: bool = False

    def content_id(self) -> str:
        """The staged batches' identity: the one batch's digest, or a digest of all of them."""
        if len(self.digests) == 1:
            return self.digests[0]
        return hashlib.sha256("".join(self.digests).encode()).hexdigest()[:16]


class StagedMerges:
    """BigQuery: batches loaded (free) into staging tables of the scratch dataset, merged in one MERGE per
    table when flushed. Each staging table expires on its own; a discarded or killed run leaves only that."""

    def __init__(self, warehouse: "BigQueryWarehouse", flush_rows: int):
        self._wh = warehouse
        self.flush_rows = flush_rows
        self._areas: dict[tuple[str, tuple[str, ...]], _StagingArea] = {}

    @property
    def pending_rows(self) -> int:
        return sum(area.rows for area in self._areas.values())

    def add(self, table: str, rows: Any, batch_id: str) -> int:
        if hasattr(rows, "column_names"):  # an Arrow table: its columns for every row
            rows = rows.to_pylist()
        return self.stage(table, rows, batch_id)

    def stage(self, table: str, rows: Sequence[Mapping[str, Any]], batch_id: str, *,
              key: Sequence[str] | None = None, version: str | None = None) -> int:
        """Loads rows into the staging table of their table and columns; returns how many."""
        for group_id, group in row_groups(rows, batch_id):
            self._load(table, group, group_id, key, version)
        return len(rows)

    def _load(self, table: str, rows: Sequence[Mapping[str, Any]], batch_id: str, key: Sequence[str] | None,
              version: str | None) -> None:
        wh = self._wh
        spec, rows, columns, key, version = wh._merge_plan(table, rows, key, version)
        area = self._area(spec, columns, key, version, batch_id)
        payload = [{**{c: _json_ready(r.get(c)) for c in columns}, POSITION_COLUMN: area.rows + i}
                   for i, r in enumerate(rows)]
        wh._load_rows(table, f"{wh.project}.{wh.work_dataset}.{area.name}", wh._staging_schema(spec, columns),
                      payload, job_id_for("load", table, f"{area.name}_{area.rows}_{uuid.uuid4().hex[:8]}"))
        area.rows += len(rows)
        area.digests.append(batch_digest(payload))
        if prunes(spec, columns):
            numbers, has_null = partition_numbers((r.get(spec.partition_field) for r in rows), spec.partition_type)
            area.partitions |= numbers
            area.null_partition = area.null_partition or has_null

    def _area(self, spec: TableSpec, columns: list[str], key: tuple[str, ...], version: str | None,
              batch_id: str) -> _StagingArea:
        from google.cloud import bigquery

        found = self._areas.get((spec.name, tuple(columns)))
        if found is not None and found.key == key and found.version == version:
            return found
        wh = self._wh
        name = safe_table_name(f"_staging_{spec.name}_{batch_id}_{uuid.uuid4().hex[:8]}")
        table = bigquery.Table(f"{wh.project}.{wh.work_dataset}.{name}", schema=wh._staging_schema(spec, columns))
        # It disappears on its own (and by the scratch dataset's default) even if this process dies.
        table.expires = datetime.now(timezone.utc) + wh.staging_lifetime
        wh.client.create_table(table, exists_ok=True)
        area = self._areas[(spec.name, tuple(columns))] = _StagingArea(name, spec, columns, key, version, batch_id)
        return area

    def flush(self) -> int:
        """One MERGE per staging table, then the staging table is dropped."""
        merged = 0
        for slot, area in list(self._areas.items()):
            self._merge(area)
            merged += area.rows
            del self._areas[slot]
            self._wh.drop_work_table(area.name)
        return merged

    def _merge(self, area: _StagingArea) -> None:
        wh = self._wh
        spec = area.spec
        prune = None if not prunes(spec, area.columns) else partition_spans(
            area.partitions, spec.partition_type, spec.column(spec.partition_field).type, area.null_partition)
        sql = merge_sql(spec, wh.dataset, quoted(wh.work_dataset, area.name), area.columns, area.key,
                        area.version, prune)
        # The MERGE's id is the staged batches': a retry of the same batches finds that job and waits for it.
        merge = wh._run_job(lambda job_id: wh.client.query(sql, job_id=job_id, location=wh.location, job_retry=None),
                            job_id_for("merge", area.spec.name, f"{area.first_batch}_{area.content_id()}"))
        wh.ledger.record("merge", area.spec.name, area.rows, job_cost(merge))

    def discard(self) -> None:
        for area in self._areas.values():
            self._wh.drop_work_table(area.name)
        self._areas.clear()


def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse the settings name."""
    if settings.warehouse == "bigquery":
        return BigQueryWarehouse(settings)
    return DuckDBWarehouse(settings.duckdb_path, settings.dataset, settings.duckdb_memory_limit)
