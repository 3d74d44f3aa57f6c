"""The local runner: the whole pipeline on one laptop (what `make run` calls).

    python -m scripts.run_local run                 every source, then entity resolution, then a summary
    python -m scripts.run_local sync SOURCE [--full]
    python -m scripts.run_local resolve [--full]
    python -m scripts.run_local recommend            the day's rule-based account recommendations
    python -m scripts.run_local serve [--port P]     every function under functions-framework (+ sandboxes)
    python -m scripts.run_local schedule [--minutes N]   fire schedules.yaml's jobs on their crons
    python -m scripts.run_local report [--json | --html FILE]
    python -m scripts.run_local check                exit 1 naming each source whose last success is too old
    python -m scripts.run_local sql "SELECT ..." | --file F [--format table|csv|json]   BigQuery SQL
    python -m scripts.run_local review list | approve|reject --value V --candidate-type T --candidate-id ID
    python -m scripts.run_local import FILE... [--mailbox A] | --watch [DIR]   dropped files (CRM exports, mbox)
    python -m scripts.run_local import-mbox FILE --mailbox ADDRESS   a Google Takeout mbox

Sources talk to their real APIs with the configured credentials; `--sandboxes` (or SANDBOXES=true;
`make run` asks) points every one at its loopback sandbox instead, never with a real BigQuery warehouse.
A user error (a missing file or secret, a bad setting, a locked warehouse, a refused API call) is one
line on stderr and exit code 1 (2 for bad arguments, 130 for Ctrl-C); `--debug` adds the traceback.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from pydantic import ValidationError

from config.schedules import Job, load_jobs
from config.settings import Settings, get_settings, unknown_dotenv_keys
from observability.logger import configure_logging, redact
from observability.monitoring import ErrorPublisher
from pipeline.cancellation import CANCELLING, RunCancelled, cancellation_for, install_stop_handlers
from pipeline.etl_runs import STATUSES, record_failed_invocation
from pipeline.runtime import Runtime, set_runtime
from scripts.drop_import import run_drop_folder
from scripts.local_schedule import run_schedule
from scripts.local_sources import SOURCES, NotConfigured, endpoints, sandboxes_allowed
from scripts.progress import show_progress
from warehouse import Warehouse, open_warehouse
from warehouse.schemas import load_table_specs


def sources_in_schedule_order() -> list[str]:
    """The sources in the order of their jobs (config/schedules.py)."""
    by_entry_point = {source.entry_point: name for name, source in SOURCES.items()}
    ordered: list[str] = []
    for job in load_jobs()[1]:
        name = by_entry_point.get(job.function)
        if name and name not in ordered:
            ordered.append(name)
    return ordered


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


def print_run(source: str, run: dict[str, Any]) -> None:
    print(f"  {source} {run['stream']:<13} {run['status']:<8} fetched {run['rows_fetched']:>7,} "
          f"loaded {run['rows_loaded']:>7,} rejected {run['rows_rejected']:>4,} "
          f"via {run['details'].get('api', '-'):<5} {run['duration_seconds']:>6.2f} s"
          + (f"  ({run['stop_reason']})" if run.get("stop_reason") else ""), flush=True)
    missing = (run["details"].get("schema") or {}).get("fields_missing")
    if missing:
        print(f"warning: {source} {run['stream']}: custom fields not in the org (misspelt, or deleted): "
              f"{', '.join(missing)}", file=sys.stderr, flush=True)


def sync(runtime: Runtime, names: list[str], full: bool, sandboxes: bool, then_resolve: bool = False,
         drops: Callable[[Runtime], None] | None = None) -> None:
    """Syncs the named sources (each against its API or sandbox), going on past one that fails, then imports the
    file drops (`drops`, when given), then optionally resolves entities with the same settings, so the mailboxes
    synced are the ones counted as internal. Raises RunFailed naming every source that failed, once the rest have
    run."""
    with endpoints(runtime, names, sandboxes, required=len(names) == 1) as (rt, usable):
        if not usable:
            raise NothingConfigured(f"no source is configured (of {', '.join(names)}): set a source's credentials "
                                    f"(README, Configuration) or run against the sandboxes with --sandboxes")
        failures = []
        for name in usable:
            try:
                SOURCES[name].sync(rt, full, partial(print_run, name))
            except Exception as error:
                stop = cancellation_for(error)  # a signal DuckDB turned into "Query interrupted" outside a run
                if stop is not None:
                    raise stop from error
                failures.append(RunFailed.recorded(name, error, rt))
                if len(usable) > 1:  # said as it happens; the summary at the end names it again
                    print(f"  {redact(str(failures[-1]))}", file=sys.stderr, flush=True)
        if drops is not None:
            try:
                drops(rt)
            except Exception as error:  # a file that cannot be read stops neither the other files nor resolution
                failures.append(RunFailed(f"file drops: {error}"))
                print(f"  {redact(str(failures[-1]))}", file=sys.stderr, flush=True)
        if then_resolve:
            resolve(rt, full=False)
    if failures:
        raise failures[0] if len(failures) == 1 else RunFailed.of_several(failures, len(usable))


class RunFailed(Exception):
    """A source's run failed (recorded in etl_runs and published), or several did; the message names each."""

    @classmethod
    def recorded(cls, source: str, error: Exception, runtime: Runtime) -> "RunFailed":
        """The failure of one source, recorded here too if it failed before its run started."""
        run_id = record_failed_invocation(runtime.warehouse, runtime.publisher, source=source, error=error,
                                          trigger="local")
        return cls(f"{source} failed: {type(error).__name__}: {error} (run {run_id}, recorded in etl_runs)")

    @classmethod
    def of_several(cls, failures: list["RunFailed"], attempted: int) -> "RunFailed":
        """One error for several failed sources, each on its own line."""
        lines = "\n  ".join(str(failure) for failure in failures)
        return cls(f"{len(failures)} of {attempted} sources failed:\n  {lines}")


class NothingConfigured(Exception):
    """`run` or `sync` found no source configured: nothing would run, which is not a success."""


def resolve(runtime: Runtime, full: bool) -> dict[str, Any]:
    from entity_resolution.matcher import ResolutionRequest, resolve_entities

    summary = resolve_entities(ResolutionRequest(sync_type="full" if full else "incremental", trigger="local"), runtime)
    if summary["status"] == "skipped":
        print(f"  entity resolution skipped: run {summary['held_by']} is resolving", flush=True)
        return summary
    print(f"  entity resolution {summary['status']}: {summary['values_examined']:,} values examined, linked by method "
          f"{summary['linked_by_method']}, ambiguous {summary['ambiguous']:,}, suggested {summary['suggested']:,}, "
          f"internal {summary['internal']:,}, "
          f"rows updated {summary['rows_updated']}", flush=True)
    return summary


def recommend(runtime: Runtime) -> dict[str, Any]:
    from recommendations.rules import RecommendationRequest, recommend_accounts

    summary = recommend_accounts(RecommendationRequest(trigger="local"), runtime)
    if summary["status"] == "skipped":
        print(f"  account recommendations skipped: run {summary['held_by']} is running", flush=True)
    else:
        print(f"  account recommendations {summary['status']}: {summary['recommendations']:,} "
              f"by rule {summary['by_rule']}", flush=True)
    return summary


def report(warehouse: Warehouse, expected: dict[str, list[str]] | None = None) -> None:
    from scripts.run_history import dead_letters, headline, print_dead_letters, print_push_runs, print_streams, push_runs, stream_health

    ds = warehouse.dataset
    health = stream_health(warehouse, expected)
    print(headline(health))
    print_streams(health)
    print_dead_letters(dead_letters(warehouse))
    print_push_runs(push_runs(warehouse))
    print("rows per table:")
    for table, count in warehouse.table_counts().items():
        print(f"  {table:<26} {count:>10,}")
    runs = warehouse.query(
        f"SELECT source, stream, status, rows_loaded, rows_rejected, duration_seconds "
        f"FROM {ds}.etl_runs ORDER BY started_at DESC LIMIT 12")
    if runs:
        print("latest runs:")
        for run in runs:
            print(f"  {run['source']:<18} {run['stream'] or '-':<14} {run['status']:<8} "
                  f"loaded {run['rows_loaded'] or 0:>8,} rejected {run['rows_rejected'] or 0:>6,} "
                  f"{run['duration_seconds'] or 0:>7.2f} s")
    rates = warehouse.query(
        f"SELECT source, match_method, SUM(row_count) AS row_count FROM {ds}.v_match_quality "
        f"GROUP BY source, match_method ORDER BY source, row_count DESC")
    if rates:
        print("match rates by method:")
        totals: dict[str, int] = {}
        for row in rates:
            totals[row["source"]] = totals.get(row["source"], 0) + row["row_count"]
        for row in rates:
            print(f"  {row['source']:<8} {row['match_method']:<18} {row['row_count']:>9,} "
                  f"{100 * row['row_count'] / totals[row['source']]:>6.1f} %")
    unmatched = warehouse.query(
        f"SELECT value_type, value, occurrences FROM {ds}.v_unmatched_addresses "
        f"ORDER BY occurrences DESC, value LIMIT 10")
    if unmatched:
        print("top unmatched addresses and numbers (lead candidates):")
        for row in unmatched:
            print(f"  {row['value_type']:<6} {row['value']:<40} {row['occurrences']:>6,}")
    print_imported_deals(warehouse)
    print_cost(warehouse)


IMPORTED_DEALS_SQL = """
SELECT d.source_crm, COUNT(*) AS deals,
  COUNTIF(COALESCE(d.sf_contact_id, d.sf_lead_id, d.phone_sf_contact_id, d.phone_sf_lead_id) IS NOT NULL) AS contacts,
  COUNTIF(m.deal_key IS NOT NULL) AS accounts, COUNTIF(COALESCE(m.review, 0) > 0) AS account_review, COUNTIF(f.deal_key IS NOT NULL) AS flagged
FROM {ds}.crm_deals AS d
LEFT JOIN (SELECT deal_key, COUNTIF(needs_review) AS review FROM {ds}.v_crm_deal_account_matches GROUP BY deal_key) AS m
  ON m.deal_key = d.deal_key
LEFT JOIN (SELECT DISTINCT deal_key FROM {ds}.v_crm_deal_opportunity_flags) AS f ON f.deal_key = d.deal_key
GROUP BY d.source_crm ORDER BY d.source_crm"""


def print_imported_deals(warehouse: Warehouse) -> None:
    """The deals of dropped CRM exports per CRM, and how many were matched to Salesforce or flagged for review."""
    rows = warehouse.query(IMPORTED_DEALS_SQL.format(ds=warehouse.dataset))
    if rows:
        print("imported deals (file drops): contact matched to Salesforce, account found (by name only: to review), "
              "looks like an opportunity (to review):")
        for row in ({key: value or 0 for key, value in row.items()} for row in rows):  # COUNTIF of no row: NULL
            print(f"  {row['source_crm']:<10} deals {row['deals']:>6,}  contact matched {row['contacts']:>6,}  "
                  f"account {row['accounts']:>6,} (name only {row['account_review']:,})  "
                  f"like an opportunity {row['flagged']:>4,}")


def print_cost(warehouse: Warehouse) -> None:
    """What the runs of the last 7 days asked of the warehouse, per source and day (their etl_runs ledgers)."""
    from warehouse.job_ledger import cost_by_source_and_day

    days = cost_by_source_and_day(warehouse)
    if days:
        print("warehouse jobs per source and day (bytes as BigQuery bills them; 0 on DuckDB):")
        for row in days:
            print(f"  {row['day']} {row['source']:<18} runs {row['runs']:>4,} statements {row['statements'] or 0:>6,} "
                  f"billed {(row['bytes_billed'] or 0) / 2**30:>8.3f} GiB  slot {(row['slot_ms'] or 0) / 1000:>8.1f} s")


def review(warehouse: Warehouse, settings: Settings, args: argparse.Namespace) -> None:
    """`review list`, or one decision kept in manual_mappings."""
    from entity_resolution.matcher import open_candidates, record_review

    if args.decision == "list":
        candidates = open_candidates(warehouse, args.limit)
        print(f"{len(candidates)} candidate(s) awaiting review" + (":" if candidates else ""))
        for row in candidates:
            print(f"  {row['value_type']:<5} {row['value']:<40} {row['candidate_type']:<7} {row['candidate_id']:<18} "
                  f"{row['match_method']:<16} {row['match_confidence'] or 0:.2f} x{row['occurrences'] or 0:<4} "
                  f"{row['reason'] or ''}")
        return
    value = record_review(warehouse, value_type=args.value_type, value=args.value,
                          candidate_type=args.candidate_type, candidate_id=args.candidate_id,
                          decision="approved" if args.decision == "approve" else "rejected",
                          reviewer=args.reviewer, note=args.note, region=settings.default_phone_region)
    print(f"{args.decision}d {args.candidate_type} {args.candidate_id.strip()} for {value}; "
          f"the next resolution run applies it")


def serve(runtime: Runtime, port: int, sandboxes: bool) -> None:
    """Every entry point of main.py under functions-framework, each on its own port, until interrupted."""
    import functions_framework
    from werkzeug.serving import make_server

    import main

    with endpoints(runtime, sources_in_schedule_order(), sandboxes, required=False) as (rt, _usable):
        set_runtime(rt)
        servers = []
        for offset, target in enumerate(main.__all__):
            app = functions_framework.create_app(target=target, source=str(Path(main.__file__)))
            refuse_busy_port(port + offset if port else 0)  # werkzeug would print two lines and exit
            server = make_server("127.0.0.1", port + offset if port else 0, app, threaded=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            print(f"{target}: http://127.0.0.1:{server.server_port}/", flush=True)
            print(f"  curl -s -X POST -H 'Content-Type: application/json' {EVENT_HEADERS.get(target, '')}"
                  f"-d '{EXAMPLE_BODIES.get(target, '{}')}' http://127.0.0.1:{server.server_port}/", flush=True)
        print("serving; Ctrl-C stops", flush=True)
        try:
            threading.Event().wait()
        except CANCELLING:
            pass
        finally:
            for server in servers:
                server.shutdown()


class PortBusy(OSError):
    """`serve` was given a port another program holds."""


def refuse_busy_port(port: int) -> None:
    """Raises PortBusy when 127.0.0.1:port cannot be listened on (0: any free port, never busy)."""
    if not port:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds: TIME_WAIT is no holder
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise PortBusy(f"port {port} on 127.0.0.1 is in use by another program: stop it, or give --port 0 "
                           f"(any free ports) or another --port") from None


EXAMPLE_BODIES = {"salesforce_sync": '{"object_type": "Account"}', "dialpad_sync": '{"sync_type": "incremental"}',
                  "entity_resolution": '{"sync_type": "incremental"}',
                  "file_drop": '{"bucket": "drops", "name": "crm/acme/deals.csv", "generation": "1", "size": "0"}'}
# CloudEvent entry points take Eventarc's event (binary mode: its attributes as ce- headers); file_drop reads the
# object it names from STORAGE_API_ENDPOINT (sandbox/cloud_storage.py serves files and prints their events).
EVENT_HEADERS = {"file_drop": "-H 'ce-id: 1' -H 'ce-specversion: 1.0' -H 'ce-type: google.cloud.storage.object.v1.finalized' "
                              "-H 'ce-source: //storage.googleapis.com/projects/_/buckets/drops' "}


def fire_locally(runtime: Runtime):
    """A scheduler job's POST, delivered in-process to the entry point it names."""
    import flask

    import main

    app = flask.Flask("local-scheduler")

    def fire(job: Job) -> None:
        with app.test_request_context(method="POST", json=job.body):
            body, status, _ = getattr(main, job.function)(flask.request)
        print(f"schedule: {job.name} -> HTTP {status} {body[:300]}", flush=True)

    return fire


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run_local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    with_sources = argparse.ArgumentParser(add_help=False)
    with_sources.add_argument("--sandboxes", action="store_true", default=None,
                              help="every source talks to its loopback sandbox (SANDBOXES=true)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the warehouse with every table and view")
    sub.add_parser("run", parents=[with_sources], help="every source, then entity resolution, then the summary")
    sync_parser = sub.add_parser("sync", parents=[with_sources], help="one source")
    sync_parser.add_argument("source", choices=sorted(SOURCES))
    sync_parser.add_argument("--full", action="store_true")
    resolve_parser = sub.add_parser("resolve", help="entity resolution")
    resolve_parser.add_argument("--full", action="store_true")
    sub.add_parser("recommend", help="the day's rule-based account recommendations (account_recommendations)")
    sub.add_parser("doctor", parents=[with_sources], help="per source: credentials and one cheap read; what to fix")
    serve_parser = sub.add_parser("serve", parents=[with_sources], help="every function under functions-framework")
    serve_parser.add_argument("--port", type=int, default=8080, help="first port (0: any free ones)")
    schedule_parser = sub.add_parser("schedule", parents=[with_sources], help="fire schedules.yaml's jobs on their crons")
    schedule_parser.add_argument("--minutes", type=positive_int, default=None, help="stop after this many minutes")
    fan_out = sub.add_parser("fan-out", parents=[with_sources], help="queue mode on this machine: one work message "
                             "per stream, workers and the merger over the Pub/Sub emulator (started if needed)")
    fan_out.add_argument("sources", nargs="*", help="sources to enqueue (default: every one, schedule order)")
    fan_out.add_argument("--workers", type=positive_int, default=4, help="workers per source (default 4)")
    fan_out.add_argument("--full", action="store_true")
    fan_out.add_argument("--timeout", type=positive_int, default=1800, help="seconds to wait for every stream")
    _add_reading_commands(sub)
    sql_parser = sub.add_parser("sql", help="BigQuery SQL on the warehouse (on DuckDB through the pipeline's "
                                            "translation)")
    sql_parser.add_argument("query", nargs="?", help="one or more statements separated by ;")
    sql_parser.add_argument("--file", type=Path, help="read the SQL from this file (- for stdin)")
    sql_parser.add_argument("--format", choices=["table", "csv", "json"], default="table",
                            help="table (default), csv with a header, or JSON lines")
    review = sub.add_parser("review", help="list the match candidates awaiting review, or approve or reject one "
                                           "(kept in manual_mappings)")
    decisions = review.add_subparsers(dest="decision", required=True)
    listing = decisions.add_parser("list", help="the candidates awaiting review, most frequent first")
    listing.add_argument("--limit", type=positive_int, default=50)
    for decision in ("approve", "reject"):
        decide = decisions.add_parser(decision, help=f"{decision} one candidate")
        decide.add_argument("--value-type", choices=["email", "phone"], required=True)
        decide.add_argument("--value", required=True)
        decide.add_argument("--candidate-type", choices=["contact", "lead", "account"], required=True)
        decide.add_argument("--candidate-id", required=True)
        decide.add_argument("--reviewer", default="local")
        decide.add_argument("--note", default="")
    drops = sub.add_parser("import", help="load dropped files (CRM exports, mbox archives) as the file_drop "
                                          "function does; or watch a folder for them")
    drops.add_argument("files", nargs="*", type=Path)
    drops.add_argument("--mailbox", help="the mailbox an mbox came from (else the address its path names)")
    drops.add_argument("--watch", nargs="?", type=Path, const=Path(""), default=None, metavar="DIR",
                       help="import every file that appears or changes under DIR (FILE_DROP_FOLDER when not given), "
                            "until Ctrl-C")
    mbox = sub.add_parser("import-mbox", help="load a Google Takeout mbox into the Gmail tables")
    mbox.add_argument("file", type=Path)
    mbox.add_argument("--mailbox", required=True, help="the mailbox the export came from")
    args = parser.parse_args(argv)
    if args.command == "sql" and (args.query is None) == (args.file is None):
        parser.error("sql: give the SQL as an argument or --file, not both")
    if args.command == "import" and not args.files and args.watch is None:
        parser.error("import: give the files to import, or --watch [DIR]")
    return args


def positive_int(text: str) -> int:
    """An argparse type: a whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not above zero")
    return value


def since_argument(text: str) -> datetime:
    """An argparse type: `30m`, `6h`, `7d` ago, or an ISO date or time."""
    from scripts.run_history import parse_since

    try:
        return parse_since(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _add_reading_commands(sub: Any) -> None:
    """report, check, runs and show: they read the warehouse and change nothing."""
    report_parser = sub.add_parser("report", help="stream health, rows per table, runs, match rates, top unmatched")
    report_parser.add_argument("--json", action="store_true", help="the report as JSON on stdout, for scripts")
    report_parser.add_argument("--html", type=Path, metavar="FILE",
                               help="also write a self-contained page with charts to FILE")
    report_parser.add_argument("--days", type=positive_int, default=30, help="days of history for --json and --html")
    sub.add_parser("check", help="exit 1 naming each stream whose latest run failed or whose last success is older "
                                 "than twice its schedule")
    runs = sub.add_parser("runs", help="the latest runs, newest first (filter by source, stream, status, since)")
    runs.add_argument("--source")
    runs.add_argument("--stream")
    runs.add_argument("--status", choices=STATUSES)
    runs.add_argument("--since", type=since_argument, help="30m, 6h, 7d or an ISO date (UTC)")
    runs.add_argument("--limit", type=positive_int, default=20)
    show = sub.add_parser("show", help="one run's whole record: details, warehouse jobs, rejects, the error")
    show.add_argument("run_id")


def open_for(command: str, settings: Settings) -> Warehouse:
    """The warehouse; `report`, `review` and `sql` read an existing one and never create an empty one."""
    if command in READING_COMMANDS and settings.warehouse == "duckdb" and not settings.duckdb_path.exists():
        raise FileNotFoundError(f"no warehouse at {settings.duckdb_path}: `run`, `sync` or `init` creates it")
    try:
        return open_warehouse(settings)
    except Exception as error:
        if "lock" in str(error).lower():
            raise WarehouseBusy(f"the warehouse {settings.duckdb_path} is in use by another process "
                                f"({str(error).partition('(')[2].partition(')')[0] or 'see DuckDB'}): "
                                f"stop `serve` or the other run, then try again") from error
        raise


READING_COMMANDS = ("report", "review", "sql", "check", "runs", "show")


class WarehouseBusy(Exception):
    """The DuckDB file is held by another process."""


def execute(args: argparse.Namespace, settings: Settings) -> None:
    """Runs one command against the warehouse the settings name."""
    sandboxes = settings.sandboxes if getattr(args, "sandboxes", None) is None else args.sandboxes
    if sandboxes and args.command in ("run", "sync", "serve", "schedule", "doctor", "fan-out"):
        sandboxes_allowed(settings)  # before the warehouse is even opened
    if args.command == "import-mbox" and not args.file.is_file():
        raise FileNotFoundError(f"no such mbox file: {args.file}")
    for path in getattr(args, "files", None) or ():
        if not path.is_file():
            raise FileNotFoundError(f"no such file to import: {path}")
    if args.command == "sql" and args.file is not None and str(args.file) != "-" and not args.file.is_file():
        raise FileNotFoundError(f"no such SQL file: {args.file}")
    try:
        warehouse = open_for(args.command, settings)
    except WarehouseBusy as busy:  # recorded where it can be: the error sink (etl_runs is in that very file)
        ErrorPublisher(settings).publish(source="local_runner", run_id=None, error=busy,
                                         context={"command": args.command})
        raise
    runtime = Runtime.around(settings, warehouse)
    try:
        with show_progress():
            run_command(args, settings, runtime, sandboxes)
    finally:
        warehouse.close()


@dataclass
class Command:
    """One command line, over an open warehouse."""

    args: argparse.Namespace
    settings: Settings
    runtime: Runtime
    sandboxes: bool

    @property
    def warehouse(self) -> Warehouse:
        return self.runtime.warehouse


def do_init(cmd: Command) -> None:
    init(cmd.warehouse, cmd.settings)


def do_run(cmd: Command) -> None:
    """Every source, entity resolution, recommendations and the report; a failed source stops none of them and
    fails the command at the end."""
    init(cmd.warehouse, cmd.settings)
    failed: RunFailed | None = None
    try:
        sync(cmd.runtime, sources_in_schedule_order(), full=False, sandboxes=cmd.sandboxes, then_resolve=True,
             drops=partial(run_drop_folder, sandboxes=cmd.sandboxes))
    except RunFailed as error:
        failed = error
    recommend(cmd.runtime)
    report(cmd.warehouse, expected_streams(cmd.settings))
    if failed:
        raise failed


def do_sync(cmd: Command) -> None:
    sync(cmd.runtime, [cmd.args.source], cmd.args.full, sandboxes=cmd.sandboxes)


def doctor_command(cmd: Command) -> None:
    from scripts.doctor import doctor

    print("each source's credentials and one cheap read (nothing is written):")
    doctor(cmd.runtime, cmd.sandboxes)


def do_schedule(cmd: Command) -> None:
    with endpoints(cmd.runtime, sources_in_schedule_order(), cmd.sandboxes, required=False) as (rt, _usable):
        set_runtime(rt)
        run_schedule(fire_locally(rt), cmd.args.minutes)


def do_import(cmd: Command) -> None:
    """`import FILE...` and `import --watch [DIR]`: each file as a drop (an mbox needs --mailbox or a mailbox in
    its path)."""
    from scripts.drop_import import import_files, watch

    args = cmd.args
    mailbox = args.mailbox.strip().lower() if args.mailbox else None
    if args.files:
        import_files(args.files, cmd.runtime, mailbox)
    if args.watch is not None:
        watch(args.watch or cmd.settings.file_drop_folder, cmd.runtime)


def do_fan_out(cmd: Command) -> None:
    """Queue mode on this machine (scripts.fan_out), then entity resolution and the report."""
    from scripts.fan_out import pubsub_emulator, run_fan_out

    names = cmd.args.sources or sources_in_schedule_order()
    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        raise NotConfigured(f"fan-out: no such source {', '.join(unknown)} (sources: {', '.join(SOURCES)})")
    init(cmd.warehouse, cmd.settings)
    with pubsub_emulator() as host, endpoints(cmd.runtime, names, cmd.sandboxes, required=False) as (rt, usable):
        print(f"work queue: Pub/Sub at {host}", flush=True)
        run_fan_out(rt, usable, workers=cmd.args.workers, full=cmd.args.full, timeout=cmd.args.timeout)
        resolve(rt, full=False)
    report(cmd.warehouse, expected_streams(cmd.settings))


def do_import_mbox(cmd: Command) -> None:
    from scripts.mbox_import import import_mbox

    print_run("gmail", import_mbox(cmd.args.file, cmd.args.mailbox.strip().lower(), cmd.runtime))


def do_sql(cmd: Command) -> None:
    from scripts.analyst_sql import run_sql

    args = cmd.args
    text = args.query if args.query is not None else (sys.stdin.read() if str(args.file) == "-" else args.file.read_text())
    run_sql(cmd.warehouse, text, args.format)


def do_check(cmd: Command) -> None:
    from scripts.run_history import check

    print("each stream's latest run and last success against config/schedules.yaml:")
    check(cmd.warehouse, expected_streams(cmd.settings))


def expected_streams(settings: Settings) -> dict[str, list[str]]:
    """Streams that should exist whether or not they ever ran: every configured mailbox."""
    return {"gmail": list(settings.mailboxes)}


def do_runs(cmd: Command) -> None:
    from scripts.run_history import RunFilter, list_runs, run_line

    args = cmd.args
    found = list_runs(cmd.warehouse, RunFilter(args.source, args.stream, args.status, args.since, args.limit))
    if not found:
        print("no run matches")
    for run in found:
        print(run_line(run))


def do_show(cmd: Command) -> None:
    from scripts.run_history import show_run

    print(show_run(cmd.warehouse, cmd.args.run_id.strip()))


def do_report(cmd: Command) -> None:
    from scripts.run_report import report_data, to_json, write_html

    args = cmd.args
    if not (args.json or args.html):
        report(cmd.warehouse, expected_streams(cmd.settings))
        return
    data = report_data(cmd.warehouse, args.days, expected_streams(cmd.settings))
    if args.html:
        write_html(data, args.html)
    print(to_json(data) if args.json else f"wrote {args.html}")


HANDLERS: dict[str, Callable[[Command], object]] = {
    "init": do_init, "run": do_run, "sync": do_sync, "resolve": lambda cmd: resolve(cmd.runtime, cmd.args.full),
    "recommend": lambda cmd: recommend(cmd.runtime), "serve": lambda cmd: serve(cmd.runtime, cmd.args.port, cmd.sandboxes),
    "schedule": do_schedule, "doctor": doctor_command, "import-mbox": do_import_mbox, "import": do_import, "review": lambda cmd: review(cmd.warehouse, cmd.settings, cmd.args),
    "sql": do_sql, "check": do_check, "report": do_report, "runs": do_runs, "show": do_show, "fan-out": do_fan_out,
}


def run_command(args: argparse.Namespace, settings: Settings, runtime: Runtime, sandboxes: bool) -> None:
    """One command over an open warehouse: the tables made sure of (except for the reading commands), then its handler."""
    if args.command not in READING_COMMANDS and args.command not in ("init", "run"):
        runtime.warehouse.ensure_schema()
    HANDLERS[args.command](Command(args, settings, runtime, sandboxes))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    install_stop_handlers()  # its own, whatever this process inherited (a background job ignores SIGINT)
    try:
        for key, likely in unknown_dotenv_keys():
            print(f"warning: .env sets {key}, which is not a setting" + (f" (did you mean {likely}?)" if likely else
                  " (secrets are never read from .env; README, Configuration lists the settings)"), file=sys.stderr)
        settings = get_settings()
        # The runner's own lines are its output; logs join them only when LOG_LEVEL asks.
        configure_logging(settings.log_level if "log_level" in settings.model_fields_set else "CRITICAL")
        execute(args, settings)
    except CANCELLING as cancelled:
        return stopped(cancelled)
    except BrokenPipeError:  # `report | head`: the reader has gone; nothing more to say
        sys.stdout = open(os.devnull, "w")  # Python's own advice, so exit does not fail to flush
        return 0
    except Exception as error:
        interrupted_by = cancellation_for(error)  # a signal DuckDB turned into "Query interrupted"
        if interrupted_by is not None:
            return stopped(interrupted_by)
        if args.debug:
            traceback.print_exc()
        message = str(error) if isinstance(error, _user_errors()) else f"{type(error).__name__}: {error}"
        if isinstance(error, ValidationError):  # a setting: named as its environment variable
            message = "bad setting: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" if e["loc"] else e["msg"].removeprefix("Value error, ")
                for e in error.errors())
        print(f"error: {redact(message)}", file=sys.stderr)
        return 1
    return 0


def stopped(stop: BaseException) -> int:
    """Says the command was stopped by a signal; the exit code a shell gives that signal (128 + its number)."""
    if isinstance(stop, RunCancelled):
        print(f"{stop}: stopped", file=sys.stderr)
        return 128 + signal.Signals[stop.signal_name].value
    print("interrupted", file=sys.stderr)
    return 130


def _user_errors() -> tuple[type[BaseException], ...]:
    from config.secrets import SecretNotFoundError
    from entity_resolution.matcher import ReviewRefused
    from scripts.analyst_sql import NoStatement, QueryFailed
    from scripts.doctor import DoctorFound
    from scripts.drop_import import DropsRefused
    from scripts.local_sources import NotConfigured
    from scripts.mbox_import import NotAnMbox
    from scripts.run_history import RunNotFound, UnhealthyStreams

    return (RunFailed, NothingConfigured, PortBusy, WarehouseBusy, FileNotFoundError, TimeoutError, NotConfigured, SecretNotFoundError, ValidationError,
            ReviewRefused, NoStatement, QueryFailed, UnhealthyStreams, RunNotFound, NotAnMbox, DoctorFound, DropsRefused)



if __name__ == "__main__":
    sys.exit(main())
