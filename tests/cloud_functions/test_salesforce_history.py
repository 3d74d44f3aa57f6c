"""OpportunityHistory and OpportunityFieldHistory through the sandbox, on DuckDB and on the BigQuery emulator:
full loads, incremental runs that read only the rows added since, reruns that duplicate nothing."""
from __future__ import annotations

from decimal import Decimal

import pytest

from cloud_functions.salesforce_sync.objects import OBJECTS
from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync
from sandbox.company import CompanySize
from sandbox.salesforce import SalesforceSandbox
from tests.cloud_functions.test_salesforce_custom_fields import org_runtime  # noqa: F401 (a fixture)
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
        flagged = {table: {r["id"] for r in stored(rt, table).values() if r["is_deleted"]} for table in HISTORY.values()}
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
        from utils.secret_manager import SecretStore

        point_at(runtime, org, monkeypatch)
        client = SalesforceClient(SalesforceCredentials.from_secrets(SecretStore(runtime.settings), runtime.settings),
                                  runtime.settings)
        soql = OBJECTS["OpportunityFieldHistory"].soql("2024-01-01T00:00:00Z").replace("CreatedDate >=", "SystemModstamp >=")
        with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
            list(client.query_pages(soql))
