"""The job ledger: each run's warehouse jobs, with what BigQuery reports they cost, in its etl_runs row."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from observability.logger import log_context
from warehouse import BigQueryWarehouse
from warehouse.job_ledger import JobLedger, statement_kind, statement_target

ROWS = [{"id": i, "name": f"Account {i}", "is_deleted": False, "system_modstamp": datetime(2025, 1, 1, tzinfo=timezone.utc)}
        for i in ("A", "B")]


class TestStatements:
    @pytest.mark.parametrize("sql, kind, table", [
        ("MERGE INTO `ds.sf_accounts` AS target USING (SELECT 1 FROM x) AS source ON TRUE", "merge", "sf_accounts"),
        ("-- header naming FROM nothing\nCREATE OR REPLACE TABLE w._er_scope_r AS SELECT 1 FROM ds.t", "create",
         "_er_scope_r"),
        ("DROP TABLE IF EXISTS `w._er_scope_1`", "drop", "_er_scope_1"),
        ("UPDATE ds.gmail_participants AS p SET x = 1 FROM w.r WHERE TRUE", "update", "gmail_participants"),
        ("SELECT COUNT(*) AS n FROM `ds.etl_runs`", "select", "etl_runs"),
    ])
    def test_kind_and_table(self, sql, kind, table):
        """A statement is counted under its first keyword and the table it is about."""
        assert (statement_kind(sql), statement_target(sql)) == (kind, table)

    def test_nothing_is_counted_outside_a_run(self):
        """Jobs outside a run's log context belong to no run."""
        ledger = JobLedger()
        ledger.record("merge", "t", 3)
        assert ledger.take("any") == {}


class CostlyJob:
    """A finished BigQuery job as the client returns it, with the statistics BigQuery reports."""

    total_bytes_processed = 52_428_800
    total_bytes_billed = 52_428_800
    slot_millis = 1_234
    num_dml_affected_rows = 1
    state = "DONE"
    error_result = None

    def result(self):
        return []


class CostReportingClient:
    """Stands in for BigQuery's billing, which the emulator does not report (it says 0 bytes)."""

    def create_table(self, table, exists_ok=False):
        pass

    def delete_table(self, table, not_found_ok=False):
        pass

    def load_table_from_json(self, rows, destination, **kwargs):
        return CostlyJob()

    def query(self, sql, **kwargs):
        return CostlyJob()


def test_the_ledger_is_filled_from_the_jobs_statistics(settings):
    """Bytes processed and billed and slot ms come from each job's statistics, per kind and table."""
    wh = BigQueryWarehouse(settings, client=CostReportingClient())
    with log_context(run_id="salesforce-1"):
        wh.merge("sf_accounts", ROWS, batch_id="salesforce-1_0_0")
        wh.execute("UPDATE `sales_intelligence.sf_accounts` SET name = 'x' WHERE FALSE")
    ledger = wh.ledger.take("salesforce-1")
    assert ledger["jobs"]["merge sf_accounts"] == {"statements": 1, "rows": 2, "bytes_processed": 52_428_800,
                                                   "bytes_billed": 52_428_800, "slot_ms": 1_234}
    assert ledger["jobs"]["update sf_accounts"]["statements"] == 1
    assert ledger["totals"]["bytes_billed"] == 3 * 52_428_800 and ledger["totals"]["statements"] == 3
    assert wh.ledger.take("salesforce-1") == {}


@pytest.mark.emulator
def test_a_runs_jobs_reach_its_etl_runs_row(bigquery_warehouse, bigquery_settings):
    """A run on BigQuery (the emulator) records its loads, MERGEs and queries in its own etl_runs details."""
    from observability.monitoring import ErrorPublisher
    from pipeline.etl_runs import RunRecord, tracked_run

    wh = bigquery_warehouse
    record = RunRecord(run_id="salesforce-20261123T000000-abcdef12", source="salesforce", stream="Account",
                       sync_type="full", trigger="test")
    with log_context(run_id=record.run_id):
        with tracked_run(wh, ErrorPublisher(bigquery_settings), record):
            wh.merge("sf_accounts", ROWS, batch_id=f"{record.run_id}_0_0")
            wh.query(f"SELECT COUNT(*) AS n FROM `{wh.dataset}.sf_accounts`")
    (row,) = wh.query(f"SELECT details FROM `{wh.dataset}.etl_runs` WHERE run_id = @run_id",
                      {"run_id": record.run_id})
    jobs = row["details"]["warehouse_jobs"]["jobs"]
    assert jobs["load sf_accounts"]["rows"] == 2 and jobs["merge sf_accounts"]["statements"] == 1
    assert jobs["select sf_accounts"]["statements"] == 1


@pytest.mark.emulator
@pytest.mark.parametrize("which", ["duckdb", "bigquery"])
def test_cost_is_summed_per_source_and_day(which, request):
    """report's cost table: the runs' ledgers summed per source and day, on both warehouses."""
    from pipeline.etl_runs import RunRecord
    from warehouse.job_ledger import cost_by_source_and_day

    wh = request.getfixturevalue("warehouse" if which == "duckdb" else "bigquery_warehouse")
    for n, billed in enumerate((10_485_760, 20_971_520)):
        record = RunRecord(run_id=f"dialpad-{n}", source="dialpad", stream="calls", sync_type="incremental",
                           trigger="test")
        record.details = {"warehouse_jobs": {"totals": {"statements": 3, "rows": 5, "bytes_processed": billed,
                                                        "bytes_billed": billed, "slot_ms": 10}}}
        wh.merge("etl_runs", [record.row()], batch_id=f"{record.run_id}_open")
    (day,) = cost_by_source_and_day(wh)
    assert (day["source"], day["runs"], day["statements"], day["bytes_billed"], day["slot_ms"]) == \
        ("dialpad", 2, 6, 31_457_280, 20)
