"""The scheduled checks' queries (bigquery/monitoring/*.sql), filled in as Terraform fills them, run on DuckDB
against seeded etl_runs and rejected_records rows: they return exactly what is stale or rising."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlglot

from config.schedules import schedules

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "bigquery" / "monitoring"


def rendered(name: str, dataset: str, **values: str) -> str:
    """The file with ${dataset} and the other placeholders replaced, as infrastructure/alerting.tf does."""
    text = (MONITORING / name).read_text()
    for key, value in {**values, "dataset": dataset}.items():
        text = text.replace("${" + key + "}", value)
    assert "${" not in text, "a placeholder is left"
    return text


def freshness_limits() -> str:
    """The limits as alerting.tf's local.freshness_limits writes them, from the sources and config/schedules.yaml."""
    limits = schedules()["freshness"]["stale_after_hours"]
    return "\n  UNION ALL ".join(f"SELECT '{source}' AS source, {hours * 3600} AS stale_after_seconds"
                                 for source, hours in limits.items())


@pytest.mark.parametrize("name", ["stale_streams.sql", "rejected_records_rise.sql"])
def test_each_check_is_bigquery_sql(name):
    """Each check, filled in, parses as BigQuery SQL."""
    sqlglot.parse_one(rendered(name, "sales_intelligence", limits=freshness_limits(), minimum="50"), read="bigquery")


class TestStaleStreams:
    def test_names_sources_without_a_success_and_streams_that_never_succeeded(self, warehouse):
        """Within each source's limit: a source with no success (or no run at all) is stale as a whole; a stream
        that ran and never succeeded is stale by name; a success just inside the limit is fresh."""
        now = datetime.now(timezone.utc)
        runs = [  # source, stream, status, hours ago
            ("gmail", "a@example.com", "success", 1), ("gmail", "b@example.com", "failed", 1),
            ("gmail", "b@example.com", "success", 3),  # outside gmail's 2 h
            ("salesforce", "Account", "success", 20),  # outside 12 h
            ("dialpad", "calls", "success", 47), ("dialpad", "calls", "abandoned", 2),
            ("entity_resolution", "all", "cancelled", 1),
            ("account_recommendations", None, "success", 30),
        ]  # hubspot, zoom, meet: no run at all
        warehouse.merge("etl_runs", [
            {"run_id": f"r{n}", "source": source, "stream": stream, "status": status,
             "started_at": now - timedelta(hours=hours), "updated_at": now}
            for n, (source, stream, status, hours) in enumerate(runs)])
        rows = warehouse.query(rendered("stale_streams.sql", warehouse.dataset, limits=freshness_limits()))
        assert {(r["source"], r["stream"]) for r in rows} == {
            ("gmail", "b@example.com"), ("salesforce", None), ("hubspot", None), ("zoom", None), ("meet", None),
            ("entity_resolution", None), ("entity_resolution", "all")}

    def test_nothing_is_stale_when_every_source_succeeded_in_time(self, warehouse):
        """Every source with a recent success: no row, so the check passes."""
        now = datetime.now(timezone.utc)
        sources = schedules()["freshness"]["stale_after_hours"]
        warehouse.merge("etl_runs", [
            {"run_id": f"r-{source}", "source": source, "stream": "s", "status": "success",
             "started_at": now - timedelta(minutes=30), "updated_at": now} for source in sources])
        assert warehouse.query(rendered("stale_streams.sql", warehouse.dataset, limits=freshness_limits())) == []


class TestRejectedRecordsRise:
    def test_names_sources_over_the_minimum_and_twice_their_usual(self, warehouse):
        """gmail: 60 today after 7 a day (a rise); salesforce: 60 after 40 a day (not twice); dialpad: 10 after none
        (under the minimum of 50)."""
        now = datetime.now(timezone.utc)
        rows = []

        def reject(source: str, count: int, days_ago: float) -> None:
            rows.extend({"run_id": "r", "source": source, "stream": "s", "record_key": f"{source}-{days_ago}-{n}",
                         "reason": "bad", "rejected_at": now - timedelta(days=days_ago)} for n in range(count))

        for source, today, before in (("gmail", 60, 7), ("salesforce", 60, 40), ("dialpad", 10, 0)):
            reject(source, today, 0.5)
            for day in range(1, 8):
                reject(source, before, day + 0.5)
        warehouse.merge("rejected_records", rows)
        found = warehouse.query(rendered("rejected_records_rise.sql", warehouse.dataset, minimum="50"))
        assert [(r["source"], r["last_day"]) for r in found] == [("gmail", 60)]
