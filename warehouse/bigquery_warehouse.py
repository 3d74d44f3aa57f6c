"""BigQuery: load jobs into expiring staging tables of the scratch dataset, then MERGE; never streaming."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from config.settings import Settings
from transform.values import json_ready
from warehouse.base import Warehouse
from warehouse.job_ledger import JobLedger, job_cost, statement_kind, statement_target
from warehouse.job_names import batch_digest, job_id_for
from warehouse.merge_sql import POSITION_COLUMN, batch_partitions, merge_sql, prunes
from warehouse.schemas import Column, TableSpec, load_table_specs, standard_type
from warehouse.sql_text import parameters_used
from warehouse.staged_merges import StagedMerges


class WarehouseUnavailable(RuntimeError):
    """The configured warehouse cannot be reached or does not match its configuration."""


def _query_parameter(name: str, value: Any) -> Any:
    from google.cloud import bigquery

    if isinstance(value, (list, tuple)):
        element = value[0] if value else ""
        return bigquery.ArrayQueryParameter(name, _scalar_type(element), list(value))
    return bigquery.ScalarQueryParameter(name, _scalar_type(value), value)


# A query parameter's type by its Python value (bool before int, datetime before date: subclasses first).
_SCALAR_TYPES = ((bool, "BOOL"), (int, "INT64"), (float, "FLOAT64"), (Decimal, "NUMERIC"), (datetime, "TIMESTAMP"),
                 (date, "DATE"))


def _scalar_type(value: Any) -> str:
    return next((name for kind, name in _SCALAR_TYPES if isinstance(value, kind)), "STRING")


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
    name = "STRING" if column.type == "JSON" else standard_type(column.type)
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

    def ensure_schema(self, fresh_tier: bool = True) -> list[str]:
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
        return created + self._create_views(existing) + (self.ensure_fresh_tier() if fresh_tier else [])

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
            days = spec.partition_expiration_days
            table.time_partitioning = bigquery.TimePartitioning(type_=spec.partition_type, field=spec.partition_field,
                                                                expiration_ms=days * 86_400_000 if days else None)
        if spec.cluster:
            table.clustering_fields = list(spec.cluster)
        return table

    def create_table(self, spec: TableSpec) -> None:
        self.client.create_table(self._table(spec), exists_ok=True)

    def read_rows(self, table: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """tabledata.list (client.list_rows): free, where a query bills at least 10 MB."""
        path = f"{self.project}.{self.dataset}.{table}"
        fields = None
        if columns:
            wanted = set(columns)
            fields = [f for f in self.client.get_table(path).schema if f.name in wanted]
        rows = [dict(row.items()) for row in self.client.list_rows(path, selected_fields=fields)]
        self.ledger.record("list", table, len(rows))
        return rows

    def clear_rows(self, table: str) -> None:
        """A WRITE_TRUNCATE load of no rows: free and atomic (DELETE would bill at least 10 MB)."""
        from google.cloud import bigquery

        path = f"{self.project}.{self.dataset}.{table}"
        config = bigquery.LoadJobConfig(
            schema=self.client.get_table(path).schema, source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER)
        load = self.client.load_table_from_json([], path, job_config=config, location=self.location)
        load.result()
        self.ledger.record("load", table, 0, job_cost(load))

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
        return {f.name: standard_type(f.field_type, f.mode) for f in fields}

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
        prune = batch_partitions(spec, [row.get(spec.partition_column.name)]) if prunes(spec, columns) else None
        sql = merge_sql(spec, self.dataset, source, columns, key, version, prune)
        payload = [{c: json_ready(row.get(c)) for c in columns}]
        config = bigquery.QueryJobConfig(query_parameters=params)
        merge = self._run_job(lambda job_id: self.client.query(sql, job_config=config, job_id=job_id,
                                                               location=self.location, job_retry=None),
                              job_id_for("merge", table, f"{batch_id}_{batch_digest(payload)}"))
        self.ledger.record("merge", table, 1, job_cost(merge))
        return 1

    def append(self, table: str, rows: Sequence[Mapping[str, Any]], *, batch_id: str) -> int:
        spec, rows, columns, _key, _version = self._merge_plan(table, rows, None, None)
        payload = [{c: json_ready(r.get(c)) for c in columns} for r in rows]
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
