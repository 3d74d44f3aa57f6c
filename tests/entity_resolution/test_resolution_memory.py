"""Entity resolution on DuckDB gets its own memory limit; the warehouse's low one is restored after."""
from __future__ import annotations

from entity_resolution.matcher import ResolutionRequest, resolve_entities
from pipeline.runtime import Runtime
from tests.entity_resolution.test_matcher import ACCOUNTS, CONTACTS, add_mail, crm_rows
from warehouse import DuckDBWarehouse


def test_resolution_runs_under_its_own_limit_and_restores_the_warehouse_one(settings):
    """With the warehouse at 32 MB (too little for the candidate joins) resolution still succeeds, and the
    warehouse is back at 32 MB afterwards."""
    warehouse = DuckDBWarehouse(settings.duckdb_path, settings.dataset, memory_limit="32MB")
    warehouse.ensure_schema()
    warehouse.merge("sf_accounts", crm_rows(ACCOUNTS))
    warehouse.merge("sf_contacts", crm_rows(CONTACTS))
    add_mail(warehouse, "jane@acme.com", "john.doe@gmail.com")
    def limit():
        return warehouse.query("SELECT current_setting('memory_limit') AS m")[0]["m"]

    before = limit()
    summary = resolve_entities(ResolutionRequest(sync_type="full"), Runtime.around(settings, warehouse))
    assert summary["status"] == "success" and summary["rows_updated"]["gmail_participants"] == 2
    assert limit() == before
    warehouse.close()
