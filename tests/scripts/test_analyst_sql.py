"""`run_local sql`: the README's BigQuery SQL, as an analyst runs it, on DuckDB and on the BigQuery emulator."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import Settings
from scripts.analyst_sql import statements
from warehouse import DuckDBWarehouse, Warehouse
from warehouse.schemas import Column

ROOT = Path(__file__).resolve().parents[2]
README_DATASET = "sales_intelligence"
# The README's custom-field example names two fields an org would have configured.
CUSTOM_FIELDS = (Column("industry_segment__c", "STRING"), Column("renewal_date__c", "DATE"))


def readme_sql_blocks() -> list[str]:
    """Every ```sql block of README.md, as written."""
    return re.findall(r"```sql\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def run_sql(tmp_path: Path, *args: str, dataset: str = README_DATASET, **environment: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SALESFORCE_", "DIALPAD_", "HUBSPOT_", "GMAIL_", "WAREHOUSE", "BIGQUERY_"))}
    env.update({"DUCKDB_PATH": str(tmp_path / "wh.duckdb"), "ERRORS_FILE": str(tmp_path / "e.jsonl"),
                "LOCAL_SECRETS_FILE": str(tmp_path / "none.json"), "DATASET": dataset, **environment})
    return subprocess.run([sys.executable, "-m", "scripts.run_local", "sql", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def with_custom_fields(warehouse: Warehouse) -> None:
    warehouse.add_columns("sf_contacts", CUSTOM_FIELDS)


def test_the_readme_has_sql_examples():
    """The analyst guide shows runnable examples (one per view at least), each block split into statements."""
    blocks = readme_sql_blocks()
    text = "\n".join(blocks)
    assert sum(len(statements(b)) for b in blocks) >= 6
    for view in ("v_activity_timeline", "v_engagement_by_account", "v_unmatched_domains", "v_unmatched_addresses",
                 "v_match_quality", "account_recommendations", "v_opportunity_stage_path", "sf_custom_fields",
                 "sf_opportunity_field_history"):
        assert f"{README_DATASET}.{view}" in text, view


def test_every_readme_example_runs_on_duckdb(tmp_path):
    """Each README SQL block runs through `run_local sql` on the local warehouse: exit 0, a result per statement."""
    warehouse = DuckDBWarehouse(tmp_path / "wh.duckdb", README_DATASET)
    warehouse.ensure_schema()
    with_custom_fields(warehouse)
    warehouse.close()
    for block in readme_sql_blocks():
        done = run_sql(tmp_path, block)
        assert done.returncode == 0, f"{block}\n{done.stderr}"
        assert done.stdout.count(" rows)") + done.stdout.count(" row)") == len(statements(block))


@pytest.mark.emulator
def test_every_readme_example_runs_on_the_bigquery_emulator(tmp_path, bigquery_warehouse, bigquery_settings: Settings):
    """The same blocks, sent as written (dataset renamed to the test's own) to BigQuery's API."""
    with_custom_fields(bigquery_warehouse)
    environment = {"WAREHOUSE": "bigquery", "BIGQUERY_API_ENDPOINT": bigquery_settings.bigquery_api_endpoint,
                   "GCP_PROJECT": bigquery_settings.gcp_project}
    for block in readme_sql_blocks():
        block = block.replace(f"{README_DATASET}.", f"{bigquery_settings.dataset}.")
        done = run_sql(tmp_path, "--format", "json", block, dataset=bigquery_settings.dataset, **environment)
        assert done.returncode == 0, f"{block}\n{done.stderr}"


class TestFormats:
    def test_json_lines_carry_times_and_arrays(self, tmp_path, warehouse):
        """--format json prints one object per row: timestamps in ISO 8601, arrays as lists, NULL as null."""
        warehouse.close()
        done = run_sql(tmp_path, "--format", "json",
                       "SELECT 1 AS n, [1, 2] AS xs, TIMESTAMP '2025-03-01 10:00:00+00' AS t, CAST(NULL AS STRING) AS s",
                       DUCKDB_PATH=str(warehouse.path))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"n": 1, "xs": [1, 2], "t": "2025-03-01T10:00:00+00:00", "s": None}

    def test_csv_from_a_file_with_a_header(self, tmp_path, warehouse):
        """--file reads the SQL; --format csv prints a header and the rows."""
        warehouse.close()
        query = tmp_path / "q.sql"
        query.write_text("-- two rows\nSELECT x AS value FROM UNNEST(['a,b', 'c']) AS x ORDER BY x;\n")
        done = run_sql(tmp_path, "--format", "csv", "--file", str(query), DUCKDB_PATH=str(warehouse.path))
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["value", '"a,b"', "c"]

    def test_a_refused_statement_is_one_line_and_exit_1(self, tmp_path, warehouse):
        """A statement the warehouse refuses: its number and the warehouse's reason on one line, exit code 1."""
        warehouse.close()
        done = run_sql(tmp_path, "SELECT 1 AS ok; SELECT * FROM sales_intelligence.no_such_table",
                       DUCKDB_PATH=str(warehouse.path))
        assert done.returncode == 1
        assert done.stderr.startswith("error: statement 2 of 2:") and "no_such_table" in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1

    def test_no_warehouse_is_not_created(self, tmp_path):
        """`sql` reads an existing warehouse and never creates an empty one."""
        done = run_sql(tmp_path, "SELECT 1")
        assert done.returncode == 1 and "no warehouse at" in done.stderr
        assert not (tmp_path / "wh.duckdb").exists()
