"""BigQueryWarehouse with the real google-cloud-bigquery client against the BigQuery emulator."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from google.api_core import exceptions

from entity_resolution.matcher import ResolutionRequest, ensure_free_mail_reference, resolve_entities, sql
from pipeline.etl_runs import RunRecord
from pipeline.runtime import Runtime
from warehouse import BigQueryWarehouse, DuckDBWarehouse, WarehouseUnavailable
from warehouse.schemas import load_table_specs

pytestmark = pytest.mark.emulator

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
RUN = "salesforce-20261122T231810-c76d5c50"
ACCOUNTS = [{"id": "A", "name": "Acme", "is_deleted": False, "system_modstamp": T0},
            {"id": "B", "name": "Beta", "is_deleted": False, "system_modstamp": T0}]

_QUOTED_OR_STRING = re.compile(r"`[^`]*`|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|--[^\n]*|/\*.*?\*/", re.S)
# An unquoted path whose part after a dot carries a dash: GoogleSQL allows a dash only in a path's first part.
_DASH_PAST_FIRST_PART = re.compile(r"\b[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*\.[A-Za-z_]\w*-[\w-]*")


def unquoted_dashed_paths(text: str) -> list[str]:
    """Table paths in SQL text with an unquoted dash past their first part (a syntax error on BigQuery)."""
    return _DASH_PAST_FIRST_PART.findall(_QUOTED_OR_STRING.sub(" ", text))


class RecordingClient:
    """The real client, recording the SQL of every query job it starts."""

    def __init__(self, client):
        self._client = client
        self.statements: list[str] = []

    def query(self, sql_text, *args, **kwargs):
        self.statements.append(sql_text)
        return self._client.query(sql_text, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def scratch_tables(wh: BigQueryWarehouse) -> list:
    return [wh.client.get_table(t.reference) for t in wh.client.list_tables(f"{wh.project}.{wh.work_dataset}")]


class TestTablePaths:
    def test_the_check_finds_the_dashed_staging_path(self):
        """The check catches the very path that failed on BigQuery, and passes it quoted."""
        bad = f"MERGE INTO sales_intelligence.etl_runs AS t USING sales_intelligence._staging_etl_runs_{RUN}_0 AS s"
        assert unquoted_dashed_paths(bad) == [f"sales_intelligence._staging_etl_runs_{RUN}_0"]
        assert unquoted_dashed_paths(f"SELECT 1 FROM `sales_intelligence._staging_{RUN}` WHERE x = 'a.b-c'") == []
        assert unquoted_dashed_paths("SELECT * FROM my-project.sales_intelligence.etl_runs") == []

    def test_no_statement_has_an_unquoted_dashed_path(self, bigquery_warehouse, bigquery_settings):
        """Every statement of merges and of an entity-resolution run quotes its dashed paths."""
        recording = RecordingClient(bigquery_warehouse.client)
        bigquery_warehouse.client = recording
        bigquery_warehouse.merge("sf_accounts", ACCOUNTS, batch_id=f"{RUN}_0_0")
        runtime = Runtime.around(bigquery_settings, bigquery_warehouse)
        result = resolve_entities(ResolutionRequest(sync_type="full"), runtime)
        assert result["status"] == "success"
        assert any("_er_scope_entity_resolution_" in s for s in recording.statements)
        offending = {s[:120]: unquoted_dashed_paths(s) for s in recording.statements if unquoted_dashed_paths(s)}
        assert offending == {}


class TestMerge:
    def test_merges_a_batch_named_after_a_run(self, bigquery_warehouse):
        """A batch whose id carries the run id's dashes merges, and a newer version replaces the older."""
        wh = bigquery_warehouse
        wh.merge("sf_accounts", ACCOUNTS, batch_id=f"{RUN}_0_0")
        wh.merge("sf_accounts", [{**ACCOUNTS[0], "name": "Acme Inc", "system_modstamp": datetime(2025, 2, 1, tzinfo=timezone.utc)}],
                 batch_id=f"{RUN}_1_0")
        rows = wh.query(f"SELECT id, name FROM `{wh.dataset}.sf_accounts` ORDER BY id")
        assert rows == [{"id": "A", "name": "Acme Inc"}, {"id": "B", "name": "Beta"}]
        assert scratch_tables(wh) == []

    def test_query_shapes_match_duckdb(self, bigquery_warehouse, warehouse):
        """JSON reads back as a dict and a NULL repeated field as [] on both warehouses."""
        record = RunRecord(run_id=RUN, source="salesforce", stream="Account", sync_type="full", trigger="http")
        record.details = {"api": "bulk", "pages": [1, 2]}
        row = record.row()
        message = {"mailbox": "a@x.com", "message_id": "m1", "sent_at": T0, "is_deleted": False}
        results = []
        for wh in (bigquery_warehouse, warehouse):
            wh.merge("etl_runs", [row], batch_id=f"{RUN}_open")
            wh.merge("gmail_messages", [message], batch_id=f"{RUN}_m")
            results.append((wh.query(f"SELECT details FROM `{wh.dataset}.etl_runs`"),
                            wh.query(f"SELECT label_ids, attachments FROM `{wh.dataset}.gmail_messages`")))
        assert results[0] == results[1]
        assert results[0] == ([{"details": {"api": "bulk", "pages": [1, 2]}}], [{"label_ids": [], "attachments": []}])

    def test_a_failed_merge_leaves_only_expiring_tables(self, bigquery_warehouse, monkeypatch):
        """A MERGE that fails drops its staging table; nothing but expiring tables is left in the scratch dataset."""
        from warehouse import staged_merges

        monkeypatch.setattr(staged_merges, "merge_sql", lambda *a, **k: "MERGE INTO `nowhere.missing` AS t "
                            "USING (SELECT 1 AS id) AS s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)")
        with pytest.raises(exceptions.GoogleAPICallError):
            bigquery_warehouse.merge("sf_accounts", ACCOUNTS, batch_id=f"{RUN}_0_0")
        assert all(t.expires is not None for t in scratch_tables(bigquery_warehouse))
        assert [t.table_id for t in scratch_tables(bigquery_warehouse)] == []

    def test_a_failed_resolution_drops_its_work_tables(self, bigquery_warehouse, bigquery_settings, monkeypatch):
        """Entity resolution failing half-way leaves none of its work tables behind."""
        runtime = Runtime.around(bigquery_settings, bigquery_warehouse)
        execute = bigquery_warehouse.execute

        def failing_at_resolve(statement, params=None):
            if re.search(r"CREATE OR REPLACE TABLE \S*_er_resolution_", statement):
                raise RuntimeError("injected failure in 03_resolve")
            return execute(statement, params)

        monkeypatch.setattr(bigquery_warehouse, "execute", failing_at_resolve)
        with pytest.raises(RuntimeError, match="injected"):
            resolve_entities(ResolutionRequest(sync_type="full"), runtime)
        assert [t.table_id for t in scratch_tables(bigquery_warehouse)] == []

    def test_reference_data_reloads_into_an_emptied_table(self, bigquery_warehouse):
        """The free-mail reference list loads again after its table was emptied (a new run, a new batch)."""
        wh = bigquery_warehouse
        ensure_free_mail_reference(wh, "entity_resolution-1")
        loaded = wh.query(f"SELECT COUNT(*) AS n FROM `{wh.dataset}.ref_free_email_domains`")[0]["n"]
        wh.execute(f"DELETE FROM `{wh.dataset}.ref_free_email_domains` WHERE TRUE")
        ensure_free_mail_reference(wh, "entity_resolution-2")
        assert wh.query(f"SELECT COUNT(*) AS n FROM `{wh.dataset}.ref_free_email_domains`")[0]["n"] == loaded > 1000


def test_overlapping_resolutions_use_their_own_work_tables(bigquery_warehouse):
    """Two runs' statements name disjoint work tables, so a Cloud Scheduler retry never overwrites another run's."""
    work = re.compile(re.escape(bigquery_warehouse.work_dataset) + r"\._er_\w+")
    first = {t for name in ("01_scope", "03_resolve") for t in work.findall(sql(name, bigquery_warehouse, "er-1"))}
    second = {t for name in ("01_scope", "03_resolve") for t in work.findall(sql(name, bigquery_warehouse, "er-2"))}
    assert first and second and first.isdisjoint(second)


class TestEnsureSchema:
    def test_creates_partitioned_clustered_tables_once(self, bigquery_warehouse):
        """Every table has tables.yaml's partitioning and clustering; a second call creates nothing."""
        wh = bigquery_warehouse
        for spec in load_table_specs().values():
            table = wh.client.get_table(f"{wh.project}.{wh.dataset}.{spec.name}")
            assert [f.name for f in table.schema] == list(spec.column_names)
            assert (table.clustering_fields or []) == list(spec.cluster)
            if spec.partition_field:
                assert table.time_partitioning.field == spec.partition_field
            else:
                assert table.time_partitioning is None
        scratch = wh.client.get_dataset(f"{wh.project}.{wh.work_dataset}")
        assert scratch.default_table_expiration_ms == int(wh.staging_lifetime.total_seconds() * 1000)
        assert wh.ensure_schema(fresh_tier=False) == []

    def test_adds_the_columns_a_table_lacks(self, bigquery_warehouse):
        """A column in the schema files but not in the deployed table is added, and reported."""
        wh = bigquery_warehouse
        table = wh.client.get_table(f"{wh.project}.{wh.dataset}.manual_mappings")
        wh.client.delete_table(table)
        table.schema = [f for f in table.schema if f.name != "note"]
        wh.client.create_table(table)
        assert wh.ensure_schema(fresh_tier=False) == ["manual_mappings.note"]
        assert "note" in {f.name for f in wh.client.get_table(table.reference).schema}

    def test_refuses_a_dataset_in_another_location(self, bigquery_settings):
        """An existing dataset in another location is named, with the setting to change."""
        from google.cloud import bigquery

        wh = BigQueryWarehouse(bigquery_settings)
        dataset = bigquery.Dataset(f"{wh.project}.{wh.dataset}")
        dataset.location = "EU"
        wh.client.create_dataset(dataset)
        try:
            with pytest.raises(WarehouseUnavailable, match="location EU.*BIGQUERY_LOCATION is US"):
                wh.ensure_schema()
        finally:
            wh.client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def test_duckdb_adds_the_columns_a_table_lacks(warehouse: DuckDBWarehouse):
    """The embedded warehouse adds a missing column the same way, and reports it."""
    warehouse.execute(f"ALTER TABLE {warehouse.dataset}.manual_mappings DROP COLUMN note")
    assert warehouse.ensure_schema() == ["manual_mappings.note"]
    assert warehouse.ensure_schema() == []


def test_an_unreachable_endpoint_names_the_setting(settings):
    """Nothing listening at BIGQUERY_API_ENDPOINT is one clear error, at once."""
    from tests.conftest import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(WarehouseUnavailable, match=f"BIGQUERY_API_ENDPOINT={endpoint} cannot be reached"):
        BigQueryWarehouse(settings.model_copy(update={"warehouse": "bigquery", "bigquery_api_endpoint": endpoint}))
