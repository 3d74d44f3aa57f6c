"""The warehouse: one interface, DuckDB and BigQuery implementations, MERGE SQL, table schemas, the job ledger."""
from __future__ import annotations

from config.settings import Settings
from warehouse.base import MergeBatcher, Warehouse
from warehouse.bigquery_warehouse import BigQueryWarehouse, WarehouseUnavailable
from warehouse.duckdb_warehouse import DuckDBWarehouse

__all__ = ["BigQueryWarehouse", "DuckDBWarehouse", "MergeBatcher", "Warehouse", "WarehouseUnavailable", "open_warehouse"]

def open_warehouse(settings: Settings) -> Warehouse:
    """The warehouse the settings name."""
    if settings.warehouse == "bigquery":
        return BigQueryWarehouse(settings)
    return DuckDBWarehouse(settings.duckdb_path, settings.dataset, settings.duckdb_memory_limit)
