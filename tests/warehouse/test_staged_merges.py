"""On BigQuery a run's pages are staged by load jobs and merged in few MERGEs, with checkpoints that
survive a failure or a kill -9 (the BigQuery emulator; DuckDB merges every page as before)."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from observability.monitoring import ErrorPublisher
from pipeline.runner import run_sync
from tests.helpers import ListSource
from warehouse import BigQueryWarehouse

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
RECORDS, PAGE, FLUSH = 1000, 50, 200


def run(source: ListSource, warehouse, settings):
    return run_sync(source.job(sync_type="full"), warehouse=warehouse, publisher=ErrorPublisher(settings),
                    settings=settings)


def stored(wh) -> dict:
    (row,) = wh.query(f"SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids FROM `{wh.dataset}.sf_accounts`")
    (state,) = wh.query(f"SELECT watermark FROM `{wh.dataset}.sync_state` WHERE source = 'testsource'") or [{}]
    return {"rows": row["n"], "distinct": row["ids"], "watermark": state.get("watermark")}


def scratch_tables(wh: BigQueryWarehouse) -> list:
    return [wh.client.get_table(t.reference) for t in wh.client.list_tables(f"{wh.project}.{wh.work_dataset}")]


@pytest.fixture
def staged_settings(bigquery_settings):
    return bigquery_settings.model_copy(update={"merge_batch_size": PAGE, "merge_flush_rows": FLUSH})


def test_a_full_load_is_a_few_merges(bigquery_warehouse, staged_settings):
    """1,000 rows in 20 pages: 20 load jobs, ceil(1000 / 200) = 5 MERGEs and 5 checkpoints, not 20 of each."""
    summary = run(ListSource(RECORDS, page_size=PAGE), bigquery_warehouse, staged_settings)
    assert summary.status == "success" and stored(bigquery_warehouse) == {"rows": RECORDS, "distinct": RECORDS,
                                                                          "watermark": str(RECORDS - 1)}
    jobs = summary.details["warehouse_jobs"]["jobs"]
    assert jobs["load sf_accounts"]["statements"] == RECORDS // PAGE
    assert jobs["merge sf_accounts"]["statements"] == math.ceil(RECORDS / FLUSH)
    assert jobs["merge sync_state"]["statements"] == math.ceil(RECORDS / FLUSH)
    assert scratch_tables(bigquery_warehouse) == []


def test_a_failed_load_resumes_from_its_last_checkpoint(bigquery_warehouse, staged_settings):
    """A run failing at page 8 keeps the first 4 pages' checkpoint, drops what it staged after; the next run
    reads from there and ends with every row once."""
    source = ListSource(RECORDS, page_size=PAGE)
    source.fail_at_page = 7
    with pytest.raises(ConnectionAbortedError):
        run(source, bigquery_warehouse, staged_settings)
    assert stored(bigquery_warehouse) == {"rows": FLUSH, "distinct": FLUSH, "watermark": str(FLUSH - 1)}
    assert scratch_tables(bigquery_warehouse) == []
    source.fail_at_page = None
    summary = run(source, bigquery_warehouse, staged_settings)
    assert summary.rows_fetched == RECORDS - FLUSH
    assert stored(bigquery_warehouse) == {"rows": RECORDS, "distinct": RECORDS, "watermark": str(RECORDS - 1)}


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from config.settings import Settings
    from tests.helpers import ListSource
    from observability.monitoring import ErrorPublisher
    from pipeline.runner import run_sync
    from warehouse import BigQueryWarehouse

    settings = Settings.model_validate_json(sys.argv[1])
    source = ListSource({records}, page_size={page})
    pages = source.pages

    def killed_at_page_eight(watermark):
        for number, page in enumerate(pages(watermark)):
            if number == 7:
                os.kill(os.getpid(), signal.SIGKILL)
            yield page

    source.pages = killed_at_page_eight
    run_sync(source.job(sync_type="full"), warehouse=BigQueryWarehouse(settings),
             publisher=ErrorPublisher(settings), settings=settings)
""")


def test_a_killed_load_loses_nothing_and_resumes(bigquery_warehouse, staged_settings):
    """kill -9 at page 8: the last checkpoint's rows and watermark are stored, only expiring staging tables are
    left, and the next run completes with every row once."""
    script = KILLED_RUN.format(records=RECORDS, page=PAGE)
    # A short function timeout, so the killed run's lease lapses and its row is closed as abandoned soon.
    staged_settings = staged_settings.model_copy(update={"function_timeout_seconds": 1})
    done = subprocess.run([sys.executable, "-c", script, staged_settings.model_dump_json()], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "LOG_LEVEL": "WARNING"})
    assert done.returncode == -9, done.stderr[-2000:]
    assert stored(bigquery_warehouse) == {"rows": FLUSH, "distinct": FLUSH, "watermark": str(FLUSH - 1)}
    left = scratch_tables(bigquery_warehouse)
    assert left and all(t.table_id.startswith("_staging_sf_accounts_") for t in left)
    # They expire by the scratch dataset's default (the emulator drops a table's own expirationTime; the
    # stand-in test in test_warehouse_bigquery.py checks that each staging table is created with one).
    scratch = bigquery_warehouse.client.get_dataset(f"{bigquery_warehouse.project}.{bigquery_warehouse.work_dataset}")
    assert scratch.default_table_expiration_ms == staged_settings.staging_expiration_hours * 3_600_000
    wait_for_the_lease_to_lapse(bigquery_warehouse)
    summary = run(ListSource(RECORDS, page_size=PAGE), bigquery_warehouse, staged_settings)
    assert summary.status == "success" and summary.rows_fetched == RECORDS - FLUSH
    assert stored(bigquery_warehouse) == {"rows": RECORDS, "distinct": RECORDS, "watermark": str(RECORDS - 1)}
    statuses = [r["status"] for r in bigquery_warehouse.query(
        f"SELECT status FROM `{bigquery_warehouse.dataset}.etl_runs` ORDER BY started_at")]
    assert statuses == ["abandoned", "success"]


def wait_for_the_lease_to_lapse(wh) -> None:
    (lease,) = wh.query(f"SELECT expires_at FROM `{wh.dataset}.stream_leases`")
    while datetime.now(timezone.utc) <= lease["expires_at"]:
        time.sleep(0.2)
