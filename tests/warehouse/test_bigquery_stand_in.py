"""BigQueryWarehouse against a stand-in client: what the BigQuery emulator cannot check.

The emulator accepts a reused job id (BigQuery answers 409 Conflict) and ignores table expiration, so job
id reuse and expiry are checked here, against the calls the warehouse makes. Everything else runs against
the emulator in test_warehouse_bigquery_emulator.py.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import sqlglot
from google.api_core import exceptions
from google.cloud import bigquery

from warehouse import BigQueryWarehouse
from warehouse.merge_sql import POSITION_COLUMN

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


class FakeJob:
    def __init__(self, job_id: str, error: bool = False):
        self.job_id = job_id
        self.num_dml_affected_rows = 0
        self.state = "DONE"
        self.error_result = {"reason": "invalidQuery"} if error else None

    def result(self):
        if self.error_result:
            raise exceptions.BadRequest("the job failed")
        return []


class StandInClient:
    """Records what the warehouse asks of BigQuery; job ids already used raise Conflict, like BigQuery."""

    def __init__(self, failed_job_ids: set[str] = frozenset()):
        self.calls: list[tuple[str, dict]] = []
        self.job_ids: set[str] = set(failed_job_ids)
        self.failed_job_ids = set(failed_job_ids)

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

    def load_table_from_json(self, rows, destination, job_config=None, job_id=None, location=None):
        self.calls.append(("load", {"rows": list(rows), "destination": destination, "job_config": job_config,
                                    "job_id": job_id}))
        return self._job(job_id)

    def query(self, sql, job_config=None, job_id=None, location=None, **options):
        self.calls.append(("query", {"sql": sql, "job_config": job_config, "job_id": job_id, **options}))
        return self._job(job_id)

    def get_job(self, job_id, location=None):
        self.calls.append(("get_job", {"job_id": job_id}))
        return FakeJob(job_id, error=job_id in self.failed_job_ids)

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
    def test_loads_into_an_expiring_staging_table_then_merges(self, bq, client, settings):
        """A batch is a load job into an expiring staging table of the scratch dataset, one MERGE, then a drop."""
        bq.merge("sf_accounts", ROWS, batch_id="salesforce-20261122T231810-c76d5c50_0_0")
        (created,) = client.of("create_table")
        staging = created["table"]
        assert staging.dataset_id == settings.scratch_dataset == f"{settings.dataset}_scratch"
        assert re.fullmatch(r"_staging_sf_accounts_salesforce_20261122T231810_c76d5c50_0_0_\w+", staging.table_id)
        assert staging.expires is not None and staging.expires > datetime.now(timezone.utc)
        (load,) = client.of("load")
        config = load["job_config"]
        assert config.source_format == bigquery.SourceFormat.NEWLINE_DELIMITED_JSON
        assert config.write_disposition == bigquery.WriteDisposition.WRITE_APPEND
        assert [f.name for f in config.schema] == ["id", "name", "is_deleted", "system_modstamp",
                                                  "ingested_at", POSITION_COLUMN]
        assert load["destination"].endswith(f"{settings.scratch_dataset}.{staging.table_id}")
        assert load["rows"][0]["system_modstamp"] == "2025-01-01T00:00:00+00:00"
        (merge,) = client.of("query")
        assert merge["sql"].startswith(f"MERGE INTO `{settings.dataset}.sf_accounts` AS target")
        assert f"`{settings.scratch_dataset}.{staging.table_id}`" in merge["sql"]
        sqlglot.parse_one(merge["sql"], read="bigquery")
        assert [d["table"] for d in client.of("delete_table")] == [load["destination"]]

    def test_fixed_job_ids_are_never_retried_by_the_client(self, bq, client):
        """A query job with a fixed id passes job_retry=None (the client cannot re-run a job under its id)."""
        bq.merge("sf_accounts", ROWS, batch_id="run1_0_0")
        (merge,) = client.of("query")
        assert merge["job_id"] and "job_retry" in merge and merge["job_retry"] is None

    def test_merge_job_ids_identify_the_batch(self, settings):
        """The same rows under the same batch id get the same MERGE job id, whenever ingested_at was stamped."""
        first, second, other = StandInClient(), StandInClient(), StandInClient()
        BigQueryWarehouse(settings, client=first).merge("sf_accounts", ROWS, batch_id="run1_0_0")
        BigQueryWarehouse(settings, client=second).merge(
            "sf_accounts", [{**r, "ingested_at": datetime.now(timezone.utc)} for r in ROWS], batch_id="run1_0_0")
        BigQueryWarehouse(settings, client=other).merge("sf_accounts", ROWS[:1], batch_id="run1_0_0")
        def merge_id(c):
            return c.of("query")[0]["job_id"]

        assert merge_id(first) == merge_id(second) != merge_id(other)
        assert merge_id(first).startswith("merge_sf_accounts_run1_0_0_")

    def test_a_retried_batch_is_merged_once(self, bq, client):
        """A retry of a batch whose MERGE job exists waits for that job instead of merging again."""
        bq.merge("sf_accounts", ROWS, batch_id="b")
        bq.merge("sf_accounts", ROWS, batch_id="b")
        merges = client.of("query")
        assert len(merges) == 2 and merges[0]["job_id"] == merges[1]["job_id"]
        assert [g["job_id"] for g in client.of("get_job")] == [merges[0]["job_id"]]
        assert len({load["job_id"] for load in client.of("load")}) == 2  # each call stages its own copy

    def test_a_batch_whose_merge_failed_runs_again(self, settings):
        """An existing job that failed is not the batch's outcome: the MERGE runs again under a new id."""
        probe = StandInClient()
        BigQueryWarehouse(settings, client=probe).merge("sf_accounts", ROWS, batch_id="b")
        failed_id = probe.of("query")[0]["job_id"]
        client = StandInClient(failed_job_ids={failed_id})
        BigQueryWarehouse(settings, client=client).merge("sf_accounts", ROWS, batch_id="b")
        assert [q["job_id"] for q in client.of("query")] == [failed_id, f"{failed_id}_retry1"]

    def test_batches_without_an_id_are_never_taken_for_each_other(self, bq, client):
        """Reference data reloaded with no batch id (or in a new run) is merged again, never skipped."""
        rows = [{"domain": "gmail.com"}]
        bq.merge("ref_free_email_domains", rows)
        bq.merge("ref_free_email_domains", rows)
        first, second = (q["job_id"] for q in client.of("query"))
        assert first != second and client.of("get_job") == []

    def test_one_row_is_merged_from_parameters_without_a_staging_table(self, bq, client, settings):
        """A run's record or a watermark (one row): no load job, no staging table, a MERGE that references only
        its target (10 MB billed at least per table referenced), the values as typed parameters."""
        from pipeline.etl_runs import RunRecord

        record = RunRecord(run_id="dialpad-1", source="dialpad", stream="calls", sync_type="full", trigger="t")
        record.details = {"api": "rest"}
        bq.merge("etl_runs", [record.row()], batch_id="dialpad-1_open")
        assert client.of("load") == [] and client.of("create_table") == []
        (merge,) = client.of("query")
        assert merge["sql"].count("`") == 2 and f"`{settings.dataset}.etl_runs`" in merge["sql"]
        assert "PARSE_JSON(@v" in merge["sql"] and merge["job_retry"] is None
        types = {p.name: p.type_ for p in merge["job_config"].query_parameters}
        assert "TIMESTAMP" in types.values() and set(types.values()) <= {"STRING", "TIMESTAMP", "INT64", "FLOAT64"}
        sqlglot.parse_one(merge["sql"], read="bigquery")

    def test_a_runs_opening_record_is_appended_by_a_load_job_once(self, bq, client, settings):
        """Opening a run costs no DML: its row is a load job into etl_runs itself; a retry of it appends nothing."""
        from pipeline.etl_runs import RunRecord

        row = RunRecord(run_id="gmail-1", source="gmail", stream="a@b.com", sync_type="full", trigger="t").row()
        bq.append("etl_runs", [row], batch_id="gmail-1_open")
        bq.append("etl_runs", [row], batch_id="gmail-1_open")
        first, second = client.of("load")
        assert first["destination"] == f"{settings.gcp_project}.{settings.dataset}.etl_runs"
        assert first["job_config"].write_disposition == bigquery.WriteDisposition.WRITE_APPEND
        assert first["job_id"] == second["job_id"] and first["job_id"].startswith("append_etl_runs_gmail-1_open_")
        assert [g["job_id"] for g in client.of("get_job")] == [first["job_id"]] and client.of("query") == []

    def test_query_parameters_are_typed(self, bq, client):
        """Values go in as typed query parameters, never into the SQL text."""
        bq.execute("SELECT id FROM `sales_intelligence.sf_accounts` WHERE name = @name AND system_modstamp >= @since",
                   {"name": "O'Brien", "since": T0})
        (query,) = client.of("query")
        params = {p.name: p.type_ for p in query["job_config"].query_parameters}
        assert params == {"name": "STRING", "since": "TIMESTAMP"}
        assert "O'Brien" not in query["sql"]


def test_cold_start_on_bigquery_runs_no_ddl(settings, monkeypatch):
    """A function's cold start on BigQuery creates nothing: Terraform owns the tables and views."""
    import pipeline.runtime

    client = StandInClient()
    monkeypatch.setattr(pipeline.runtime, "open_warehouse", lambda s: BigQueryWarehouse(s, client=client))
    runtime = pipeline.runtime.Runtime.from_settings(settings.model_copy(update={"warehouse": "bigquery"}))
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
    merge_by_table, merge_by_rows = by_table.of("query")[0], by_rows.of("query")[0]
    assert merge_by_table["job_id"] == merge_by_rows["job_id"]
    staging = re.compile(r"_staging_\w+")
    assert staging.sub("", merge_by_table["sql"]) == staging.sub("", merge_by_rows["sql"])
