"""Gmail sync throughput and memory: this pipeline vs one request per message, same loopback Gmail.

    .venv/bin/python bench/gmail_sync.py                      # 2,000 messages, 30 ms latency, then 20,000
    .venv/bin/python bench/gmail_sync.py --messages 500 --curve 0

The sandbox runs in this process with a latency on every HTTP request and no quota; each measured
sync runs in its own child process (its peak RSS is its own). The pipeline lists 500 ids a page and
fetches `format=raw` in batches of 50; the baseline lists the same pages and gets each message with
its own request, sequentially. Both parse with the same code and merge into DuckDB.
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

from bench.measure import peak_mb

MAILBOX = "alex@ourcompany.example"


def child(variant: str, endpoint: str, db: str) -> None:
    from cloud_functions.gmail_sync.auth import delegated_credentials, gmail_service
    from cloud_functions.gmail_sync.records import message_rows
    from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync
    from config.settings import Settings
    from pipeline.runtime import Runtime
    from warehouse import DuckDBWarehouse

    settings = Settings(_env_file=None, gmail_api_endpoint=endpoint, mailboxes=[MAILBOX], duckdb_path=Path(db),
                        errors_file=Path(db).with_suffix(".errors"), gmail_quota_units_per_minute=0)
    warehouse = DuckDBWarehouse(db, memory_limit=settings.duckdb_memory_limit)
    warehouse.ensure_schema()
    runtime = Runtime.around(settings, warehouse)
    started = time.perf_counter()
    if variant == "pipeline":
        run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)
    else:
        service = gmail_service(delegated_credentials(os.environ["GMAIL_SERVICE_ACCOUNT_KEY"], MAILBOX), endpoint)
        token = None
        while True:
            page = service.users().messages().list(userId="me", maxResults=500, pageToken=token).execute()
            rows: dict[str, list] = {"gmail_messages": [], "gmail_participants": []}
            for ref in page.get("messages", []):
                message = service.users().messages().get(userId="me", id=ref["id"], format="raw").execute()
                produced = message_rows(message, MAILBOX, settings.gmail_body_max_chars)
                for table in rows:
                    rows[table] += produced[table]
            for table, produced in rows.items():
                warehouse.merge(table, produced)
            token = page.get("nextPageToken")
            if not token:
                break
    seconds = time.perf_counter() - started
    stored = warehouse.table_counts()["gmail_messages"]
    warehouse.close()
    print("RESULT " + json.dumps({"variant": variant, "messages": stored, "seconds": seconds,
                                  "peak_mb": peak_mb()}))


def measure(variant: str, messages: int, latency: float, workdir: Path) -> dict:
    from sandbox.gmail import GmailSandbox
    from sandbox.server import Faults

    with GmailSandbox([MAILBOX], messages, ugly_every=0, quota_units_per_minute=None, faults=Faults(latency_seconds=latency)) as sandbox:
        env = {**os.environ, "GMAIL_SERVICE_ACCOUNT_KEY": sandbox.service_account_key()}
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--endpoint", f"{sandbox.url}/",
                              "--db", str(workdir / f"{variant}-{messages}.duckdb")], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        requests = sandbox.server.requests.total
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{variant} failed:\n{out.stderr[-3000:]}")
    result = json.loads(lines[-1][7:])
    result.update(requests=requests, per_100=100 * requests / max(1, result["messages"]),
                  messages_per_s=result["messages"] / result["seconds"])
    return result


def show(result: dict) -> None:
    print(f"  {result['variant']:<9} {result['messages']:>7,} messages {result['seconds']:>7.1f} s "
          f"{result['messages_per_s']:>8.1f} msg/s  {result['requests']:>6,} HTTP requests "
          f"({result['per_100']:.1f} per 100 messages)  peak {result['peak_mb']:>5.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--curve", type=int, default=20_000, help="messages for the memory curve (0: skip)")
    parser.add_argument("--child", choices=["pipeline", "baseline"])
    parser.add_argument("--endpoint")
    parser.add_argument("--db")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.endpoint, args.db)
        return
    with tempfile.TemporaryDirectory() as workdir:
        print(f"Gmail full sync, {args.latency * 1000:.0f} ms latency on every HTTP request, quota limit off")
        ours = measure("pipeline", args.messages, args.latency, Path(workdir))
        show(ours)
        baseline = measure("baseline", args.messages, args.latency, Path(workdir))
        show(baseline)
        print(f"  ratio: pipeline is {ours['messages_per_s'] / baseline['messages_per_s']:.1f}x the one-request-per-message baseline")
        if args.curve:
            print("memory curve (pipeline):")
            show(ours)
            show(measure("pipeline", args.curve, args.latency, Path(workdir)))


if __name__ == "__main__":
    main()
