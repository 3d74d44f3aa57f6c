"""The analyst views: every column described in the view's DDL (BigQuery keeps the descriptions), the
descriptions naming exactly the columns the view returns, and the DDL running on DuckDB as transpiled."""
from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from warehouse.duckdb_warehouse import to_duckdb_sql
from warehouse.schemas import view_sql_files


def described_columns(text: str) -> dict[str, str]:
    """Column name -> description of a CREATE VIEW statement's column list, parsed as BigQuery."""
    create = sqlglot.parse_one(text.replace("${dataset}", "sales_intelligence"), read="bigquery")
    assert isinstance(create, exp.Create) and create.kind == "VIEW"
    described = {}
    for column in create.this.expressions:
        options = [p for c in column.constraints for p in c.kind.expressions if p.name == "description"]
        described[column.name] = options[0].args["value"].this if options else ""
    return described


@pytest.mark.parametrize("path", view_sql_files(), ids=lambda p: p.stem)
def test_every_view_column_has_a_description(path, warehouse):
    """The view's column list names each column it returns, in order, each with a non-empty description."""
    described = described_columns(path.read_text())
    returned = list(warehouse.table_columns(path.stem))
    assert list(described) == returned
    assert all(described.values()), [c for c, d in described.items() if not d]


def test_descriptions_are_dropped_for_duckdb_only():
    """DuckDB gets the column list without OPTIONS (it has no column descriptions); BigQuery runs the file as written."""
    for path in view_sql_files():
        text = path.read_text().replace("${dataset}", "sales_intelligence")
        assert "OPTIONS(description=" in text and "OPTIONS" not in to_duckdb_sql(text)


def _view_select(name: str) -> exp.Expression:
    path = next(p for p in view_sql_files() if p.stem == name)
    return sqlglot.parse_one(path.read_text().replace("${dataset}", "sales_intelligence"), read="bigquery").expression


def _lineage_leaves(view: str, column: str) -> set[tuple[str, str]]:
    """The (table, column) pairs a view column comes from, each step on the way a bare column (nothing computed:
    a filter on the view column is a filter on the table column, which BigQuery prunes partitions by)."""
    from sqlglot.lineage import lineage

    leaves = set()
    for node in lineage(column, _view_select(view), None, dialect="bigquery").walk():
        if isinstance(node.expression, exp.Table):
            leaves.add((node.expression.name, node.name.split(".")[-1]))
        else:
            assert isinstance(node.expression.unalias(), exp.Column), node.expression.sql("bigquery")
    return leaves


class TestPartitionColumnsReachTheViews:
    """EXPLAIN-free: the views expose each source table's partition column unchanged, so a date filter on the view
    column reaches the tables (BigQuery prunes on constant filters of the partition column)."""

    def test_the_timeline_exposes_every_activity_tables_partition_column(self):
        """recorded_at is sent_at, started_at, Salesforce created_date and enrolled_at as they are: each its
        table's partition column (tables.yaml)."""
        from warehouse.schemas import table_spec

        leaves = _lineage_leaves("v_activity_timeline", "recorded_at")
        assert leaves == {("gmail_participants", "sent_at"), ("dialpad_calls", "started_at"),
                          ("meeting_participants", "started_at"), ("sf_activities", "created_date"),
                          ("hubspot_sequence_enrollments", "enrolled_at")}
        assert all(table_spec(table).partition_field == column for table, column in leaves)

    def test_nothing_in_the_timeline_reads_an_activity_table_outside_the_filtered_branch(self):
        """Each activity table is read once per source's branch and nowhere else (a second, unfiltered read would
        scan every partition; the meeting tables, shared by Zoom and Meet, once in each of their branches, each
        filtered on its source); the mail window partitions by sent_at (a filter on it passes the window) and the
        messages join on it."""
        select = _view_select("v_activity_timeline")
        activity = ("gmail_participants", "gmail_messages", "dialpad_calls", "meeting_participants", "meetings",
                    "sf_activities", "hubspot_sequence_enrollments")
        reads: dict[str, list[str]] = {}
        for table in select.find_all(exp.Table):
            if table.name in activity:
                branch = table.find_ancestor(exp.CTE)
                reads.setdefault(table.name, []).append(branch.alias if branch else "(outside every branch)")
        assert set(reads) == set(activity)
        for table, branches in reads.items():
            assert len(branches) == len(set(branches)) and "(outside every branch)" not in branches, (table, branches)
        assert sorted(reads["meeting_participants"]) == ["meet", "zoom"]
        (window,) = [w for w in select.find_all(exp.Window) if w.find_ancestor(exp.CTE).alias == "gmail"]
        assert "p.sent_at" in [e.sql("bigquery") for e in window.args["partition_by"]]
        gmail = next(c for c in select.find_all(exp.CTE) if c.alias == "gmail")
        assert "m.sent_at = p.sent_at" in gmail.sql("bigquery")

    def test_occurred_at_of_the_contact_activity_view_is_the_partition_column(self):
        """v_contact_activity's occurred_at is sent_at and started_at as they are; messages join on sent_at too, and
        meetings on their started_at."""
        assert _lineage_leaves("v_contact_activity", "occurred_at") == {
            ("gmail_participants", "sent_at"), ("dialpad_calls", "started_at"), ("meeting_participants", "started_at")}
        select = _view_select("v_contact_activity").sql("bigquery")
        assert "m.sent_at = p.sent_at" in select and "m.started_at = p.started_at" in select


def test_a_recorded_at_filter_keeps_what_was_recorded_then(warehouse):
    """A Task logged on day 10 about day 2 and an Event created on day 1 for day 20: recorded_at >= day 5 keeps the
    Task (recorded then) and leaves the Event (occurred_at says when each happened)."""
    from datetime import datetime, timedelta, timezone

    def day(n):

        return datetime(2026, 5, 1, tzinfo=timezone.utc) + timedelta(days=n)

    warehouse.merge("sf_activities", [
        {"id": "00TLATE", "activity_type": "Task", "activity_at": day(2), "created_date": day(10), "is_deleted": False,
         "system_modstamp": day(10)},
        {"id": "00UPLAN", "activity_type": "Event", "activity_at": day(20), "created_date": day(1), "is_deleted": False,
         "system_modstamp": day(1)},
        {"id": "02sMAIL", "activity_type": "EmailMessage", "activity_at": day(6), "created_date": day(6),
         "is_deleted": False, "is_incoming": False, "to_emails": ["a@x.com", "b@x.com", "a@x.com"],
         "system_modstamp": day(6)}])
    rows = warehouse.query(
        "SELECT activity_id, occurred_at, recorded_at, person_address FROM sales_intelligence.v_activity_timeline "
        "WHERE recorded_at >= @since ORDER BY activity_id, person_address", {"since": day(5)})
    assert [(r["activity_id"], r["occurred_at"], r["recorded_at"], r["person_address"]) for r in rows] == [
        ("00TLATE", day(2), day(10), None), ("02sMAIL", day(6), day(6), "a@x.com"), ("02sMAIL", day(6), day(6), "b@x.com")]
