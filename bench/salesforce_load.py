"""Salesforce full load: this pipeline vs dlt, same loopback sandbox, same DuckDB, same machine.

    .venv/bin/python bench/salesforce_load.py                   # 200,000 contacts
    .venv/bin/python bench/salesforce_load.py --contacts 1000000
    .venv/bin/python bench/salesforce_load.py --custom-fields 20   # 20 custom fields per contact, both read them

The sandbox runs in its own process; each variant runs in its own process too, so "peak memory" is
that variant's own peak RSS. Prints rows/s, peak memory and API calls of each, and the ratio.
dlt comes from bench/requirements.txt (installed for benchmarks only).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import RuntimePackagesOnly, peak_mb


def start_sandbox(contacts: int, custom_fields: int) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen([sys.executable, "-m", "sandbox.salesforce", "--contacts", str(contacts),
                                "--leads", "0", "--preload", "--custom-fields", str(custom_fields)],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    url = ca = ""
    while not (url and ca):
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("sandbox exited before printing its URL")
        if line.startswith("export SALESFORCE_LOGIN_URL="):
            url = line.split("=", 1)[1].strip()
        elif line.startswith("export SALESFORCE_CA_BUNDLE="):
            ca = line.split("=", 1)[1].strip()
    return process, url, ca


def api_used(sf) -> int:
    return int(sf.restful("limits/")["DailyApiRequests"]["Max"]) - int(sf.restful("limits/")["DailyApiRequests"]["Remaining"])


def run_pipeline(url: str, ca: str, db: str) -> dict:
    from cloud_functions.salesforce_sync.auth import SalesforceCredentials
    from cloud_functions.salesforce_sync.client import SalesforceClient
    from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync
    from config.settings import Settings
    from pipeline.runtime import Runtime
    from sandbox.salesforce import DEFAULT_CREDENTIALS
    from warehouse import DuckDBWarehouse

    settings = Settings(_env_file=None, duckdb_path=Path(db), salesforce_login_url=url, salesforce_ca_bundle=Path(ca),
                        errors_file=Path(db).with_suffix(".errors"), salesforce_api_reserve=0,
                        salesforce_custom_fields={"Contact": ["*"]})
    warehouse = DuckDBWarehouse(db, memory_limit=settings.duckdb_memory_limit)
    warehouse.ensure_schema()
    runtime = Runtime.around(settings, warehouse)
    creds = SalesforceCredentials("password", username=DEFAULT_CREDENTIALS["username"],
                                  password=DEFAULT_CREDENTIALS["password"],
                                  security_token=DEFAULT_CREDENTIALS["security_token"])
    client = SalesforceClient(creds, settings)
    started = time.perf_counter()
    result = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact", sync_type="full"), runtime, client)
    seconds = time.perf_counter() - started
    rows = warehouse.table_counts()["sf_contacts"]
    run = result["runs"][0]
    return {"variant": "pipeline", "rows": rows, "seconds": seconds, "api_calls": client.api_calls,
            "api": run["details"]["api"], "custom_fields": len(run["details"].get("schema", {}).get("custom_fields", []))}


def run_dlt(url: str, ca: str, db: str) -> dict:
    import dlt
    from simple_salesforce import Salesforce

    from cloud_functions.salesforce_sync.auth import LoginHostSession
    from cloud_functions.salesforce_sync.records import OBJECTS
    from sandbox.salesforce import DEFAULT_CREDENTIALS

    session = LoginHostSession(url, ca)
    sf = Salesforce(username=DEFAULT_CREDENTIALS["username"], password=DEFAULT_CREDENTIALS["password"],
                    security_token=DEFAULT_CREDENTIALS["security_token"], session=session)
    used_before = api_used(sf)

    # The same fields as the pipeline reads: the declared ones and every custom field describe lists.
    custom = [f["name"] for f in sf.Contact.describe()["fields"] if f["custom"]]
    soql = OBJECTS["Contact"].soql().replace(" FROM Contact", "".join(f", {f}" for f in custom) + " FROM Contact")

    @dlt.resource(name="sf_contacts", write_disposition="merge", primary_key="Id")
    def contacts():
        for record in sf.query_all_iter(soql, include_deleted=True):
            record.pop("attributes", None)
            yield record

    pipeline = dlt.pipeline(pipeline_name="bench_sf", destination=dlt.destinations.duckdb(db),
                            dataset_name="sf", pipelines_dir=str(Path(db).parent / "dlt"))
    started = time.perf_counter()
    pipeline.run(contacts())
    seconds = time.perf_counter() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT COUNT(*) FROM sf_contacts")[0][0]
    return {"variant": "dlt", "rows": rows, "seconds": seconds, "api_calls": api_used(sf) - used_before - 2, "custom_fields": len(custom)}


def child(variant: str, url: str, ca: str, db: str) -> None:
    os.environ["REQUESTS_CA_BUNDLE"] = ca  # dlt's and simple-salesforce's own requests trust the sandbox too
    if variant == "pipeline":
        sys.meta_path.insert(0, RuntimePackagesOnly())
    result = (run_pipeline if variant == "pipeline" else run_dlt)(url, ca, db)
    result.update(rows_per_s=result["rows"] / result["seconds"], peak_mb=peak_mb())
    print("RESULT " + json.dumps(result), flush=True)


def measure(variant: str, url: str, ca: str, workdir: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", variant, "--url", url, "--ca", ca,
                          "--db", str(Path(workdir) / f"{variant}.duckdb")], cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--custom-fields", type=int, default=0, help="filled custom fields per contact")
    parser.add_argument("--child", choices=["pipeline", "dlt"])
    parser.add_argument("--url")
    parser.add_argument("--ca")
    parser.add_argument("--db")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.ca, args.db)
        return
    sandbox, url, ca = start_sandbox(args.contacts, args.custom_fields)
    try:
        with tempfile.TemporaryDirectory() as workdir:
            results = [measure("pipeline", url, ca, workdir)]
            if not args.skip_dlt:
                results.append(measure("dlt", url, ca, workdir))
    finally:
        sandbox.terminate()
        sandbox.wait()
    print(f"Salesforce full load of {args.contacts:,} contacts with {args.custom_fields} custom fields each "
          "(sandbox in its own process, DuckDB)")
    for r in results:
        print(f"  {r['variant']:<9} rows {r['rows']:>9,}  {r['seconds']:>7.1f} s  {r['rows_per_s']:>9,.0f} rows/s  "
              f"peak {r['peak_mb']:>6.0f} MB  API calls {r['api_calls']:>5}  custom fields read {r['custom_fields']}"
              + (f"  ({r['api']})" if "api" in r else ""))
    if len(results) == 2:
        print(f"  ratio: pipeline is {results[0]['rows_per_s'] / results[1]['rows_per_s']:.1f}x dlt's rows/s")


if __name__ == "__main__":
    main()
