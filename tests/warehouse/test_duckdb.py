"""The DuckDB warehouse: MERGE semantics the whole pipeline relies on."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from warehouse.schemas import load_table_specs

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def account(id_: str, name: str, minutes: int = 0) -> dict:
    return {"id": id_, "name": name, "is_deleted": False, "system_modstamp": T0 + timedelta(minutes=minutes)}


def accounts(warehouse) -> dict[str, str]:
    return {r["id"]: r["name"] for r in warehouse.query("SELECT id, name FROM sales_intelligence.sf_accounts")}


class TestEnsureSchema:
    def test_creates_every_table_once(self, warehouse):
        """Every table of tables.yaml exists, and a second call creates nothing."""
        assert set(load_table_specs()) <= warehouse.list_tables()
        assert [t for t in warehouse.ensure_schema() if t in load_table_specs()] == []

    def test_makes_the_fresh_tier_of_every_pushed_table_once(self, tmp_path):
        """ensure_schema makes each pushed table's <table>_fresh and <table>_live (the emulator's test warehouse
        goes without them: seconds a table there); a second call makes nothing, and a table grown a column has it
        in its fresh table and live view."""
        from warehouse import DuckDBWarehouse
        from warehouse.fresh import fresh_name, live_name, pushed_tables
        from warehouse.schemas import Column

        wh = DuckDBWarehouse(tmp_path / "fresh.duckdb")
        made = wh.ensure_schema()
        assert [n for n in made if n.endswith(("_fresh", "_live"))] == \
            [name for t in pushed_tables() for name in (fresh_name(t), live_name(t))]
        assert wh.ensure_schema() == []
        wh.add_columns("sf_contacts", [Column("region__c", "STRING", "NULLABLE")])
        wh.ensure_fresh_tier()
        assert "region__c" in wh.table_columns("sf_contacts_fresh") and "region__c" in wh.table_columns("sf_contacts_live")
        wh.close()


class TestMerge:
    def test_same_batch_twice_leaves_same_rows(self, warehouse):
        """Merging one batch twice is idempotent."""
        batch = [account("A", "Acme"), account("B", "Beta")]
        warehouse.merge("sf_accounts", batch)
        first = warehouse.query("SELECT * EXCEPT (ingested_at) FROM sales_intelligence.sf_accounts ORDER BY id")
        warehouse.merge("sf_accounts", batch)
        again = warehouse.query("SELECT * EXCEPT (ingested_at) FROM sales_intelligence.sf_accounts ORDER BY id")
        assert again == first and len(again) == 2

    def test_two_versions_in_a_batch_keep_the_newer(self, warehouse):
        """Within one batch the higher version wins, whatever the order."""
        warehouse.merge("sf_accounts", [account("A", "new", minutes=5), account("A", "old", minutes=1)])
        assert accounts(warehouse) == {"A": "new"}

    def test_equal_versions_keep_the_later_row(self, warehouse):
        """On a version tie the row later in the batch wins (deterministic)."""
        warehouse.merge("sf_accounts", [account("A", "first"), account("A", "second")])
        assert accounts(warehouse) == {"A": "second"}

    def test_older_replay_does_not_overwrite(self, warehouse):
        """A replayed older version leaves the newer row in place."""
        warehouse.merge("sf_accounts", [account("A", "new", minutes=10)])
        warehouse.merge("sf_accounts", [account("A", "stale", minutes=2)])
        assert accounts(warehouse) == {"A": "new"}

    def test_failed_merge_leaves_table_unchanged(self, warehouse):
        """A batch that fails half-way (a NOT NULL column missing in one row) changes nothing."""
        warehouse.merge("sf_accounts", [account("A", "Acme")])
        broken = [account("A", "changed", minutes=3), account("C", "Gamma"),
                  {"id": "D", "name": "no modstamp", "is_deleted": False, "system_modstamp": None}]
        with pytest.raises(duckdb.ConstraintException):
            warehouse.merge("sf_accounts", broken)
        assert accounts(warehouse) == {"A": "Acme"}

    def test_columns_not_supplied_are_kept(self, warehouse):
        """A sync's merge does not clear the match columns entity resolution wrote."""
        row = {"mailbox": "m@x.com", "message_id": "1", "role": "to", "email": "a@b.com", "sent_at": T0}
        warehouse.merge("gmail_participants", [row])
        warehouse.execute("UPDATE sales_intelligence.gmail_participants SET sf_contact_id = '003X'")
        warehouse.merge("gmail_participants", [{**row, "display_name": "A"}])
        got = warehouse.query("SELECT display_name, sf_contact_id FROM sales_intelligence.gmail_participants")
        assert got == [{"display_name": "A", "sf_contact_id": "003X"}]

    def test_stamps_ingested_at(self, warehouse):
        """Rows get ingested_at when the table has it and the row does not."""
        warehouse.merge("sf_accounts", [account("A", "Acme")])
        (row,) = warehouse.query("SELECT ingested_at FROM sales_intelligence.sf_accounts")
        assert row["ingested_at"] is not None

    @pytest.mark.parametrize("rows, message", [
        ([{"id": "A", "nope": 1, "is_deleted": False, "system_modstamp": T0}], "does not have"),
        ([{"id": None, "is_deleted": False, "system_modstamp": T0}], "null key"),
        ([{"name": "x", "is_deleted": False, "system_modstamp": T0}], "lack key"),
    ])
    def test_bad_rows_are_refused_with_a_reason(self, warehouse, rows, message):
        """Unknown columns and missing or null keys are errors that say so."""
        with pytest.raises(ValueError, match=message):
            warehouse.merge("sf_accounts", rows)

    def test_nested_and_json_columns_round_trip(self, warehouse):
        """Repeated records, arrays and JSON columns are stored as BigQuery would hold them."""
        warehouse.merge("gmail_messages", [{
            "mailbox": "m", "message_id": "1", "sent_at": T0, "is_deleted": False, "label_ids": ["INBOX", "SENT"],
            "attachments": [{"filename": "a.pdf", "mime_type": "application/pdf", "size_bytes": 10}]}])
        (row,) = warehouse.query("SELECT label_ids, attachments FROM sales_intelligence.gmail_messages")
        assert row["label_ids"] == ["INBOX", "SENT"]
        assert row["attachments"][0]["filename"] == "a.pdf"


class TestQuery:
    def test_named_parameters(self, warehouse):
        """@name parameters bind values (never spliced into the SQL)."""
        warehouse.merge("sf_accounts", [account("A", "Acme"), account("B", "O'Brien & Co")])
        rows = warehouse.query("SELECT id FROM sales_intelligence.sf_accounts WHERE name = @name",
                               {"name": "O'Brien & Co"})
        assert rows == [{"id": "B"}]

    def test_table_counts(self, warehouse):
        """table_counts counts every table."""
        warehouse.merge("sf_accounts", [account("A", "Acme")])
        counts = warehouse.table_counts()
        assert counts["sf_accounts"] == 1 and set(counts) == set(load_table_specs())


def test_rows_supplying_different_columns_each_keep_the_rest(warehouse):
    """In one batch, a row that leaves a column out does not clear it; a row that supplies it writes it."""
    warehouse.merge("sf_accounts", [account("A", "Acme"), account("B", "Beta")])
    warehouse.merge("sf_accounts", [{"id": "A", "is_deleted": False, "system_modstamp": T0 + timedelta(minutes=1)},
                                    {**account("B", "Beta 2", minutes=1)}])
    assert accounts(warehouse) == {"A": "Acme", "B": "Beta 2"}


class TestArrowMerge:
    """An Arrow table (a column-wise transformed page) merges exactly like the same rows as dicts."""

    def test_same_result_as_row_dicts(self, warehouse, tmp_path):
        import pyarrow as pa

        from warehouse import DuckDBWarehouse

        rows = [account("A", "new", minutes=5), account("A", "old", minutes=1), account("B", " Beta ")]
        warehouse.merge("sf_accounts", pa.Table.from_pylist(rows))
        other = DuckDBWarehouse(tmp_path / "dicts.duckdb")
        other.ensure_schema()
        other.merge("sf_accounts", rows)
        query = "SELECT * EXCEPT (ingested_at) FROM sales_intelligence.sf_accounts ORDER BY id"
        assert warehouse.query(query) == other.query(query)
        assert accounts(warehouse) == {"A": "new", "B": " Beta "}
        (row,) = warehouse.query("SELECT COUNT(*) AS n FROM sales_intelligence.sf_accounts WHERE ingested_at IS NULL")
        assert row["n"] == 0

    @pytest.mark.parametrize("columns, message", [
        ({"id": ["A"], "nope": [1], "system_modstamp": [T0]}, "does not have"),
        ({"id": [None], "system_modstamp": [T0]}, "null key"),
        ({"name": ["x"], "system_modstamp": [T0]}, "lack key"),
    ])
    def test_bad_tables_are_refused_with_a_reason(self, warehouse, columns, message):
        import pyarrow as pa

        with pytest.raises(ValueError, match=message):
            warehouse.merge("sf_accounts", pa.table(columns))
        assert accounts(warehouse) == {}
