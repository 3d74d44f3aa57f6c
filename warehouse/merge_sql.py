"""The MERGE statement of a staged batch, and the partition spans its ON clause names."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from warehouse.schemas import Column, TableSpec
from warehouse.sql_text import quoted

POSITION_COLUMN = "_batch_position"
# Columns stamped when a batch is merged: not part of what a batch is (a retried batch is the same batch).
MERGE_TIME_COLUMNS = frozenset({"ingested_at"})

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


def table_spans(spec: TableSpec, numbers: set[int], has_null: bool = False) -> PartitionSpans:
    """partition_spans of a partitioned table's partition numbers."""
    return partition_spans(numbers, spec.partition_type, spec.partition_column.type, has_null)


def batch_partitions(spec: TableSpec, values: Iterable[Any]) -> PartitionSpans:
    """The partitions of the table that a batch with these partition-column values touches."""
    return table_spans(spec, *partition_numbers(values, spec.partition_type))


def merge_sql(spec: TableSpec, dataset: str, staging: str, columns: Sequence[str],
              key: Sequence[str], version: str | None, prune: PartitionSpans | None = None) -> str:
    """The MERGE statement (BigQuery dialect) of a staged batch (a quoted path) into its table.

    With the batch's partitions, the ON clause also bounds the target's partition column by constants,
    so BigQuery scans and bills only those partitions (tables.yaml: partition.immutable).
    """
    order = f"{version} DESC, {POSITION_COLUMN} DESC" if version else f"{POSITION_COLUMN} DESC"
    on = " AND ".join(f"target.{k} = source.{k}" for k in key)
    if prune is not None and spec.partition_field:
        on += f"\n  AND {prune.predicate(spec.partition_column)}"
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


def merge_target(spec: TableSpec, key: Sequence[str] | None,
                  version: str | None) -> tuple[TableSpec, tuple[str, ...], str | None]:
    """The table's spec, the merge key (its primary key unless given) and version column (its own unless given)."""
    return spec, tuple(key or spec.primary_key), version if version is not None else spec.version


def check_supplied(spec: TableSpec, supplied: set[str], key: Sequence[str]) -> None:
    unknown = supplied - set(spec.column_names)
    if unknown:
        raise ValueError(f"rows for {spec.name} carry columns it does not have: {sorted(unknown)}")
    missing_key = set(key) - supplied
    if missing_key:
        raise ValueError(f"rows for {spec.name} lack key columns {sorted(missing_key)}")


def merge_columns(spec: TableSpec, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> list[str]:
    """The table's columns that the rows supply, in schema order; unknown columns are an error."""
    supplied: set[str] = set()
    for row in rows:
        supplied.update(row)
    check_supplied(spec, supplied, key)
    for position, row in enumerate(rows):
        if any(row.get(k) is None for k in key):
            raise ValueError(f"row {position} for {spec.name} has a null key column ({', '.join(key)})")
    return [c for c in spec.column_names if c in supplied]


def stamp_ingested_at(spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
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


