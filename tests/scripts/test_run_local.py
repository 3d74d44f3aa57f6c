"""The local runner as `make run` calls it: a fresh process, the real DuckDB file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

from utils.schemas import load_table_specs, view_sql_files

ROOT = Path(__file__).resolve().parents[2]


def run_local(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DUCKDB_PATH": str(tmp_path / "wh.duckdb"), "ERRORS_FILE": str(tmp_path / "e.jsonl"),
           "WAREHOUSE": "duckdb", "LOCAL_SECRETS_FILE": str(tmp_path / "none.json")}
    return subprocess.run([sys.executable, "-m", "scripts.run_local", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_init_creates_every_table_with_its_bigquery_layout(tmp_path):
    """`init` writes the DuckDB file with every table, each commented with its partitioning and clustering."""
    result = run_local(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        comments = dict(con.execute("SELECT table_name, comment FROM duckdb_tables() "
                                    "WHERE schema_name = 'sales_intelligence'").fetchall())
    for spec in load_table_specs().values():
        assert spec.name in comments
        assert f"primary key: {', '.join(spec.primary_key)}" in comments[spec.name]
        if spec.partition_field:
            assert f"partition: {spec.partition_type}({spec.partition_field})" in comments[spec.name]
    assert f"created {len(load_table_specs()) + len(view_sql_files())} tables/views" in result.stdout


def test_second_init_creates_nothing(tmp_path):
    """Running it again finds every table in place."""
    run_local(tmp_path, "init")
    assert "(all existed)" in run_local(tmp_path, "init").stdout
