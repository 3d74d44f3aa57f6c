"""What the runs say, per stream and per run: the operator's view (`check`, the report's headline), `runs` and `show`.

A stream (a mailbox, a Salesforce object, Dialpad's calls, ...) is healthy when its latest run did not fail and its
last success is within STALE_FACTOR times its source's longest gap between scheduled runs
(config/schedules.yaml). Every figure comes from etl_runs in BigQuery SQL, so it is the same on both warehouses.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from config.schedules import load_jobs
from scripts.local_schedule import cron_matches
from warehouse import Warehouse

# A stream is stale when its last success is older than this many times its source's schedule's longest gap.
STALE_FACTOR = 2
# Latest runs that mean the stream is not working.
FAILED_STATUSES = ("failed", "abandoned")
# Streams run once by hand, not on a schedule: never stale.
ONE_OFF_PREFIXES = ("mbox:",)
RUN_COLUMNS = ("run_id", "source", "stream", "sync_type", "trigger", "status", "started_at", "ended_at",
               "duration_seconds", "rows_fetched", "rows_loaded", "rows_rejected", "api_calls", "watermark_before",
               "watermark_after", "error_type", "error_message", "details")


def source_of(function: str) -> str:
    """The etl_runs source of a scheduled entry point (salesforce_sync -> salesforce)."""
    return function.removesuffix("_sync")


def schedule_gaps(week_start: datetime | None = None) -> dict[str, timedelta]:
    """Per source, the longest time between two of its scheduled runs over a week (all its jobs together)."""
    start = (week_start or datetime(2024, 1, 1, tzinfo=timezone.utc)).replace(second=0, microsecond=0)
    minutes = 7 * 24 * 60
    fires: dict[str, list[int]] = {}
    for job in load_jobs()[1]:
        fired = [m for m in range(minutes) if cron_matches(job.schedule, start + timedelta(minutes=m))]
        fires.setdefault(source_of(job.function), []).extend(fired)
    gaps = {}
    for source, found in fires.items():
        found = sorted(set(found))
        between = [b - a for a, b in zip(found, found[1:])] + [found[0] + minutes - found[-1]]
        gaps[source] = timedelta(minutes=max(between))
    return gaps


LATEST_RUNS_SQL = """
SELECT source, stream, run_id, status, started_at, ended_at, rows_loaded, rows_rejected, error_type, error_message,
       details
FROM `{dataset}.etl_runs`
WHERE started_at >= @since
QUALIFY ROW_NUMBER() OVER (PARTITION BY source, stream ORDER BY started_at DESC) = 1
"""
LAST_SUCCESS_SQL = """
SELECT source, stream, MAX(ended_at) AS last_success
FROM `{dataset}.etl_runs`
WHERE status = 'success'
GROUP BY source, stream
"""


def stream_health(warehouse: Warehouse, expected: Mapping[str, Iterable[str]] | None = None,
                  now: datetime | None = None, days: int = 35) -> list[dict[str, Any]]:
    """Per stream of every scheduled source: its latest run (status, age, rows, why it failed, stopped or was
    skipped), its last success and whether it is failed (latest run failed or abandoned) or stale (no success
    within STALE_FACTOR of its source's schedule; never is stale).

    The streams judged: those `expected` (every configured mailbox, run or not) and those whose latest run is
    within the stale limit (one that stopped running long ago was taken out of the configuration). One-off streams
    (an mbox import) are not judged. A failure before any stream started (stream None: a missing secret) shows
    while it is the source's latest run. A scheduled source with no stream judged is one row, stream None: nothing
    ran within its limit."""
    now = now or datetime.now(timezone.utc)
    gaps = schedule_gaps()
    latest = {(r["source"], r["stream"]): r for r in warehouse.query(
        LATEST_RUNS_SQL.format(dataset=warehouse.dataset), {"since": now - timedelta(days=days)})
        if r["source"] in gaps and not (r["stream"] or "").startswith(ONE_OFF_PREFIXES)}
    succeeded = {(r["source"], r["stream"]): r["last_success"]
                 for r in warehouse.query(LAST_SUCCESS_SQL.format(dataset=warehouse.dataset))}
    wanted = {(source, stream) for source, streams in (expected or {}).items() for stream in streams}
    keys = wanted | {key for key, run in latest.items()
                     if key[1] is not None and now - run["started_at"] <= STALE_FACTOR * gaps[key[0]]}
    for source in gaps:
        streams = [key for key in keys if key[0] == source]
        newest = max((latest[key]["started_at"] for key in streams if key in latest), default=None)
        before_start = latest.get((source, None))
        if not streams or (before_start and (newest is None or before_start["started_at"] > newest)):
            keys.add((source, None))

    def last_success(source: str, stream: str | None) -> datetime | None:
        if stream is not None:
            return succeeded.get((source, stream))
        return max((when for (s, _stream), when in succeeded.items() if s == source and when), default=None)

    return [_health(source, stream, latest.get((source, stream)), last_success(source, stream), gaps[source], now)
            for source, stream in sorted(keys, key=lambda k: (k[0], k[1] or ""))]


def _health(source: str, stream: str | None, run: dict[str, Any] | None, success: datetime | None, gap: timedelta,
            now: datetime) -> dict[str, Any]:
    age = now - success if success else None
    details = (run or {}).get("details") or {}
    return {
        "source": source, "stream": stream, "run_id": run and run["run_id"], "status": run and run["status"],
        "started_at": run and run["started_at"],
        "run_age_hours": round((now - run["started_at"]).total_seconds() / 3600, 2) if run else None,
        "rows_loaded": run and run["rows_loaded"], "rows_rejected": run and run["rows_rejected"],
        "reason": _reason(run, details), "last_success": success,
        "age_hours": round(age.total_seconds() / 3600, 2) if age is not None else None,
        "schedule_gap_hours": gap.total_seconds() / 3600,
        "failed": bool(run and run["status"] in FAILED_STATUSES),
        "stale": age is None or age > STALE_FACTOR * gap,
    }


def _reason(run: Mapping[str, Any] | None, details: Mapping[str, Any]) -> str | None:
    """Why the latest run did not simply succeed: its error, why it stopped partial, or who held the stream."""
    if not run or run["status"] in ("success", "running"):
        return None
    if run["status"] == "partial":
        return details.get("stop_reason")
    if run["status"] == "skipped":
        return f"held by {details.get('held_by')}"
    return " ".join(filter(None, (f"{run['error_type']}:" if run["error_type"] else None, run["error_message"])))


def headline(health: list[dict[str, Any]]) -> str:
    """One sentence: how many streams failed and how many are stale, named; or that all are healthy."""
    failed = [name(h) for h in health if h["failed"]]
    stale = [name(h) for h in health if h["stale"] and not h["failed"]]
    if not failed and not stale:
        return f"All {len(health)} streams healthy: each latest run worked and each succeeded within " \
               f"{STALE_FACTOR} x its schedule."
    parts = [f"{len(failed)} failed ({', '.join(failed)})"] if failed else []
    parts += [f"{len(stale)} stale ({', '.join(stale)})"] if stale else []
    return f"{len(failed) + len(stale)} of {len(health)} streams need attention: " + "; ".join(parts) + "."


def dead_letters(warehouse: Warehouse, days: float = 7) -> list[dict[str, Any]]:
    """Work messages given up in the last `days` (queue mode: work_dead_letters, recorded by the merger), newest first."""
    return warehouse.query(
        f"SELECT dead_lettered_at, source, stream, reason, attempts, error_type, error_message "
        f"FROM `{warehouse.dataset}.work_dead_letters` "
        f"WHERE dead_lettered_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @hours HOUR) "
        f"ORDER BY dead_lettered_at DESC LIMIT 50", {"hours": int(days * 24)})


def push_runs(warehouse: Warehouse, hours: float = 24) -> list[dict[str, Any]]:
    """Push runs (queue mode, push_runs: kept apart from etl_runs) of the last `hours`, per source: how many, how
    many failed, and the last failure. Read through push_runs_live: the runs not folded yet are counted too."""
    since = "started_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @hours HOUR)"
    live = "push_runs_live" in warehouse.list_tables()  # a dataset made without the fresh tier: the table alone
    table = f"`{warehouse.dataset}.{'push_runs_live' if live else 'push_runs'}`"
    summary = warehouse.query(
        f"SELECT source, COUNT(*) AS runs, COUNTIF(status = 'failed') AS failed, MAX(started_at) AS last_run "
        f"FROM {table} WHERE {since} GROUP BY source ORDER BY source", {"hours": int(hours)})
    failures: dict[str, str] = {}
    for row in warehouse.query(f"SELECT source, error_type, error_message FROM {table} WHERE {since} AND "
                               f"status = 'failed' ORDER BY started_at DESC LIMIT 500", {"hours": int(hours)}):
        failures.setdefault(row["source"], " ".join(filter(None, (row["error_type"], row["error_message"]))))
    return [{**row, "last_failure": failures.get(row["source"])} for row in summary]


def print_push_runs(summary: list[dict[str, Any]], hours: float = 24) -> None:
    """One line per source that pushed in the last `hours` (nothing when none did)."""
    if not summary:
        return
    print(f"push runs in the last {hours:g} hours (push_runs):")
    for row in summary:
        failure = f"; last failure: {row['last_failure'][:160]}" if row["last_failure"] else ""
        print(f"  {row['source']:<12} {row['runs']:>6,} runs, {row['failed']:,} failed, last at "
              f"{row['last_run']:%Y-%m-%d %H:%M}{failure}")


def print_dead_letters(letters: list[dict[str, Any]], days: float = 7) -> None:
    """The dead-lettered work messages, one line each (nothing when there are none)."""
    if not letters:
        return
    print(f"{len(letters)} work message(s) dead-lettered in the last {days:g} days (work_dead_letters):")
    for letter in letters:
        error = " ".join(filter(None, (letter["error_type"], (letter["error_message"] or "")[:160])))
        print(f"  {letter['dead_lettered_at']:%Y-%m-%d %H:%M} {letter['source']}/{letter['stream'] or '-'} after "
              f"{letter['attempts'] or '?'} attempt(s): {error}")


def name(health: Mapping[str, Any]) -> str:
    """source/stream, or the source alone when it has no stream yet."""
    return f"{health['source']}/{health['stream']}" if health["stream"] else health["source"]


def describe(health: Mapping[str, Any]) -> str:
    """One line for a person: stream, verdict, latest run, last success, and why."""
    verdict = "FAILED" if health["failed"] else "STALE" if health["stale"] else "ok"
    latest = (f"latest {health['status']} {health['run_age_hours']:.1f} h ago, {health['rows_loaded'] or 0:,} rows"
              if health["status"] else "no run")
    success = ("never succeeded" if health["age_hours"] is None
               else f"last success {health['age_hours']:.1f} h ago")
    why = f"  {health['reason'][:160]}" if health["reason"] else ""
    return f"  {name(health):<40} {verdict:<6} {latest}; {success} (limit {STALE_FACTOR * health['schedule_gap_hours']:.1f} h){why}"


class UnhealthyStreams(Exception):
    """`check` found streams whose latest run failed or whose last success is too old."""


def print_streams(health: list[dict[str, Any]]) -> None:
    """One line per stream (describe)."""
    for row in health:
        print(describe(row))


def check(warehouse: Warehouse, expected: Mapping[str, Iterable[str]] | None = None) -> list[dict[str, Any]]:
    """Each stream's health, printed; raises UnhealthyStreams naming the failed and stale ones."""
    health = stream_health(warehouse, expected)
    print_streams(health)
    if any(row["failed"] or row["stale"] for row in health):
        raise UnhealthyStreams(headline(health))
    return health


_SINCE = re.compile(r"^(\d+)\s*([mhd])$")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`30m`, `6h`, `7d` ago, or an ISO date or time (UTC when it names no zone)."""
    now = now or datetime.now(timezone.utc)
    match = _SINCE.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return now - timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: give an age (30m, 6h, 7d) or an ISO date or time (2026-12-01)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@dataclass
class RunFilter:
    """Which runs `runs` lists."""

    source: str | None = None
    stream: str | None = None
    status: str | None = None
    since: datetime | None = None
    limit: int = 20


def list_runs(warehouse: Warehouse, wanted: RunFilter) -> list[dict[str, Any]]:
    """The newest runs that match, newest first."""
    conditions, params = ["started_at >= @since"], {"since": wanted.since or datetime(1970, 1, 1, tzinfo=timezone.utc),
                                                    "limit": wanted.limit}
    for column in ("source", "stream", "status"):
        value = getattr(wanted, column)
        if value is not None:
            conditions.append(f"{column} = @{column}")
            params[column] = value
    return warehouse.query(
        f"SELECT run_id, source, stream, sync_type, status, started_at, duration_seconds, rows_loaded, rows_rejected, "
        f"error_type, error_message, details FROM `{warehouse.dataset}.etl_runs` WHERE {' AND '.join(conditions)} "
        f"ORDER BY started_at DESC LIMIT @limit", params)


def run_line(run: Mapping[str, Any]) -> str:
    """One line of `runs`."""
    why = _reason(run, run.get("details") or {})
    return (f"{run['run_id']:<44} {run['source']:<18} {(run['stream'] or '-')[:28]:<28} {run['status']:<9} "
            f"{run['started_at']:%Y-%m-%d %H:%M:%S} {run['duration_seconds'] or 0:>8.1f} s "
            f"{run['rows_loaded'] or 0:>9,} rows" + (f"  {why[:120]}" if why else ""))


class RunNotFound(LookupError):
    """`show` was given a run id etl_runs does not hold."""


def show_run(warehouse: Warehouse, run_id: str, rejects_shown: int = 10) -> str:
    """The whole record of one run as text: every column, its details (warehouse jobs among them) as JSON, the
    error in full, and the records it rejected (count by reason and the first few keys)."""
    from transform.values import json_ready

    ds = warehouse.dataset
    rows = warehouse.query(f"SELECT {', '.join(RUN_COLUMNS)} FROM `{ds}.etl_runs` WHERE run_id = @run_id",
                           {"run_id": run_id})
    if not rows:
        raise RunNotFound(f"no run {run_id!r} in etl_runs: `runs` lists the recent ones")
    run = rows[0]
    lines = [f"{column:<17} {run[column]}" for column in RUN_COLUMNS if column not in ("details", "error_message")]
    if run["error_message"]:
        lines += ["error_message", *("  " + line for line in run["error_message"].splitlines())]
    lines += ["details", *("  " + line for line in
                           json.dumps(json_ready(run["details"] or {}), indent=2, ensure_ascii=False).splitlines())]
    rejects = warehouse.query(
        f"SELECT reason, COUNT(*) AS records, MIN(record_key) AS first_key FROM `{ds}.rejected_records` "
        f"WHERE run_id = @run_id GROUP BY reason ORDER BY records DESC LIMIT @n", {"run_id": run_id, "n": rejects_shown})
    lines.append(f"rejected records ({run['rows_rejected'] or 0})" + (":" if rejects else ": none"))
    lines += [f"  {r['records']:>6,} x {r['reason'][:150]} (e.g. {r['first_key']})" for r in rejects]
    return "\n".join(lines)
