"""OpportunityHistory and OpportunityFieldHistory through the sandbox, on DuckDB and on the BigQuery emulator:
full loads, incremental runs that read only the rows added since, reruns that duplicate nothing; and the stage
path view over history rows whose answer is worked out by hand."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from cloud_functions.salesforce_sync.records import OBJECTS
from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync
from sandbox.company import CompanySize
from sandbox.salesforce import SalesforceSandbox
from tests.cloud_functions.test_salesforce_sync import point_at

SIZE = CompanySize(accounts=10, contacts=50, leads=10)  # 20 opportunities
HISTORY = {"OpportunityHistory": "sf_opportunity_history", "OpportunityFieldHistory": "sf_opportunity_field_history"}


@pytest.fixture
def org():
    with SalesforceSandbox(SIZE) as sb:
        yield sb


def sync(rt, object_type: str, **body) -> dict:
    return run_salesforce_sync(SalesforceSyncRequest(object_type=object_type, **body), rt)["runs"][0]


def stored(rt, table: str) -> dict[str, dict]:
    rows = rt.warehouse.query(f"SELECT * EXCEPT (ingested_at) FROM {rt.warehouse.dataset}.{table}")
    assert len(rows) == len({r["id"] for r in rows}), f"duplicate ids in {table}"
    return {r["id"]: r for r in rows}


def in_sandbox(org, name: str) -> dict[str, bool]:
    return {r["Id"]: bool(r["IsDeleted"]) for r in org.state.current(name)}


def ids_and_deleted(rows: dict[str, dict]) -> dict[str, bool]:
    return {key: row["is_deleted"] for key, row in rows.items()}


class TestHistorySync:
    @pytest.mark.parametrize("api, threshold", [("bulk2", 10), ("rest", 100_000)])
    def test_full_load_holds_every_row_typed(self, org_runtime, org, monkeypatch, api, threshold):
        """A full sync (Bulk CSV or REST JSON) loads every history row of the org with its values typed."""
        rt = point_at(org_runtime, org, monkeypatch, salesforce_bulk_threshold=threshold)
        for name, table in HISTORY.items():
            run = sync(rt, name, sync_type="full")
            assert (run["status"], run["details"]["api"]) == ("success", api)
            assert ids_and_deleted(stored(rt, table)) == in_sandbox(org, name)
        history = org.state.objects["OpportunityHistory"].base(3)
        row = stored(rt, "sf_opportunity_history")[history["Id"]]
        assert {k: row[k] for k in ("opportunity_id", "stage_name", "amount", "close_date", "probability",
                                    "forecast_category", "created_date", "system_modstamp")} == {
            "opportunity_id": history["OpportunityId"], "stage_name": history["StageName"],
            "amount": Decimal(str(history["Amount"])), "close_date": history["CloseDate"],
            "probability": history["Probability"], "forecast_category": history["ForecastCategory"],
            "created_date": history["CreatedDate"], "system_modstamp": history["SystemModstamp"]}
        changes = [r for r in stored(rt, "sf_opportunity_field_history").values() if r["field"] == "Amount"]
        assert changes and all(float(r["old_value"]) < float(r["new_value"]) for r in changes)

    def test_a_second_run_reads_only_the_new_rows_and_a_rerun_duplicates_nothing(self, org_runtime, org, monkeypatch):
        """After a full load, an opportunity's change of stage and amount adds one OpportunityHistory row and two
        OpportunityFieldHistory rows; the next incremental run reads those (and the row at its inclusive bound)
        only; running again, incremental or full, leaves every table as it was."""
        rt = point_at(org_runtime, org, monkeypatch)
        for name in HISTORY:
            sync(rt, name, sync_type="full")
        before = {table: stored(rt, table) for table in HISTORY.values()}
        changed = org.state.edit("Opportunity", 0, StageName="Negotiation", Amount=4500.0)
        org.server.requests.reset()
        runs = {name: sync(rt, name) for name in HISTORY}
        assert org.server.requests.by_route.get("bulk_create", 0) == 0
        assert {name: run["rows_fetched"] for name, run in runs.items()} == {
            "OpportunityHistory": 2, "OpportunityFieldHistory": 3}
        after = {table: stored(rt, table) for table in HISTORY.values()}
        added = {table: [after[table][k] for k in after[table].keys() - before[table].keys()] for table in after}
        assert [(r["opportunity_id"], r["stage_name"], r["amount"]) for r in added["sf_opportunity_history"]] == [
            (changed["Id"], "Negotiation", Decimal("4500"))]
        assert sorted((r["field"], r["old_value"], r["new_value"]) for r in added["sf_opportunity_field_history"]) == [
            ("Amount", "1000.0", "4500.0"), ("StageName", "Prospecting", "Negotiation")]
        for table in HISTORY.values():
            assert {k: after[table][k] for k in before[table]} == before[table], table
        for name in HISTORY:
            assert sync(rt, name)["status"] == sync(rt, name, sync_type="full")["status"] == "success"
        assert {table: stored(rt, table) for table in HISTORY.values()} == after

    def test_a_deleted_opportunity_flags_its_stage_history_incrementally(self, org_runtime, org, monkeypatch):
        """OpportunityHistory follows SystemModstamp, so an opportunity's deletion reaches its rows on the next
        incremental run; OpportunityFieldHistory (CreatedDate, no SystemModstamp) learns it from a full sync."""
        rt = point_at(org_runtime, org, monkeypatch)
        for name in HISTORY:
            sync(rt, name, sync_type="full")
        deleted = org.state.delete("Opportunity", 4)
        for name in HISTORY:
            sync(rt, name)
        flagged = {table: {r["id"] for r in stored(rt, table).values() if r["is_deleted"]}
                   for table in HISTORY.values()}
        assert flagged["sf_opportunity_history"] and flagged["sf_opportunity_field_history"] == set()
        assert ids_and_deleted(stored(rt, "sf_opportunity_history")) == in_sandbox(org, "OpportunityHistory")
        sync(rt, "OpportunityFieldHistory", sync_type="full")
        fields = stored(rt, "sf_opportunity_field_history")
        assert ids_and_deleted(fields) == in_sandbox(org, "OpportunityFieldHistory")
        assert {r["opportunity_id"] for r in fields.values() if r["is_deleted"]} == {deleted["Id"]}


class TestSandboxHistory:
    def test_each_opportunitys_last_history_row_is_the_opportunity_now(self, org):
        """The generated stage paths end where each opportunity stands: stage, amount, close date, probability."""
        last = {}
        for row in org.state.current("OpportunityHistory"):
            last[row["OpportunityId"]] = row
        opportunities = list(org.state.current("Opportunity"))
        assert len(last) == len(opportunities) == 2 * SIZE.accounts
        for opportunity in opportunities:
            row = last[opportunity["Id"]]
            assert [row[f] for f in ("StageName", "Amount", "CloseDate", "Probability")] == [
                opportunity[f] for f in ("StageName", "Amount", "CloseDate", "Probability")]
            assert row["CreatedDate"] <= opportunity["SystemModstamp"]

    def test_field_history_has_no_system_modstamp(self, org, runtime, monkeypatch):
        """As in Salesforce, SOQL on OpportunityFieldHistory's SystemModstamp is an INVALID_FIELD error."""
        from simple_salesforce.exceptions import SalesforceMalformedRequest

        from cloud_functions.salesforce_sync.client import SalesforceClient, SalesforceCredentials
        from config.secrets import SecretStore

        point_at(runtime, org, monkeypatch)
        client = SalesforceClient(SalesforceCredentials.from_secrets(SecretStore(runtime.settings), runtime.settings),
                                  runtime.settings)
        soql = OBJECTS["OpportunityFieldHistory"].soql("2024-01-01T00:00:00Z").replace("CreatedDate >=",
                                                                                      "SystemModstamp >=")
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
            list(client.query_pages(soql))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def history(key: str, opportunity: str, when: str, stage: str, amount: int, close: str, probability: float,
            deleted: bool = False) -> dict:
    return {"id": key, "opportunity_id": opportunity, "created_date": at(when), "system_modstamp": at(when),
            "stage_name": stage, "amount": amount, "close_date": date.fromisoformat(close),
            "probability": probability, "is_deleted": deleted}


def opportunity(key: str, name: str, deleted: bool = False) -> dict:
    return {"id": key, "name": name, "account_id": "001A", "is_deleted": deleted, "system_modstamp": at("2024-05-01")}


# A: four stage changes, an amount change inside Qualification, back from Proposal to Qualification, a deleted row.
# B: two rows at the same moment (ordered by id), the second stage still current. C: a deleted opportunity.
# D: history of an opportunity not synced yet.
HISTORY_ROWS = [
    history("008A1", "006A", "2024-03-01T09:00", "Prospecting", 1000, "2024-06-30", 10),
    history("008A2", "006A", "2024-03-03T21:00", "Qualification", 1000, "2024-06-30", 20),
    history("008A3", "006A", "2024-03-10T21:00", "Qualification", 1200, "2024-06-30", 20),
    history("008A4", "006A", "2024-03-13T09:00", "Proposal", 1500, "2024-07-15", 50),
    history("008A5", "006A", "2024-03-20T09:00", "Qualification", 1500, "2024-07-15", 20),
    history("008A6", "006A", "2024-03-21T09:00", "Closed Won", 1600, "2024-03-21", 100),
    history("008A7", "006A", "2024-03-22T09:00", "Negotiation", 9999, "2024-03-22", 75, deleted=True),
    history("008B2", "006B", "2024-04-01T00:00", "Qualification", 500, "2024-08-01", 20),
    history("008B1", "006B", "2024-04-01T00:00", "Prospecting", 500, "2024-08-01", 10),
    history("008B3", "006B", "2024-04-02T12:00", "Qualification", 800, "2024-08-01", 20),
    history("008C1", "006C", "2024-04-01T00:00", "Prospecting", 700, "2024-08-01", 10),
    history("008D1", "006D", "2024-04-05T06:00", "Prospecting", 300, "2024-09-01", 10),
]
COLUMNS = ("opportunity_id", "opportunity_name", "stage_number", "stage_name", "entered_at", "left_at",
           "next_stage_name", "days_in_stage", "amount", "close_date", "probability", "changes_in_stage",
           "is_current_stage")
EXPECTED_PATHS = [
    ("006A", "Deal A", 1, "Prospecting", at("2024-03-01T09:00"), at("2024-03-03T21:00"), "Qualification", 2.5,
     1000, date(2024, 6, 30), 10.0, 1, False),
    ("006A", "Deal A", 2, "Qualification", at("2024-03-03T21:00"), at("2024-03-13T09:00"), "Proposal", 9.5,
     1200, date(2024, 6, 30), 20.0, 2, False),
    ("006A", "Deal A", 3, "Proposal", at("2024-03-13T09:00"), at("2024-03-20T09:00"), "Qualification", 7.0,
     1500, date(2024, 7, 15), 50.0, 1, False),
    ("006A", "Deal A", 4, "Qualification", at("2024-03-20T09:00"), at("2024-03-21T09:00"), "Closed Won", 1.0,
     1500, date(2024, 7, 15), 20.0, 1, False),
    ("006A", "Deal A", 5, "Closed Won", at("2024-03-21T09:00"), None, None, None, 1600, date(2024, 3, 21), 100.0, 1,
     True),
    ("006B", "Deal B", 1, "Prospecting", at("2024-04-01T00:00"), at("2024-04-01T00:00"), "Qualification", 0.0,
     500, date(2024, 8, 1), 10.0, 1, False),
    ("006B", "Deal B", 2, "Qualification", at("2024-04-01T00:00"), None, None, None, 800, date(2024, 8, 1), 20.0, 2,
     True),
    ("006D", None, 1, "Prospecting", at("2024-04-05T06:00"), None, None, None, 300, date(2024, 9, 1), 10.0, 1, True),
]


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.emulator)])
def any_warehouse(request):
    return request.getfixturevalue("warehouse" if request.param == "duckdb" else "bigquery_warehouse")


class TestStagePathView:
    def test_each_stage_visit_with_its_times_amount_and_duration(self, any_warehouse):
        """Consecutive rows of a stage are one visit (values as it ended), a stage entered again is a new visit,
        ties are ordered by id, the current stage has no end; deleted rows and opportunities are left out."""
        any_warehouse.merge("sf_opportunity_history", HISTORY_ROWS)
        any_warehouse.merge("sf_opportunities", [opportunity("006A", "Deal A"), opportunity("006B", "Deal B"),
                                                 opportunity("006C", "Deal C", deleted=True)])
        rows = any_warehouse.query(f"SELECT {', '.join(COLUMNS)} FROM {any_warehouse.dataset}.v_opportunity_stage_path "
                                   "ORDER BY opportunity_id, stage_number")
        assert [tuple(row[c] for c in COLUMNS) for row in rows] == EXPECTED_PATHS
