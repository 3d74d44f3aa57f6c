"""MERGEs into tables partitioned on an immutable column carry the batch's partition range in ON."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlglot

from warehouse.merge_sql import MAX_PARTITION_SPANS, PartitionSpans, batch_partitions, merge_sql, prunes
from warehouse.schemas import load_table_specs

T0 = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
IMMUTABLE = sorted(n for n, s in load_table_specs().items() if s.partition_field and s.partition_immutable)


def test_the_immutable_tables_are_the_event_tables():
    """Mail, calls, enrollments, runs and the large Salesforce tables prune their MERGEs; mutable columns do not."""
    assert set(IMMUTABLE) >= {"gmail_messages", "gmail_participants", "dialpad_calls", "etl_runs",
                              "hubspot_sequence_enrollments", "sf_contacts", "sf_leads", "sf_activities"}
    assert not set(IMMUTABLE) & {"rejected_records", "account_recommendations"}
    for spec in load_table_specs().values():
        assert spec.partition_field != "system_modstamp", f"{spec.name} is partitioned on a column that moves"
    for name in ("sf_accounts", "sf_contacts", "sf_leads", "sf_opportunities", "sf_activities"):
        assert load_table_specs()[name].cluster[0] == "id", f"{name} is not clustered on its MERGE key first"


@pytest.mark.parametrize("table", IMMUTABLE)
def test_generated_merge_has_the_range_predicate(table):
    """The ON clause bounds the partition column by the batch's lowest and highest value, as constants."""
    spec = load_table_specs()[table]
    column = spec.column(spec.partition_field)
    low, high = (date(2025, 1, 2), date(2025, 3, 4)) if column.type == "DATE" else (T0, T0 + timedelta(days=40))
    columns = list(dict.fromkeys([*spec.primary_key, spec.partition_field]))
    assert prunes(spec, columns)
    sql = merge_sql(spec, "ds", "`ds_scratch._staging_x`", columns, spec.primary_key, None,
                    batch_partitions(spec, [high, low, high]))
    on = sql.split("\nON ", 1)[1].split("\nWHEN", 1)[0]
    field = spec.partition_field
    assert re.search(rf"target\.{field} >= (TIMESTAMP|DATE) '2025-0[13]-0[12]", on), on
    assert "IS NULL" not in on
    sqlglot.parse_one(sql, read="bigquery")


def test_a_batch_with_missing_values_also_scans_the_null_partition():
    """Rows without a partition value can only match rows in the __NULL__ partition, which is added."""
    spec = load_table_specs()["dialpad_calls"]
    on = merge_sql(spec, "ds", "s", ["call_id", "started_at"], ["call_id"], None,
                   batch_partitions(spec, [T0, None])).split("\nON ", 1)[1]
    assert "OR target.started_at IS NULL" in on
    only_null = merge_sql(spec, "ds", "s", ["call_id", "started_at"], ["call_id"], None, batch_partitions(spec, [None]))
    assert "AND target.started_at IS NULL" in only_null


def test_tables_whose_partition_column_moves_are_not_pruned():
    """rejected_records (stamped per attempt) and merges that do not supply the column get no range."""
    specs = load_table_specs()
    assert not prunes(specs["rejected_records"], ["run_id", "source", "stream", "record_key", "rejected_at"])
    assert not prunes(specs["dialpad_calls"], ["call_id", "direction"])
    assert "BETWEEN" not in merge_sql(specs["sf_accounts"], "ds", "s", ["id"], ["id"], None, None)


def _calls(*days: int, suffix: str = "") -> list[dict]:
    return [{"call_id": f"c{d}", "started_at": T0 + timedelta(days=d), "direction": f"in{suffix}"} for d in days]


@pytest.mark.emulator
@pytest.mark.parametrize("which", ["duckdb", "bigquery"])
def test_a_pruned_merge_updates_and_inserts(which, request):
    """With the range in ON, rows of the batch's partitions are updated and new ones inserted, nothing doubled."""
    wh = request.getfixturevalue("warehouse" if which == "duckdb" else "bigquery_warehouse")
    wh.merge("dialpad_calls", _calls(0, 10, 30), batch_id="r1_0")
    wh.merge("dialpad_calls", _calls(10, 30, 45, suffix="-again"), batch_id="r2_0")
    rows = wh.query(f"SELECT call_id, direction FROM `{wh.dataset}.dialpad_calls` ORDER BY call_id")
    assert rows == [{"call_id": "c0", "direction": "in"}, {"call_id": "c10", "direction": "in-again"},
                    {"call_id": "c30", "direction": "in-again"}, {"call_id": "c45", "direction": "in-again"}]


def day(offset: int) -> datetime:
    return datetime(2025, 3, 1, tzinfo=timezone.utc) + timedelta(days=offset)


class TestPartitionSpans:
    def test_consecutive_partitions_form_one_span_of_whole_partitions(self):
        """Rows on three consecutive days are one span from the first day's start to the last day's end."""
        spec = load_table_specs()["dialpad_calls"]
        spans = batch_partitions(spec, [T0, T0 + timedelta(days=2, hours=3), T0 + timedelta(days=1), None])
        assert spans == PartitionSpans(((day(0), day(3)),), has_null=True)

    def test_scattered_partitions_are_separate_spans(self):
        """A batch touching a day in each of three months scans those days, not the months between."""
        spec = load_table_specs()["gmail_messages"]
        values = [T0, T0 + timedelta(days=40), T0 + timedelta(days=41, hours=5), T0 + timedelta(days=90)]
        spans = batch_partitions(spec, values)
        assert spans.spans == ((day(0), day(1)), (day(40), day(42)), (day(90), day(91)))
        on = merge_sql(spec, "ds", "s", ["mailbox", "message_id", "sent_at"], ["mailbox", "message_id"], None, spans)
        assert on.count("target.sent_at >= TIMESTAMP") == 3 and " OR " in on
        sqlglot.parse_one(on, read="bigquery")

    def test_month_partitions_span_whole_months(self):
        """A MONTH-partitioned table's spans start on the first of a month and end on the first of the next."""
        spec = load_table_specs()["sf_contacts"]
        spans = batch_partitions(spec, [T0, T0 + timedelta(days=20), T0 + timedelta(days=75)]).spans
        march, april, may, june = (datetime(2025, m, 1, tzinfo=timezone.utc) for m in (3, 4, 5, 6))
        assert spans == ((march, april), (may, june))

    def test_too_many_spans_are_joined_at_the_nearest_gaps(self):
        """At most MAX_PARTITION_SPANS spans; every value stays covered."""
        spec = load_table_specs()["dialpad_calls"]
        days = [T0 + timedelta(days=3 * n + (n % 5)) for n in range(200)]
        spans = batch_partitions(spec, days).spans
        assert len(spans) == MAX_PARTITION_SPANS
        assert all(any(start <= value < end for start, end in spans) for value in days)
