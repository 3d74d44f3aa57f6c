"""The local runner: the whole pipeline on one laptop (what `make run` calls).

    python -m scripts.run_local init      create the warehouse and every table and view
    python -m scripts.run_local run       init, then every landed source (Salesforce today)
    python -m scripts.run_local report    rows per table and the latest runs

With no credentials configured it uses the loopback sandboxes and says so; WAREHOUSE=bigquery
writes to BigQuery instead of the local DuckDB file.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.settings import Settings, get_settings  # noqa: E402
from utils.logger import configure_logging  # noqa: E402
from utils.schemas import load_table_specs  # noqa: E402
from utils.monitoring import ErrorPublisher  # noqa: E402
from utils.runtime import Runtime  # noqa: E402
from utils.secret_manager import SecretNotFoundError, SecretStore  # noqa: E402
from utils.warehouse import Warehouse, open_warehouse  # noqa: E402

SANDBOX_SALESFORCE_SIZE = dict(accounts=50, contacts=2000, leads=500)


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


@contextlib.contextmanager
def salesforce_endpoint(runtime: Runtime) -> Iterator[Runtime]:
    """The runtime as is when Salesforce credentials are configured, else aimed at a loopback sandbox."""
    from cloud_functions.salesforce_sync.client import SalesforceCredentials
    from sandbox.company import CompanySize
    from sandbox.salesforce import SalesforceSandbox

    try:
        SalesforceCredentials.from_secrets(runtime.secrets, runtime.settings)
    except SecretNotFoundError:
        pass
    else:
        print("salesforce: using the configured credentials")
        yield runtime
        return
    with SalesforceSandbox(CompanySize(**SANDBOX_SALESFORCE_SIZE)) as sandbox:
        print(f"salesforce: no credentials configured, using the loopback sandbox at {sandbox.url}")
        environment = sandbox.client_environment()
        for key in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
            os.environ[key] = environment[key]
        yield Runtime(runtime.settings.model_copy(update={
            "salesforce_login_url": sandbox.url, "salesforce_ca_bundle": sandbox.server.cert_path}),
            runtime.warehouse, runtime.publisher, type(runtime.secrets)(runtime.settings))


def sync_salesforce(runtime: Runtime) -> None:
    from cloud_functions.salesforce_sync.objects import OBJECTS
    from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

    with salesforce_endpoint(runtime) as rt:
        for name in OBJECTS:
            result = run_salesforce_sync(SalesforceSyncRequest(object_type=name, trigger="local"), rt)
            (run,) = result["runs"]
            print(f"  salesforce {name:<13} {run['status']:<8} fetched {run['rows_fetched']:>7,} "
                  f"loaded {run['rows_loaded']:>7,} rejected {run['rows_rejected']:>4,} "
                  f"via {run['details'].get('api', '-'):<5} {run['duration_seconds']:>6.2f} s", flush=True)


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
        if args.command == "run":
            runtime = Runtime(settings, warehouse, ErrorPublisher(settings), SecretStore(settings))
            sync_salesforce(runtime)
        if args.command in ("run", "report"):
            report(warehouse)
    finally:
        warehouse.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
