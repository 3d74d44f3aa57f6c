"""Columns beyond the schema files, learnt at run time (a Salesforce org's custom fields), on both warehouses."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from warehouse.schemas import Column

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
CUSTOM = [Column("industry_segment__c", "STRING"), Column("renewal_date__c", "DATE"),
          Column("seats__c", "INT64"), Column("arr__c", "NUMERIC"), Column("score__c", "FLOAT64"),
          Column("is_partner__c", "BOOL"), Column("activated_at__c", "TIMESTAMP")]


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.emulator)])
def wh(request):
    return request.getfixturevalue("warehouse" if request.param == "duckdb" else "bigquery_warehouse")


def contact(**values):
    return {"id": "003A", "is_deleted": False, "system_modstamp": T0, "created_date": T0, **values}


class TestRunTimeColumns:
    def test_added_columns_are_typed_and_merge_writes_them(self, wh):
        """add_columns adds each missing column with its type; merge then writes them from row dicts and Arrow."""
        assert wh.add_columns("sf_contacts", CUSTOM) == [c.name for c in CUSTOM]
        types = wh.table_columns("sf_contacts")
        assert {c.name: types[c.name] for c in CUSTOM} == {c.name: c.type for c in CUSTOM}
        wh.merge("sf_contacts", [contact(industry_segment__c="SMB", renewal_date__c=date(2026, 3, 1), seats__c=12,
                                         arr__c=Decimal("1200.50"), score__c=0.25, is_partner__c=True,
                                         activated_at__c=T0)])
        wh.merge("sf_contacts", pa.table({"id": ["003B"], "is_deleted": [False], "system_modstamp": [T0],
                                          "created_date": [T0], "seats__c": pa.array([7], pa.int64())}))
        rows = wh.query("SELECT id, industry_segment__c, renewal_date__c, seats__c, arr__c, score__c, is_partner__c, "
                        "activated_at__c FROM sales_intelligence.sf_contacts ORDER BY id".replace(
                            "sales_intelligence", wh.dataset))
        assert rows[0] == {"id": "003A", "industry_segment__c": "SMB", "renewal_date__c": date(2026, 3, 1),
                           "seats__c": 12, "arr__c": Decimal("1200.50"), "score__c": 0.25, "is_partner__c": True,
                           "activated_at__c": T0}
        assert rows[1]["seats__c"] == 7 and rows[1]["industry_segment__c"] is None

    def test_a_second_add_adds_nothing_and_a_new_warehouse_object_learns_the_columns_again(self, wh):
        """Columns already there are not added twice; merge accepts them once they are declared."""
        wh.add_columns("sf_contacts", CUSTOM[:1])
        assert wh.add_columns("sf_contacts", CUSTOM[:2]) == ["renewal_date__c"]
        assert "industry_segment__c" in wh.spec_of("sf_contacts").column_names
        assert "industry_segment__c" not in wh.spec_of("sf_accounts").column_names

    def test_merge_refuses_a_column_nobody_declared(self, wh):
        """A column neither in the schema file nor declared by add_columns is still an error."""
        with pytest.raises(ValueError, match="mystery__c"):
            wh.merge("sf_contacts", [contact(mystery__c="x")])
