"""BigQueryWarehouse against a stand-in client (BigQuery itself cannot run here): the calls it makes."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlglot
from google.api_core import exceptions
from google.cloud import bigquery

from utils.schemas import load_table_specs
from utils.warehouse import POSITION_COLUMN, BigQueryWarehouse

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


class FakeJob:
    def __init__(self, job_id: str):
        self.job_id = job_id
        self.num_dml_affected_rows = 0

    def result(self):
        return []


class StandInClient:
    """Records what the warehouse asks of BigQuery; job ids already used raise Conflict, like BigQuery."""

    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.job_ids: set[str] = set()

    def _job(self, job_id):
        if job_id is not None and job_id in self.job_ids:
            raise exceptions.Conflict(f"Already Exists: Job {job_id}")
        if job_id is not None:
            self.job_ids.add(job_id)
        return FakeJob(job_id)

    def create_dataset(self, dataset, exists_ok=False):
        self.calls.append(("create_dataset", {"dataset": dataset, "exists_ok": exists_ok}))

    def create_table(self, table, exists_ok=False):
        self.calls.append(("create_table", {"table": table, "exists_ok": exists_ok}))

    def load_table_from_json(self, rows, destination, job_config=None, job_id=None):
        self.calls.append(("load", {"rows": list(rows), "destination": destination, "job_config": job_config,
                                    "job_id": job_id}))
        return self._job(job_id)

    def query(self, sql, job_config=None, job_id=None, location=None):
        self.calls.append(("query", {"sql": sql, "job_config": job_config, "job_id": job_id}))
        return self._job(job_id)

    def get_job(self, job_id, location=None):
        self.calls.append(("get_job", {"job_id": job_id}))
        return FakeJob(job_id)

    def delete_table(self, table, not_found_ok=False):
        self.calls.append(("delete_table", {"table": table}))

    def insert_rows_json(self, *args, **kwargs):  # streaming insert: must never be used
        raise AssertionError("streaming insert used on a MERGEd table")

    insert_rows = insert_rows_json

    def of(self, kind: str) -> list[dict]:
        return [args for name, args in self.calls if name == kind]


@pytest.fixture
def client():
    return StandInClient()


@pytest.fixture
def bq(settings, client):
    return BigQueryWarehouse(settings, client=client)


ROWS = [{"id": "A", "name": "Acme", "is_deleted": False, "system_modstamp": T0},
        {"id": "B", "name": "Beta", "is_deleted": False, "system_modstamp": T0}]


class TestMerge:
    def test_loads_into_an_expiring_staging_table_then_merges(self, bq, client):
        """A batch is a load job into an expiring staging table, then one MERGE, then the table is dropped."""
        bq.merge("sf_accounts", ROWS, batch_id="run1_0_0")
        (created,) = client.of("create_table")
        staging = created["table"]
        assert staging.table_id.startswith("_staging_sf_accounts_run1_0_0_")
        assert staging.expires is not None and staging.expires > datetime.now(timezone.utc)
        (load,) = client.of("load")
        config = load["job_config"]
        assert config.source_format == bigquery.SourceFormat.NEWLINE_DELIMITED_JSON
        assert config.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
        assert [f.name for f in config.schema] == ["id", "name", "is_deleted", "system_modstamp",
                                                  "ingested_at", POSITION_COLUMN]
        assert load["destination"].endswith(staging.table_id)
        assert load["rows"][0]["system_modstamp"] == "2025-01-01T00:00:00+00:00"
        (merge,) = client.of("query")
        assert merge["sql"].startswith("MERGE INTO sales_intelligence.sf_accounts AS target")
        assert f"sales_intelligence.{staging.table_id}" in merge["sql"]
        sqlglot.parse_one(merge["sql"], read="bigquery")
        assert [d["table"] for d in client.of("delete_table")] == [load["destination"]]

    def test_job_ids_are_deterministic(self, settings):
        """The same batch gets the same job ids in a fresh process; a different batch gets others."""
        first, second, other = StandInClient(), StandInClient(), StandInClient()
        rows = [{**r, "ingested_at": T0} for r in ROWS]
        BigQueryWarehouse(settings, client=first).merge("sf_accounts", rows, batch_id="run1_0_0")
        BigQueryWarehouse(settings, client=second).merge("sf_accounts", rows, batch_id="run1_0_0")
        BigQueryWarehouse(settings, client=other).merge("sf_accounts", rows[:1], batch_id="run1_0_0")
        assert first.job_ids == second.job_ids
        assert first.job_ids.isdisjoint(other.job_ids)
        assert all(j.startswith(("load_sf_accounts_run1_0_0_", "merge_sf_accounts_run1_0_0_")) for j in first.job_ids)

    def test_a_retried_batch_is_not_loaded_twice(self, bq, client):
        """When the job id already exists (a retry), the existing job is awaited instead of a new load."""
        rows = [{**r, "ingested_at": T0} for r in ROWS]
        bq.merge("sf_accounts", rows, batch_id="b")
        bq.merge("sf_accounts", rows, batch_id="b")
        assert len(client.job_ids) == 2
        assert len(client.of("get_job")) == 2

    def test_query_parameters_are_typed(self, bq, client):
        """Values go in as typed query parameters, never into the SQL text."""
        bq.query("SELECT id FROM sales_intelligence.sf_accounts WHERE name = @name AND system_modstamp >= @since",
                 {"name": "O'Brien", "since": T0})
        (query,) = client.of("query")
        params = {p.name: p.type_ for p in query["job_config"].query_parameters}
        assert params == {"name": "STRING", "since": "TIMESTAMP"}
        assert "O'Brien" not in query["sql"]


class TestEnsureSchema:
    def test_creates_partitioned_clustered_tables(self, bq, client):
        """Every table is created with the partitioning and clustering of tables.yaml."""
        bq.ensure_schema()
        tables = {c["table"].table_id: c["table"] for c in client.of("create_table")}
        assert set(load_table_specs()) == set(tables)
        for spec in load_table_specs().values():
            table = tables[spec.name]
            assert [f.name for f in table.schema] == list(spec.column_names)
            assert (table.clustering_fields or []) == list(spec.cluster)
            if spec.partition_field:
                assert table.time_partitioning.field == spec.partition_field
                assert table.time_partitioning.type_ == spec.partition_type
            else:
                assert table.time_partitioning is None


def test_cold_start_on_bigquery_runs_no_ddl(settings, monkeypatch):
    """A function's cold start on BigQuery creates nothing: Terraform owns the tables and views."""
    import utils.runtime

    client = StandInClient()
    monkeypatch.setattr(utils.runtime, "open_warehouse", lambda s: BigQueryWarehouse(s, client=client))
    runtime = utils.runtime.Runtime.from_settings(settings.model_copy(update={"warehouse": "bigquery"}))
    assert isinstance(runtime.warehouse, BigQueryWarehouse) and client.calls == []


def test_an_arrow_table_is_loaded_like_its_rows(settings):
    """A column-wise page goes the same load-then-MERGE way as row dicts, with the same payload."""
    import pyarrow as pa

    by_rows, by_table = StandInClient(), StandInClient()
    BigQueryWarehouse(settings, client=by_rows).merge("sf_accounts", [{**r, "ingested_at": T0} for r in ROWS],
                                                      batch_id="b")
    BigQueryWarehouse(settings, client=by_table).merge(
        "sf_accounts", pa.Table.from_pylist([{**r, "ingested_at": T0} for r in ROWS]), batch_id="b")
    assert by_table.of("load")[0]["rows"] == by_rows.of("load")[0]["rows"]
    assert by_table.of("query")[0]["sql"] == by_rows.of("query")[0]["sql"]
