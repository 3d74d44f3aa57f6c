"""Queue mode's fan-out: N mailboxes, each held to Gmail's per-mailbox quota by the sandbox, K workers.

    .venv/bin/python bench/fan_out.py                              # 20 mailboxes x 600 messages, 20 workers
    .venv/bin/python bench/fan_out.py --mailboxes 20 --messages 300 --workers 10

Two runs over the same loopback Gmail: first with no quota anywhere (what this machine's CPU can do: the
ceiling when it is below the quota's), then with the sandbox enforcing 6,000 units a minute per mailbox and the
pipeline pacing itself to it (GMAIL_QUOTA_UNITS_PER_MINUTE). Each run's pipeline is a child process: the Pub/Sub
emulator between K worker threads and the merger, DuckDB as the warehouse (the merger its one writer). Reported:
messages per second (read and landed by the workers; the last merge follows within a merge interval) against the lower of N x 20/s and the CPU ceiling, the 429/403 answers the sandbox gave, and
the merger's mutating statements per table (most in any 10 s, most at once) against BigQuery's 25 and 2.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUOTA_UNITS_PER_MINUTE = 6000  # Gmail, per mailbox, projects created since 2026-05-01
MESSAGES_PER_SECOND_AT_QUOTA = QUOTA_UNITS_PER_MINUTE / 60 / 5  # messages.get costs 5 units: 20 a second


def child(endpoint: str, mailboxes: list[str], db: str, workers: int, quota: int, batch: int = 50,
          page: int = 500) -> None:
    from config.settings import Settings
    from pipeline.runtime import Runtime
    from scripts.fan_out import LocalFanOut, max_dml_in_window, max_in_flight
    from warehouse import DuckDBWarehouse

    tag = uuid.uuid4().hex[:6]
    settings = Settings(_env_file=None, gmail_api_endpoint=endpoint, mailboxes=mailboxes, duckdb_path=Path(db),
                        errors_file=Path(db).with_suffix(".errors"), gmail_quota_units_per_minute=quota,
                        dispatch="queue", work_topic_prefix=f"work-{tag}-", landing_topic=f"landed-{tag}",
                        work_dead_letter_topic=f"dead-{tag}", merge_interval_seconds=5, gmail_batch_size=batch,
                        gmail_list_page_size=page)
    warehouse = DuckDBWarehouse(db, memory_limit=settings.duckdb_memory_limit)
    warehouse.ensure_schema()
    runtime = Runtime.around(settings, warehouse)
    started = time.perf_counter()
    with LocalFanOut(runtime, ["gmail"], workers=workers) as fan:
        fan.enqueue("gmail", "full")
        done = fan.wait_until_done(timeout=3600)
        worker_seconds = time.perf_counter() - started  # every stream read and landed
        fan.drain()
    seconds = time.perf_counter() - started  # and merged
    statements = fan.merger.window.statements
    counts = warehouse.query("SELECT COUNT(*) AS n, COUNT(DISTINCT mailbox) AS boxes FROM sales_intelligence.gmail_messages")[0]
    complete = warehouse.query("SELECT COUNT(DISTINCT stream) AS n FROM sales_intelligence.etl_runs "
                               "WHERE source = 'gmail' AND status = 'success'")[0]["n"]
    warehouse.close()
    print("RESULT " + json.dumps({
        "done": done, "messages": counts["n"], "mailboxes_complete": complete, "seconds": seconds,
        "worker_seconds": worker_seconds,
        "merges": len(statements), "most_dml_per_table_in_10s": max_dml_in_window(statements),
        "most_dml_at_once": max_in_flight(statements), "retried": fan.stats.retried,
        "dead_lettered": fan.stats.dead_lettered}))


def measure(mailboxes: list[str], messages: int, workers: int, quota: int | None, workdir: Path) -> dict:
    from sandbox.gmail import GmailSandbox

    with GmailSandbox(mailboxes, messages, ugly_every=0, quota_units_per_minute=quota) as sandbox:
        env = {**os.environ, "GMAIL_SERVICE_ACCOUNT_KEY": sandbox.service_account_key()}
        out = subprocess.run([sys.executable, __file__, "--child", "--endpoint", f"{sandbox.url}/",
                              "--mailbox-list", ",".join(mailboxes), "--db", str(workdir / f"{uuid.uuid4().hex}.duckdb"),
                              "--workers", str(workers), "--quota", str(quota or 0)],
                             cwd=ROOT, env=env, capture_output=True, text=True)
        refused = sandbox.state.rate_limited
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"child failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result["refused_429_or_403"] = refused
    result["messages_per_second"] = result["messages"] / result["worker_seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--messages", type=int, default=600, help="messages per mailbox")
    parser.add_argument("--workers", type=int, default=20)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--endpoint")
    parser.add_argument("--mailbox-list")
    parser.add_argument("--db")
    parser.add_argument("--quota", type=int, default=0)
    parser.add_argument("--batch", type=int, default=50, help="GMAIL_BATCH_SIZE (messages.get per batch request)")
    parser.add_argument("--page", type=int, default=500, help="GMAIL_LIST_PAGE_SIZE (messages a page)")
    args = parser.parse_args()
    if args.child:
        child(args.endpoint, args.mailbox_list.split(","), args.db, args.workers, args.quota, args.batch, args.page)
        return
    from scripts.fan_out import pubsub_emulator

    mailboxes = [f"rep{n:03d}@ourcompany.example" for n in range(args.mailboxes)]
    with tempfile.TemporaryDirectory() as tmp, pubsub_emulator(log_dir=Path(tmp)):
        ceiling = measure(mailboxes, args.messages, args.workers, None, Path(tmp))
        quota = measure(mailboxes, args.messages, args.workers, QUOTA_UNITS_PER_MINUTE, Path(tmp))
    quota_ceiling = args.mailboxes * MESSAGES_PER_SECOND_AT_QUOTA
    bound, which = min((quota_ceiling, f"the quota ({args.mailboxes} x 20/s)"),
                       (ceiling["messages_per_second"], "this machine's CPU (the run without a quota)"))
    print(f"fan-out: {args.mailboxes} mailboxes x {args.messages} messages, {args.workers} workers, DuckDB, "
          f"Pub/Sub emulator")
    for name, run in (("no quota (CPU ceiling)", ceiling), ("quota enforced", quota)):
        print(f"  {name:24s} {run['messages']:6d} messages read and landed in {run['worker_seconds']:6.1f} s = "
              f"{run['messages_per_second']:6.1f} msg/s (all merged at {run['seconds']:.1f} s); mailboxes complete {run['mailboxes_complete']}/"
              f"{args.mailboxes}; 429/403 {run['refused_429_or_403']}; MERGEs {run['merges']}, most per table in "
              f"10 s {max(run['most_dml_per_table_in_10s'].values(), default=0)}, at once "
              f"{max(run['most_dml_at_once'].values(), default=0)}; retried {run['retried']}")
    print(f"  ceiling: {bound:.1f} msg/s, set by {which}; quota run reached {quota['messages_per_second'] / bound:.2f} "
          f"of it (goal 0.9)")
    print("  most mutating statements per table in any 10 s (quota run): "
          + json.dumps(quota["most_dml_per_table_in_10s"], sort_keys=True))


if __name__ == "__main__":
    main()
