"""The whole local pipeline on BigQuery (the emulator) and on DuckDB gives the same tables, row for row.

`run_local run` runs as a process twice against the same deterministic sandboxes (SANDBOX_NOW): every source, entity
resolution, the views and the report; once with WAREHOUSE=duckdb, once with WAREHOUSE=bigquery and
BIGQUERY_API_ENDPOINT at the emulator. Then every table is read through Warehouse.query() on both and
compared by primary key.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from warehouse import BigQueryWarehouse, DuckDBWarehouse, Warehouse
from warehouse.schemas import load_table_specs, view_sql_files
from warehouse.sql_text import quoted

pytestmark = pytest.mark.emulator

ROOT = Path(__file__).resolve().parents[2]
# What a run stamps besides times: which run wrote a row, how long it took, its step timings.
RUN_STAMPS = {"run_id", "duration_seconds", "details"}
# etl_runs is keyed by random run ids: its runs are compared by what they were and what they did.
RUN_IDENTITY = ("source", "stream", "sync_type", "trigger", "status", "rows_fetched", "rows_loaded",
                "rows_rejected")


def run_pipeline(tmp_path: Path, name: str, **environment: str) -> str:
    """`run_local run` as a process with only loopback sandboxes; returns its output."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SALESFORCE_", "DIALPAD_", "HUBSPOT_", "GMAIL_", "WAREHOUSE", "BIGQUERY_"))}
    env.update({"DUCKDB_PATH": str(tmp_path / f"{name}.duckdb"), "ERRORS_FILE": str(tmp_path / f"{name}.jsonl"),
                "LOCAL_SECRETS_FILE": str(tmp_path / "no-secrets.json"), "SANDBOXES": "true",
                "GCP_PROJECT": "test-project", **environment})
    done = subprocess.run([sys.executable, "-m", "scripts.run_local", "run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def stamped_by_the_run(value: Any, anchor: datetime) -> bool:
    """A time after the sandboxes' anchor: the sandbox data lies before it, so the run's clock wrote it."""
    if isinstance(value, str) and len(value) >= 19 and value[4:5] == "-" and value[10:11] == "T":
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return False
    return isinstance(value, datetime) and value.tzinfo is not None and value > anchor


def comparable(table: str, rows: list[dict[str, Any]], key: tuple[str, ...],
               anchor: datetime) -> dict[tuple, dict[str, Any]]:
    """Rows by key, without what the run stamped (ingested_at, matched_at, a watermark taken from the clock)."""
    if table == "etl_runs":
        counted: dict[tuple, dict[str, Any]] = {}
        for row in rows:
            identity = tuple(row[c] for c in RUN_IDENTITY)
            counted.setdefault(identity, {"runs": 0})["runs"] += 1
        return counted
    return {tuple(row[k] for k in key if k not in RUN_STAMPS): {c: v for c, v in row.items()
                                         if c not in RUN_STAMPS and not stamped_by_the_run(v, anchor)}
            for row in rows}


def read_all(warehouse: Warehouse, anchor: datetime) -> dict[str, dict[tuple, dict[str, Any]]]:
    tables = {}
    for spec in load_table_specs().values():
        rows = warehouse.query(f"SELECT * FROM {quoted(warehouse.dataset, spec.name)}")
        tables[spec.name] = comparable(spec.name, rows, spec.primary_key, anchor)
    for path in view_sql_files():
        rows = warehouse.query(f"SELECT * FROM {quoted(warehouse.dataset, path.stem)}")
        kept = ({c: v for c, v in r.items() if c not in RUN_STAMPS and not stamped_by_the_run(v, anchor)}
                for r in rows)
        tables[path.stem] = {(i,): r for i, r in enumerate(sorted(kept, key=repr))}
    return tables


def differing_rows(left: dict[tuple, dict], right: dict[tuple, dict]) -> list[str]:
    out = [f"only on DuckDB: {k}" for k in left.keys() - right.keys()]
    out += [f"only on BigQuery: {k}" for k in right.keys() - left.keys()]
    for k in left.keys() & right.keys():
        columns = {c for c in left[k].keys() | right[k].keys() if left[k].get(c) != right[k].get(c)}
        if columns:
            out.append(f"{k}: " + ", ".join(f"{c}: {left[k].get(c)!r} != {right[k].get(c)!r}" for c in sorted(columns)))
    return out


def test_the_pipeline_writes_the_same_rows_on_bigquery_and_duckdb(tmp_path, bigquery_settings: Settings):
    """Every table and view holds the same rows on both warehouses; a second BigQuery run adds nothing."""
    # Both processes' sandboxes lay their data out around the same moment, so they serve the same records.
    now = datetime.now(timezone.utc)
    anchor = {"SANDBOX_NOW": now.isoformat(), "DATASET": bigquery_settings.dataset}
    bigquery = {"WAREHOUSE": "bigquery", "BIGQUERY_API_ENDPOINT": bigquery_settings.bigquery_api_endpoint, **anchor}
    run_pipeline(tmp_path, "duckdb", **anchor)
    run_pipeline(tmp_path, "bigquery", **bigquery)
    duck = DuckDBWarehouse(tmp_path / "duckdb.duckdb", bigquery_settings.dataset)
    bq = BigQueryWarehouse(bigquery_settings)
    try:
        on_duckdb, on_bigquery = read_all(duck, now), read_all(bq, now)
        assert sum(len(rows) for rows in on_duckdb.values()) > 10_000
        differences = {table: diff for table in on_duckdb
                       if (diff := differing_rows(on_duckdb[table], on_bigquery[table]))}
        assert {table: diff[:3] for table, diff in differences.items()} == {}

        before = bq.table_counts()
        run_pipeline(tmp_path, "bigquery-again", **bigquery)
        after = bq.table_counts()
        runs_added = after.pop("etl_runs") - before.pop("etl_runs")
        assert after == before and runs_added > 0
        assert read_all(bq, now)["sf_contacts"] == on_bigquery["sf_contacts"]
        scratch = [t.table_id for t in bq.client.list_tables(f"{bq.project}.{bq.work_dataset}")]
        assert scratch == []
    finally:
        duck.close()
        for dataset in (bq.dataset, bq.work_dataset):
            bq.client.delete_dataset(f"{bq.project}.{dataset}", delete_contents=True, not_found_ok=True)
