"""The local runner as `make run` calls it: fresh processes, the real DuckDB file, real HTTP."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import requests

from scripts.local_schedule import cron_matches, due_jobs, load_jobs
from utils.schemas import load_table_specs, view_sql_files

ROOT = Path(__file__).resolve().parents[2]


def local_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a laptop with no credentials, writing under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESFORCE_", "GMAIL_", "DIALPAD_", "HUBSPOT_"))}
    env.update({"DUCKDB_PATH": str(tmp_path / "wh.duckdb"), "ERRORS_FILE": str(tmp_path / "e.jsonl"),
                "WAREHOUSE": "duckdb", "LOCAL_SECRETS_FILE": str(tmp_path / "none.json")})
    return env


def run_local(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.run_local", *args], cwd=ROOT, env=local_env(tmp_path),
                          capture_output=True, text=True, timeout=600)


def counts(tmp_path: Path) -> dict[str, int]:
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        return {t: con.execute(f"SELECT COUNT(*) FROM sales_intelligence.{t}").fetchone()[0]
                for t in ("sf_accounts", "sf_contacts", "sf_leads", "sf_opportunities", "sf_activities",
                          "dialpad_calls", "hubspot_sequences", "hubspot_sequence_enrollments", "gmail_messages")}


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


def test_run_twice_uses_the_sandbox_and_adds_nothing_twice(tmp_path):
    """With no credentials `run` says it uses the sandbox, loads, resolves, reports; a second run adds nothing."""
    first = run_local(tmp_path, "run")
    assert first.returncode == 0, first.stderr
    assert re.search(r"salesforce Contact +success +fetched +2,000", first.stdout)
    assert "entity resolution success" in first.stdout and "rows per table:" in first.stdout
    assert "match rates by method:" in first.stdout and "dialpad  phone_exact" in first.stdout
    assert "gmail    email_exact" in first.stdout
    for source in ("salesforce", "gmail", "dialpad", "hubspot"):
        assert f"{source}: no credentials configured, using the loopback sandbox" in first.stdout
    after_first = counts(tmp_path)
    enrollments = after_first.pop("hubspot_sequence_enrollments")
    assert after_first == {"sf_accounts": 50, "sf_contacts": 2000, "sf_leads": 500, "sf_opportunities": 100,
                           "sf_activities": 1900, "dialpad_calls": 200, "hubspot_sequences": 12,
                           "gmail_messages": 300}
    assert enrollments > 0
    after_first["hubspot_sequence_enrollments"] = enrollments
    second = run_local(tmp_path, "run")
    assert second.returncode == 0, second.stderr
    assert counts(tmp_path) == after_first


def test_serve_answers_a_manual_trigger_and_refuses_a_bad_body(tmp_path):
    """`serve` prints a curl line per function; a POST runs that sync, a malformed body gets 400."""
    process = subprocess.Popen([sys.executable, "-m", "scripts.run_local", "serve", "--port", "0"], cwd=ROOT,
                               env=local_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while "serving" not in urls and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.match(r"(\w+): (http://127\.0\.0\.1:\d+/)$", line.strip())
            if match:
                urls[match.group(1)] = match.group(2)
            if line.startswith("serving"):
                urls["serving"] = ""
        assert {"salesforce_sync", "entity_resolution"} <= set(urls), process.stderr.read() if process.poll() else urls
        response = requests.post(urls["salesforce_sync"], json={"object_type": "Account"}, timeout=120)
        assert response.status_code == 200
        assert response.json()["runs"][0]["rows_loaded"] == 50
        bad = requests.post(urls["salesforce_sync"], data=b"{not json", timeout=30,
                            headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
        assert requests.post(urls["entity_resolution"], json={"mode": "full"}, timeout=120).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


def test_review_command_writes_a_manual_mapping(tmp_path):
    """`review approve` keeps the decision in manual_mappings."""
    result = run_local(tmp_path, "review", "approve", "--value-type", "email", "--value", "a@b.com",
                       "--candidate-type", "contact", "--candidate-id", "003X", "--reviewer", "me")
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT value, sf_contact_id, decision, is_active, created_by "
                           "FROM sales_intelligence.manual_mappings").fetchall()
    assert rows == [("a@b.com", "003X", "approved", True, "me")]


class TestCron:
    @pytest.mark.parametrize("expression, moment, fires", [
        ("0 * * * *", "2026-11-22T05:00", True),
        ("0 * * * *", "2026-11-22T05:01", False),
        ("0 */6 * * *", "2026-11-22T12:00", True),
        ("0 */6 * * *", "2026-11-22T13:00", False),
        ("0 3 * * 0", "2026-11-22T03:00", True),   # 2026-11-22 is a Sunday
        ("0 3 * * 7", "2026-11-22T03:00", True),
        ("0 3 * * 0", "2026-11-23T03:00", False),
        ("30 */4 * * *", "2026-11-22T08:30", True),
        ("0 9-17 * * 1-5", "2026-11-23T09:00", True),
        ("0 9-17 * * 1-5", "2026-11-22T09:00", False),
        ("0 0 1,15 * *", "2026-11-15T00:00", True),
    ])
    def test_cron_matches(self, expression, moment, fires):
        """Five-field cron: lists, ranges, steps, Sunday as 0 or 7."""
        assert cron_matches(expression, datetime.fromisoformat(moment)) is fires

    def test_bad_expressions_are_refused(self):
        """Wrong field counts and out-of-range values are errors."""
        for expression in ("* * * *", "61 * * * *", "0 0 0 * *"):
            with pytest.raises(ValueError):
                cron_matches(expression, datetime(2026, 1, 1))

    def test_the_schedule_at_three_on_a_sunday(self):
        """At 03:00 on a Sunday the weekly Salesforce full sync is due (and the hourly Gmail one)."""
        _, jobs = load_jobs()
        due = {job.name for job in due_jobs(jobs, datetime(2026, 11, 22, 3, 0))}
        assert due == {"salesforce-full-sync", "gmail-incremental-sync"}
