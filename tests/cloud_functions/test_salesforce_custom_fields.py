"""An org's custom fields through the sandbox's describe, on DuckDB and on the BigQuery emulator."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from cloud_functions.salesforce_sync.fields import SchemaChangeRefused, chosen_fields, column_name
from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync
from sandbox.company import EPOCH, CompanySize
from sandbox.salesforce import SalesforceSandbox
from tests.cloud_functions.test_salesforce_sync import point_at

SIZE = CompanySize(accounts=10, contacts=150, leads=20)
SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
# Every describe type a custom field can have that lands in a column: (API name, type, value of record i).
TYPED = [
    ("Industry_Segment__c", "picklist", lambda i: SEGMENTS[i % 3]),
    ("Interests__c", "multipicklist", lambda i: "Analytics;CRM" if i % 2 else None),
    ("Notes__c", "textarea", lambda i: f"note {i}\nsecond line"),
    ("Nickname__c", "string", lambda i: f"nick{i}"),
    ("Is_Partner__c", "boolean", lambda i: i % 4 == 0),
    ("Seats__c", "int", lambda i: i * 3),
    ("Score__c", "double", lambda i: i / 8),
    ("ARR__c", "currency", lambda i: 1000 + i + 0.25),
    ("Discount__c", "percent", lambda i: 12.5),
    ("Renewal_Date__c", "date", lambda i: (EPOCH + timedelta(days=i)).date()),
    ("Activated_At__c", "datetime", lambda i: EPOCH + timedelta(hours=i)),
    ("Partner_Account__c", "reference", lambda i: f"001{i:012d}AAA"),
    ("Support_Email__c", "email", lambda i: f"help{i}@example.com"),
    ("Docs_Url__c", "url", lambda i: f"https://docs.example.com/{i}"),
    ("Backup_Phone__c", "phone", lambda i: "+1 415 555 0100"),
    ("Office__c", "location", lambda i: {"Latitude": 52.5 + i / 1000, "Longitude": 13.4}),
    ("Site__c", "address", lambda i: {"Street": "1 Main St", "City": "Berlin", "PostalCode": "10115",
                                      "StateCode": None, "CountryCode": "DE"}),
]
COLUMN_TYPES = {"industry_segment__c": "STRING", "interests__c": "STRING", "notes__c": "STRING", "nickname__c": "STRING",
                "is_partner__c": "BOOL", "seats__c": "INT64", "score__c": "FLOAT64", "arr__c": "NUMERIC",
                "discount__c": "FLOAT64", "renewal_date__c": "DATE", "activated_at__c": "TIMESTAMP",
                "partner_account__c": "STRING", "support_email__c": "STRING", "docs_url__c": "STRING",
                "backup_phone__c": "STRING", "office__latitude__s": "FLOAT64", "office__longitude__s": "FLOAT64",
                "site__street__s": "STRING", "site__city__s": "STRING", "site__postal_code__s": "STRING",
                "site__state_code__s": "STRING", "site__country_code__s": "STRING"}


@pytest.fixture
def org():
    with SalesforceSandbox(SIZE) as sb:
        for name, kind, values in TYPED:
            sb.state.add_field("Contact", name, kind, values)
        sb.state.add_field("Contact", "Health_Score__c", "double", lambda i: 1.0, formula=True)
        sb.state.add_field("Contact", "Photo__c", "base64", lambda i: None)
        yield sb


def contacts(rt, columns: str) -> dict[str, dict]:
    return {r["id"]: r for r in rt.warehouse.query(f"SELECT id, {columns} FROM {rt.warehouse.dataset}.sf_contacts")}


def sync(rt, **body):
    summary = run_salesforce_sync(SalesforceSyncRequest(**{"object_type": "Contact", **body}), rt)
    return summary["runs"][0]


class TestCustomFields:
    @pytest.mark.parametrize("api, threshold", [("bulk2", 100), ("rest", 100_000)])
    def test_every_type_lands_typed(self, org_runtime, org, monkeypatch, api, threshold):
        """Each custom field type becomes its BigQuery type and value, from Bulk CSV and from REST JSON alike."""
        rt = point_at(org_runtime, org, monkeypatch, salesforce_bulk_threshold=threshold,
                      salesforce_custom_fields={"Contact": ["*"]})
        run = sync(rt, sync_type="full")
        assert run["status"] == "success" and run["details"]["api"] == api
        assert set(run["details"]["schema"]["columns_added"]) == set(COLUMN_TYPES)
        assert run["details"]["schema"]["fields_left_out"] == {
            "Health_Score__c": "formula field: changes without touching SystemModstamp (opt in: SALESFORCE_FORMULA_FIELDS)",
            "Photo__c": "a base64 field cannot be queried by Bulk API 2.0",
            "Office__c": "a compound field: its components are read instead",
            "Site__c": "a compound field: its components are read instead"}
        stored = rt.warehouse.table_columns("sf_contacts")
        assert {c: stored[c] for c in COLUMN_TYPES} == COLUMN_TYPES
        rows = contacts(rt, ", ".join(COLUMN_TYPES))
        assert len(rows) == SIZE.contacts
        seven = rows[org.state.objects["Contact"].base(7)["Id"]]
        assert seven == {
            "id": seven["id"], "industry_segment__c": "Mid-Market", "interests__c": "Analytics;CRM",
            "notes__c": "note 7\nsecond line", "nickname__c": "nick7", "is_partner__c": False, "seats__c": 21,
            "score__c": 0.875, "arr__c": Decimal("1007.25"), "discount__c": 12.5,
            "renewal_date__c": date(2024, 1, 8), "activated_at__c": datetime(2024, 1, 1, 7, tzinfo=timezone.utc),
            "partner_account__c": "001000000000007AAA", "support_email__c": "help7@example.com",
            "docs_url__c": "https://docs.example.com/7", "backup_phone__c": "+1 415 555 0100",
            "office__latitude__s": 52.507, "office__longitude__s": 13.4, "site__street__s": "1 Main St",
            "site__city__s": "Berlin", "site__postal_code__s": "10115", "site__state_code__s": None,
            "site__country_code__s": "DE"}

    def test_a_field_added_between_runs_fills_incrementally_and_a_removed_one_is_reported(self, org_runtime, org,
                                                                                          monkeypatch):
        """A new field becomes a column on the next incremental run (no Bulk job) and fills from the records
        that changed; a deleted field keeps its column and values, is reported once, and stops filling."""
        rt = point_at(org_runtime, org, monkeypatch,
                      salesforce_custom_fields={"Contact": ["Industry_Segment__c", "Tier__c"]})
        first = sync(rt, sync_type="full")
        assert first["details"]["schema"]["custom_fields"] == ["Industry_Segment__c"]
        assert "tier__c" not in rt.warehouse.table_columns("sf_contacts")

        org.state.add_field("Contact", "Tier__c", "picklist")
        changed = org.state.edit("Contact", 5, Tier__c="Gold")
        org.server.requests.reset()
        second = sync(rt)
        assert second["details"]["schema"]["columns_added"] == ["tier__c"]
        assert org.server.requests.by_route.get("bulk_create", 0) == 0 and second["rows_fetched"] <= 2
        rows = contacts(rt, "tier__c, industry_segment__c")
        assert rows[changed["Id"]]["tier__c"] == "Gold"
        assert sum(1 for r in rows.values() if r["tier__c"] is not None) == 1

        org.state.remove_field("Contact", "Industry_Segment__c")
        org.state.edit("Contact", 6, LastName="Moved")
        third = sync(rt)
        assert third["status"] == "success"
        assert third["details"]["schema"]["fields_removed"] == ["Industry_Segment__c"]
        assert "industry_segment__c" in rt.warehouse.table_columns("sf_contacts")
        assert contacts(rt, "industry_segment__c")[org.state.objects["Contact"].base(6)["Id"]][
            "industry_segment__c"] == "SMB"
        registry = rt.warehouse.query(f"SELECT field_name, removed_at FROM {rt.warehouse.dataset}.sf_custom_fields "
                                      "ORDER BY field_name")
        assert [(r["field_name"], r["removed_at"] is not None) for r in registry] == [
            ("Industry_Segment__c", True), ("Tier__c", False)]
        assert "fields_removed" not in sync(rt)["details"].get("schema", {})

    def test_a_field_name_the_org_does_not_have_is_reported_and_warned(self, org_runtime, org, monkeypatch, caplog):
        """A misspelt custom field (and a formula opt-in of a field that does not exist) is listed in the run's
        details.schema.fields_missing and logged as a warning; the fields that exist are read as usual."""
        rt = point_at(org_runtime, org, monkeypatch,
                      salesforce_custom_fields={"Contact": ["Industy_Segment__c", "Nickname__c"]},
                      salesforce_formula_fields={"Contact": ["Helth_Score__c"]})
        run = sync(rt, sync_type="full")
        assert run["status"] == "success"
        assert run["details"]["schema"]["fields_missing"] == ["Helth_Score__c", "Industy_Segment__c"]
        assert run["details"]["schema"]["custom_fields"] == ["Nickname__c"]
        assert any("Industy_Segment__c" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)

    def test_a_type_change_that_can_be_widened_widens_the_column(self, org_runtime, org, monkeypatch):
        """An int field turned currency widens its INT64 column to NUMERIC, then turned double to FLOAT64, on the next
        incremental run; the values written before keep their meaning; turned int again, the column stays FLOAT64."""
        rt = point_at(org_runtime, org, monkeypatch, salesforce_custom_fields={"Contact": ["Seats__c"]})
        sync(rt, sync_type="full")
        data = org.state.objects["Contact"]
        seats = {data.base(i)["Id"]: i * 3 for i in range(SIZE.contacts)}
        steps = [("currency", lambda i: i * 3 + 0.25, "INT64 -> NUMERIC", Decimal("15.25")),
                 ("double", lambda i: i / 8, "NUMERIC -> FLOAT64", 0.75)]
        for (kind, values, change, value), index in zip(steps, (5, 6)):
            org.state.add_field("Contact", "Seats__c", kind, values)
            edited = org.state.edit("Contact", index, LastName="Changed")["Id"]
            run = sync(rt)
            assert run["status"] == "success" and run["details"]["schema"]["columns_widened"] == {"seats__c": change}
            assert rt.warehouse.table_columns("sf_contacts")["seats__c"] == change.split()[-1]
            stored = {key: row["seats__c"] for key, row in contacts(rt, "seats__c").items()}
            assert stored[edited] == value
            read = {r["Id"]: r["Seats__c"] for r in org.state.current("Contact")
                    if r["SystemModstamp"] >= datetime.fromisoformat(run["watermark_before"])}
            assert edited in read and len(read) == run["rows_fetched"] == 2  # and the one at the inclusive bound
            seats.update(read)
            assert stored == seats
        registry = rt.warehouse.query(f"SELECT salesforce_type, bigquery_type FROM {rt.warehouse.dataset}.sf_custom_fields")
        assert registry == [{"salesforce_type": "double", "bigquery_type": "FLOAT64"}]
        org.state.add_field("Contact", "Seats__c", "int", lambda i: i)
        run = sync(rt)
        assert run["status"] == "success" and "columns_widened" not in run["details"]["schema"]
        assert rt.warehouse.table_columns("sf_contacts")["seats__c"] == "FLOAT64"

    def test_a_type_change_that_cannot_be_held_fails_the_run_naming_the_field(self, org_runtime, org, monkeypatch):
        """A date field turned into a number is refused with the field and column named; a number turned text is kept."""
        rt = point_at(org_runtime, org, monkeypatch,
                      salesforce_custom_fields={"Contact": ["Renewal_Date__c", "Seats__c", "Nickname__c"]})
        sync(rt, sync_type="full")
        org.state.add_field("Contact", "Nickname__c", "int", lambda i: i)
        assert sync(rt)["status"] == "success"  # a STRING column holds numbers as text
        org.state.add_field("Contact", "Renewal_Date__c", "double", lambda i: 1.5)
        with pytest.raises(SchemaChangeRefused, match=r"Contact\.Renewal_Date__c .*double.*sf_contacts\.renewal_date__c "
                                                      r"holds DATE"):
            sync(rt)
        failed = rt.warehouse.query(f"SELECT status, error_message FROM {rt.warehouse.dataset}.etl_runs "
                                    "WHERE status = 'failed'")
        assert len(failed) == 1 and "Renewal_Date__c" in failed[0]["error_message"]


class TestFormulaRefresh:
    def test_an_opted_in_formula_field_gets_a_full_sync_at_the_interval(self, org_runtime, org, monkeypatch):
        """An object with an opted-in formula field is synced in full when no full sync of it started within
        SALESFORCE_FORMULA_REFRESH_HOURS: an incremental run inside the interval stays incremental (and misses a
        recalculated formula: SystemModstamp did not move), the first one after it reads every record again.
        An object without formula fields stays incremental."""
        rt = point_at(org_runtime, org, monkeypatch, salesforce_formula_fields={"Contact": ["Health_Score__c"]},
                      salesforce_formula_refresh_hours=24)

        def incremental() -> dict[str, dict]:
            return {name: sync(rt, object_type=name) for name in ("Contact", "Account")}

        first = incremental()
        assert [first[n]["sync_type"] for n in ("Contact", "Account")] == ["full", "incremental"]
        assert first["Contact"]["details"]["formula_refresh"] == "no full sync in 24 h"
        org.state.add_field("Contact", "Health_Score__c", "double", lambda i: 2.0, formula=True)  # recalculated
        second = incremental()
        assert [second[n]["sync_type"] for n in ("Contact", "Account")] == ["incremental", "incremental"]
        assert "formula_refresh" not in second["Contact"]["details"] and second["Contact"]["rows_fetched"] <= 1
        stale = [r["health_score__c"] for r in contacts(rt, "health_score__c").values()].count(1.0)
        assert stale == SIZE.contacts - second["Contact"]["rows_fetched"]  # only the record read again is current

        rt.warehouse.execute(f"UPDATE {rt.warehouse.dataset}.etl_runs SET started_at = "
                             "TIMESTAMP_SUB(started_at, INTERVAL 25 HOUR) WHERE source = 'salesforce'")
        third = incremental()
        assert [third[n]["sync_type"] for n in ("Contact", "Account")] == ["full", "incremental"]
        assert third["Contact"]["rows_fetched"] == SIZE.contacts and third["Contact"]["details"]["api"] == "bulk2"
        assert {r["health_score__c"] for r in contacts(rt, "health_score__c").values()} == {2.0}
        assert incremental()["Contact"]["sync_type"] == "incremental"

    def test_no_formula_fields_no_refresh(self, warehouse, settings):
        """Without opted-in formula fields the check reads nothing and never asks for a full sync."""
        from cloud_functions.salesforce_sync.sync import formula_refresh_due

        assert not formula_refresh_due("Contact", warehouse, settings, datetime.now(timezone.utc))
        opted = settings.model_copy(update={"salesforce_formula_fields": {"Contact": ["Health_Score__c"]}})
        assert formula_refresh_due("Contact", warehouse, opted, datetime.now(timezone.utc))
        assert not formula_refresh_due("Account", warehouse, opted, datetime.now(timezone.utc))


class TestNames:
    @pytest.mark.parametrize("api_name, column", [
        ("Industry_Segment__c", "industry_segment__c"), ("RenewalDate__c", "renewal_date__c"), ("ARR__c", "arr__c"),
        ("ns__Score__c", "ns__score__c"), ("Office__Latitude__s", "office__latitude__s"), ("NPS2__c", "nps2__c")])
    def test_column_names_keep_the_suffix(self, api_name, column):
        """API names become lower-snake columns with the __c or __s suffix kept."""
        assert column_name(api_name) == column

    def test_formula_fields_only_when_opted_in(self):
        """A formula field is left out with the reason, read when named in the formula setting."""
        describe = {"fields": [{"name": "Score__c", "type": "double", "custom": True, "calculated": True},
                               {"name": "Name", "type": "string", "custom": False}]}
        assert chosen_fields(describe, ["*"], [])[0] == []
        assert [f.column for f in chosen_fields(describe, [], ["Score__c"])[0]] == ["score__c"]
