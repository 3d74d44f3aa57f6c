"""The local runner: the whole pipeline on one laptop (what `make run` calls).

    python -m scripts.run_local init      create the warehouse and every table and view
    python -m scripts.run_local run       init, then every landed source and entity resolution
    python -m scripts.run_local report    rows per table and the latest runs

With no credentials configured it uses the loopback sandboxes and says so; WAREHOUSE=bigquery
writes to BigQuery instead of the local DuckDB file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.settings import Settings, get_settings  # noqa: E402
from utils.logger import configure_logging  # noqa: E402
from utils.schemas import load_table_specs  # noqa: E402
from utils.warehouse import Warehouse, open_warehouse  # noqa: E402


def describe_warehouse(settings: Settings) -> str:
    if settings.warehouse == "bigquery":
        return f"BigQuery dataset {settings.gcp_project}.{settings.dataset}"
    return f"DuckDB file {settings.duckdb_path} (schema {settings.dataset})"


def init(warehouse: Warehouse, settings: Settings) -> None:
    created = warehouse.ensure_schema()
    print(f"warehouse: {describe_warehouse(settings)}")
    print(f"  created {len(created)} tables/views" + (f": {', '.join(created)}" if created else " (all existed)"))
    for spec in load_table_specs().values():
        partition = f"{spec.partition_type} on {spec.partition_field}" if spec.partition_field else "none"
        print(f"  {spec.name:<26} key {','.join(spec.primary_key):<36} partition {partition:<24} "
              f"cluster {','.join(spec.cluster) or '-'}")


def report(warehouse: Warehouse) -> None:
    print("rows per table:")
    for table, count in warehouse.table_counts().items():
        print(f"  {table:<26} {count:>10,}")
    runs = warehouse.query(
        f"SELECT source, object_type, status, rows_loaded, rows_rejected, duration_seconds "
        f"FROM {warehouse.dataset}.etl_runs ORDER BY started_at DESC LIMIT 20")
    if runs:
        print("latest runs:")
        for run in runs:
            print(f"  {run['source']:<18} {run['object_type'] or '-':<14} {run['status']:<8} "
                  f"loaded {run['rows_loaded'] or 0:>8,} rejected {run['rows_rejected'] or 0:>6,} "
                  f"{run['duration_seconds'] or 0:>7.2f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the warehouse with every table and view")
    sub.add_parser("run", help="init, then sync every landed source and resolve entities")
    sub.add_parser("report", help="rows per table and the latest runs")
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging("WARNING")
    warehouse = open_warehouse(settings)
    try:
        if args.command in ("init", "run"):
            init(warehouse, settings)
        if args.command in ("run", "report"):
            report(warehouse)
    finally:
        warehouse.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
