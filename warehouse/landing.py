"""Landing: in queue mode (DISPATCH=queue) a worker writes no table; what it would merge is landed on Pub/Sub.

However many workers run, BigQuery sees mutating DML from one place only: the merger (pipeline.merger), which
folds every landed batch into its table with one MERGE per table and column set per cycle. A worker's
LandingWarehouse reads the real warehouse (watermarks, stored ids) and publishes its writes to the landing topic
as batches of JSON rows (a push run's marked for the fresh tier: warehouse/fresh.py); publish() returns once Pub/Sub has stored them, so what a watermark covers is durable
and will be merged before the watermark itself is landed after it. Versions (ingested_at, updated_at) are
stamped here, when the row is made, so a batch replayed later never overwrites a newer one.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterator, Mapping, Sequence

from config.settings import Settings
from pipeline.run_origin import in_push_run
from pipeline.work_queue import topic_path
from transform.values import json_ready
from warehouse.base import Warehouse
from warehouse.merge_sql import merge_target, row_groups, stamp_ingested_at
from warehouse.schemas import Column, TableSpec

MAX_MESSAGE_BYTES = 4_000_000  # Pub/Sub takes 10 MB a message; a row bigger than this goes alone
LANDING_FORMAT = 1


def landing_topic(settings: Settings) -> str:
    return topic_path(settings, settings.landing_topic)


def encode_batches(spec: TableSpec, rows: Sequence[Mapping[str, Any]], *, key: Sequence[str], version: str | None,
                   batch_id: str) -> Iterator[bytes]:
    """rows (all supplying the same columns) as landing messages of at most MAX_MESSAGE_BYTES each."""
    header = {"format": LANDING_FORMAT, "table": spec.name, "key": list(key), "version": version,
              "batch_id": batch_id, "landed_ns": time.time_ns(), "tier": "fresh" if in_push_run() else "merge"}
    part, size = 0, 0
    chunk: list[str] = []
    for row in rows:
        text = json.dumps({c: json_ready(v) for c, v in row.items()}, ensure_ascii=False)
        length = len(text.encode("utf-8"))  # Pub/Sub counts bytes; a character may be four
        if chunk and size + length > MAX_MESSAGE_BYTES:
            yield _message(header, part, chunk)
            part, size, chunk = part + 1, 0, []
        chunk.append(text)
        size += length + 1
    if chunk:
        yield _message(header, part, chunk)


def _message(header: dict[str, Any], part: int, rows: list[str]) -> bytes:
    head = json.dumps({**header, "part": part})
    return (head[:-1] + ', "rows": [' + ",".join(rows) + "]}").encode("utf-8")


def decode_value(column: Column, value: Any) -> Any:
    """A landed JSON value as the warehouse takes it: times, dates and NUMERIC back from their text."""
    if value is None:
        return None
    if column.mode == "REPEATED":
        return [decode_value(Column(column.name, column.type, "NULLABLE", fields=column.fields), v) for v in value]
    kind = column.type
    if kind in ("RECORD", "STRUCT"):
        fields = {f.name: f for f in column.fields}
        return {k: decode_value(fields[k], v) if k in fields else v for k, v in value.items()}
    if kind == "TIMESTAMP" or kind == "DATETIME":
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    if kind == "DATE":
        return date.fromisoformat(value) if isinstance(value, str) else value
    if kind in ("NUMERIC", "BIGNUMERIC"):
        return Decimal(str(value))
    return value


def decode_rows(spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    columns = {c.name: c for c in spec.columns}
    return [{name: decode_value(columns[name], value) for name, value in row.items()} for row in rows]


class LandingWarehouse(Warehouse):
    """A worker's warehouse in queue mode: reads and DDL go to the real one, rows to the landing topic."""

    def __init__(self, inner: Warehouse, settings: Settings, publisher: Any = None):
        self.inner = inner
        self.dataset, self.work_dataset = inner.dataset, inner.work_dataset
        self.ledger = inner.ledger
        self._settings = settings
        self._publisher = publisher
        self._lock = threading.Lock()
        self.landed_messages = 0

    def _client(self) -> Any:
        with self._lock:
            if self._publisher is None:
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                self._publisher = pubsub_v1.PublisherClient()
            return self._publisher

    def spec_of(self, table: str) -> TableSpec:
        return self.inner.spec_of(table)

    def _merge_group(self, table: str, rows: Sequence[Mapping[str, Any]], *, key: Sequence[str] | None,
                     version: str | None, batch_id: str) -> int:
        if not rows:
            return 0
        spec, key, version = merge_target(self.spec_of(table), key, version)
        stamped = stamp_ingested_at(spec, rows)
        client, topic = self._client(), landing_topic(self._settings)
        futures = [client.publish(topic, data, table=table) for data in
                   encode_batches(spec, stamped, key=key, version=version, batch_id=batch_id)]
        for future in futures:  # stored by Pub/Sub before the caller goes on (and writes a watermark)
            future.result(timeout=120)
        self.landed_messages += len(futures)
        self.ledger.record("land", table, len(rows))
        return len(rows)

    def append(self, table: str, rows: Sequence[Mapping[str, Any]], *, batch_id: str) -> int:
        return sum(self._merge_group(table, group, key=None, version=None, batch_id=group_id)
                   for group_id, group in row_groups(rows, batch_id))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.inner.query(sql, params)

    def read_rows(self, table: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self.inner.read_rows(table, columns)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int | None:
        raise RuntimeError("a worker in queue mode runs no statement that changes tables: its rows are landed "
                           "and the merger writes them")

    def ensure_schema(self, fresh_tier: bool = True) -> list[str]:
        return self.inner.ensure_schema(fresh_tier)

    def list_tables(self) -> set[str]:
        return self.inner.list_tables()

    def table_columns(self, table: str) -> dict[str, str]:
        return self.inner.table_columns(table)

    def _add_table_columns(self, table: str, columns: Sequence[Column]) -> None:
        self.inner._add_table_columns(table, columns)

    def set_column_type(self, table: str, column: Column) -> None:
        self.inner.set_column_type(table, column)  # DDL, not DML: a widened custom field, as inline

    def add_columns(self, table: str, columns: Sequence[Column]) -> list[str]:
        added = self.inner.add_columns(table, columns)
        self.__dict__.setdefault("_run_time_columns", {}).setdefault(table, {}).update({c.name: c for c in columns})
        return added

    def close(self) -> None:
        self.inner.close()
