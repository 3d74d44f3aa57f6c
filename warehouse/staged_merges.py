"""BigQuery's merge batcher: pages loaded (free) into staging tables, one MERGE per table on flush."""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from transform.values import json_ready
from warehouse.job_ledger import job_cost
from warehouse.job_names import batch_digest, job_id_for
from warehouse.merge_sql import POSITION_COLUMN, merge_sql, partition_numbers, prunes, row_groups, table_spans
from warehouse.schemas import TableSpec
from warehouse.sql_text import quoted, safe_table_name

if TYPE_CHECKING:
    from warehouse.bigquery_warehouse import BigQueryWarehouse


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
        payload = [{**{c: json_ready(r.get(c)) for c in columns}, POSITION_COLUMN: area.rows + i}
                   for i, r in enumerate(rows)]
        wh._load_rows(table, f"{wh.project}.{wh.work_dataset}.{area.name}", wh._staging_schema(spec, columns),
                      payload, job_id_for("load", table, f"{area.name}_{area.rows}_{uuid.uuid4().hex[:8]}"))
        area.rows += len(rows)
        area.digests.append(batch_digest(payload))
        if prunes(spec, columns):
            field = spec.partition_column.name
            numbers, has_null = partition_numbers((r.get(field) for r in rows), spec.partition_type)
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
        prune = table_spans(spec, area.partitions, area.null_partition) if prunes(spec, area.columns) else None
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

