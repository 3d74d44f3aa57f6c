"""The merger: the one writer of the tables in queue mode (DISPATCH=queue).

Workers land their rows on the landing topic (warehouse.landing); the merger pulls everything pending, folds it
into its tables with one MERGE per table and column set per cycle (each landed batch's versions decide, so a
batch delivered twice or late never overwrites newer rows), and only then acknowledges the messages. Killed
mid-cycle, it merges nothing twice: Pub/Sub delivers the unacknowledged batches again and the MERGE absorbs them.

BigQuery's limits for mutating DML (2 running + 20 queued per table, 25 per table per 10 s) hold whatever the
number of workers: the merger runs one statement at a time (one instance: max_instances 1) and never more than
DML_PER_TABLE_PER_WINDOW statements on a table in any DML_WINDOW_SECONDS. Each cycle it also records the work
messages that were dead-lettered (work_dead_letters) and closes runs left `running` past the function's
timeout (a worker killed mid-run) as `abandoned`.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable

from config.settings import Settings
from observability.logger import get_logger, log_context
from pipeline.etl_runs import LeaseTerms, close_abandoned_runs
from pipeline.fresh_tier import FreshGroup, FreshTier, Resolver
from pipeline.landing_lag import LANDING_LAG
from pipeline.process_memory import remembered
from pipeline.runner import reject_row
from pipeline.work_queue import subscription_path
from pipeline.worker import WORK_SOURCES
from warehouse import Warehouse
from warehouse.landing import LANDING_FORMAT, decode_rows
from warehouse.schemas import Column

log = get_logger(__name__)

DML_WINDOW_SECONDS = 10.0
DML_PER_TABLE_PER_WINDOW = 20  # BigQuery allows 25 per table per 10 s; the rest is headroom for entity resolution
MAX_CYCLE_BYTES = 64 * 1024 * 1024  # landed JSON held per cycle (decoded rows take about three times that)
PULL_BATCH = 1000
PULL_WAIT_SECONDS = 2.0  # an empty subscription answers no sooner: what a cycle waits to learn it is done
SWEEP_EVERY_SECONDS = 600.0
_last_sweep_slot: int | None = None  # this process's last sweep (a scheduled invocation makes a new Merger each minute)


def _merge_order(table: str) -> int:
    """Where a table's MERGE goes in a cycle: data, then watermarks, then etl_runs (push_runs)."""
    if table in ("etl_runs", "push_runs"):
        return 2
    return 1 if table == "sync_state" or table.endswith("_sync_state") else 0


def subscriber_client() -> Any:
    """A Pub/Sub subscriber that takes pull responses of any size, as the client does against Google's service;
    against the emulator (PUBSUB_EMULATOR_HOST) it would refuse one over gRPC's default 4 MB."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        return pubsub_v1.SubscriberClient()
    import grpc
    from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

    channel = grpc.insecure_channel(host, options=[("grpc.max_send_message_length", -1),
                                                   ("grpc.max_receive_message_length", -1)])
    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))


def merger_subscription(settings: Settings, topic: str) -> str:
    return subscription_path(settings, f"{topic}-merger")


@dataclass
class DmlWindow:
    """Mutating statements per table in a sliding window: waits before one that would exceed the limit, and keeps
    every statement's (table, start, end) for the record."""

    limit: int = DML_PER_TABLE_PER_WINDOW
    seconds: float = DML_WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    statements: list[tuple[str, float, float]] = field(default_factory=list)
    _recent: dict[str, deque[float]] = field(default_factory=dict)

    def run(self, table: str, statement: Callable[[], Any]) -> Any:
        recent = self._recent.setdefault(table, deque())
        while True:
            now = self.clock()
            while recent and recent[0] <= now - self.seconds:
                recent.popleft()
            if len(recent) < self.limit:
                break
            self.sleep(recent[0] + self.seconds - now)
        start = self.clock()
        recent.append(start)
        try:
            return statement()
        finally:
            self.statements.append((table, start, self.clock()))


@dataclass
class Landed:
    """One landed message, decoded."""

    ack_id: str
    table: str
    key: tuple[str, ...]
    version: str | None
    batch_id: str
    order: tuple[int, str, int]
    rows: list[dict[str, Any]]
    tier: str = "merge"  # "fresh": a push run's rows, for the fresh tier (pipeline/fresh_tier.py)


@dataclass
class CycleResult:
    messages: int = 0
    rows: int = 0
    merges: int = 0
    rejected: int = 0
    dead_letters: int = 0
    abandoned: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    fresh: dict[str, int] = field(default_factory=dict)  # rows appended to each table's fresh table
    folded: dict[str, int] = field(default_factory=dict)  # rows folded from each fresh table into its table


class Merger:
    """Pulls the landing subscription and merges what it holds; see the module's docstring."""

    def __init__(self, warehouse: Warehouse, settings: Settings, subscriber: Any = None,
                 window: DmlWindow | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, resolver: Resolver | None = None):
        self.warehouse, self.settings = warehouse, settings
        self.fresh = FreshTier(warehouse, settings.fresh_fold_seconds, resolver, wall=wall)
        # resolver None: the process's mirror (entity_resolution/mirror.py), made when a push first brings rows.
        self._subscriber = subscriber
        self.window = window or DmlWindow(clock=clock)
        self._clock = clock
        self._wall = wall
        self.landing = merger_subscription(settings, settings.landing_topic)
        self.dead_letters = merger_subscription(settings, settings.work_dead_letter_topic)

    @property
    def subscriber(self) -> Any:
        if self._subscriber is None:
            self._subscriber = subscriber_client()
        return self._subscriber

    def _pull(self, subscription: str, max_bytes: int = MAX_CYCLE_BYTES) -> list[Any]:
        """Everything pending on subscription now (up to max_bytes of data)."""
        from google.api_core import exceptions

        received: list[Any] = []
        size = 0
        while size < max_bytes:
            try:
                response = self.subscriber.pull(subscription=subscription, max_messages=PULL_BATCH,
                                                timeout=PULL_WAIT_SECONDS)
            except exceptions.DeadlineExceeded:  # nothing pending (the emulator answers an empty pull so)
                break
            if not response.received_messages:
                break
            received.extend(response.received_messages)
            size += sum(len(m.message.data) for m in response.received_messages)
        return received

    def _ack(self, subscription: str, ack_ids: list[str]) -> None:
        for start in range(0, len(ack_ids), 1000):
            self.subscriber.acknowledge(subscription=subscription, ack_ids=ack_ids[start:start + 1000])

    def cycle(self) -> CycleResult:
        """One pass: every pending landed batch merged, then acknowledged; dead letters recorded; the sweep when due."""
        result = CycleResult()
        with log_context(run_id=f"merger-{uuid.uuid4().hex[:8]}"):
            received = self._pull(self.landing)
            result.messages = len(received)
            landed, poison = self._decode(received)
            waiting = self._to_fresh([item for item in landed if item.tier == "fresh"], result)
            self._merge([item for item in landed if item.tier != "fresh"], result)
            if poison:
                self._reject(poison, result)
            self._ack(self.landing, [m.ack_id for m in received if m.ack_id not in waiting])
            if waiting:  # handed back at once: pulled again by the next cycle
                self.subscriber.modify_ack_deadline(subscription=self.landing, ack_ids=sorted(waiting),
                                                    ack_deadline_seconds=0)
            self.fold(result)
            self._record_dead_letters(result)
            self._sweep(result)
        if result.messages or result.dead_letters:
            log.info("merger cycle", extra={"json_fields": {"messages": result.messages, "rows": result.rows,
                                                            "merges": result.merges, "tables": result.tables}})
        return result

    def _decode(self, received: list[Any]) -> tuple[list[Landed], list[tuple[Any, str]]]:
        landed, poison = [], []
        for message in received:
            try:
                body = json.loads(message.message.data.decode("utf-8"))
                if body.get("format") != LANDING_FORMAT:
                    raise ValueError(f"landing format {body.get('format')!r}, expected {LANDING_FORMAT}")
                landed.append(Landed(message.ack_id, body["table"], tuple(body["key"]), body["version"],
                                     body["batch_id"], (int(body["landed_ns"]), body["batch_id"], int(body["part"])),
                                     body["rows"], body.get("tier", "merge")))
            except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
                poison.append((message, f"{type(error).__name__}: {error}"))
        landed.sort(key=lambda item: item.order)  # a stream's later batch after its earlier one
        return landed, poison

    def _merge(self, landed: list[Landed], result: CycleResult) -> None:
        """One MERGE per table, key, version and column set, in landing order within each."""
        groups: dict[tuple[str, tuple[str, ...], str | None, frozenset[str]], list[dict[str, Any]]] = {}
        for item in landed:
            for row in item.rows:
                groups.setdefault((item.table, item.key, item.version, frozenset(row)), []).append(row)
        # Data first, then watermarks, then runs' records: neither is in its table before the rows of the same cycle
        # it covers.
        for (table, key, version, columns), rows in sorted(groups.items(), key=lambda g: _merge_order(g[0][0])):
            typed = self._readable(table, columns, rows, result)
            if typed is not None:
                self._merge_rows(table, typed, result, key, version)

    def _to_fresh(self, landed: list[Landed], result: CycleResult) -> set[str]:
        """A push run's rows: appended to their fresh tables (pipeline/fresh_tier.py); a group keyed otherwise than
        its table (none today) is merged. Returns the ack ids of messages whose table's load budget is spent."""
        groups, others = [], []
        acks: dict[str, list[str]] = {}
        for item in landed:
            if tuple(item.key) != self.warehouse.spec_of(item.table).primary_key or not item.rows:
                others.append(item)
                continue
            acks.setdefault(item.table, []).append(item.ack_id)
            for columns, rows in _by_columns(item.rows).items():
                typed = self._readable(item.table, columns, rows, result)
                if typed is not None:
                    groups.append(FreshGroup(item.table, item.order[0], typed))
        self._merge(others, result)
        if not groups:
            return set()
        if self.fresh.resolver is None:
            self.fresh.resolver = process_mirror(self.warehouse, self.settings)
        result.fresh, deferred = self.fresh.append(groups, self.window.run,
                                                   partial(self._reject_rows, result=result))
        return {ack for table in deferred for ack in acks[table]}

    def fold(self, result: CycleResult | None = None, force: bool = False) -> dict[str, int]:
        """Folds the fresh tables that are due (all with rows when force) into their tables."""
        folded = self.fresh.fold(partial(self._fold_rows, result=result or CycleResult()), _merge_order, force)
        if result is not None:
            result.folded = folded
        return folded

    def _fold_rows(self, table: str, rows: list[dict[str, Any]], result: CycleResult) -> None:
        """A fresh table's rows of one column set (typed: read from the warehouse) into its table: columns learnt at
        run time (a Salesforce org's custom fields, which a restarted process does not know yet) first."""
        if self._readable(table, frozenset(rows[0]), rows, result, decode=False) is not None:
            self._merge_rows(table, rows, result)

    def _readable(self, table: str, columns: frozenset[str], rows: list[dict[str, Any]], result: CycleResult,
                  decode: bool = True) -> list[dict[str, Any]] | None:
        """rows typed for table (landed JSON decoded unless decode=False), its run-time columns learnt; None when they
        cannot be: then they are kept in rejected_records, as one bad group must not stall every later cycle."""
        try:
            self._learn_columns(table, columns)
            return decode_rows(self.warehouse.spec_of(table), rows) if decode else rows
        except Exception as error:
            log.exception("landed rows could not be read; kept in rejected_records")
            self._reject_rows(table, rows, f"rows for {table} cannot be read: {type(error).__name__}: {error}", result)
            return None

    def _merge_rows(self, table: str, rows: list[dict[str, Any]], result: CycleResult,
                    key: tuple[str, ...] | None = None, version: str | None = None) -> None:
        """One MERGE of typed rows supplying the same columns; rejected (kept) when it fails: one bad group must
        not stall every later cycle."""
        try:
            self.window.run(table, partial(self.warehouse.merge, table, rows, key=key, version=version,
                                           batch_id=f"landed_{uuid.uuid4().hex[:12]}"))
        except Exception as error:
            log.exception("landed rows could not be merged; kept in rejected_records")
            self._reject_rows(table, rows, f"merge into {table} failed: {type(error).__name__}: {error}", result)
            return
        result.merges += 1
        result.rows += len(rows)
        result.tables[table] = result.tables.get(table, 0) + len(rows)
        resolver = self.fresh.resolver
        if resolver is not None and resolver.mirrors(table):  # scheduled CRM rows keep the mirror current too
            resolver.apply(table, rows)

    def _learn_columns(self, table: str, columns: frozenset[str]) -> None:
        """Columns a worker learnt at run time (a Salesforce org's custom fields): taken from the table itself."""
        unknown = columns - set(self.warehouse.spec_of(table).column_names)
        if not unknown:
            return
        present = self.warehouse.table_columns(table)
        missing = sorted(unknown - set(present))
        if missing:
            raise ValueError(f"landed rows for {table} carry columns the table does not have: {missing}")
        self.warehouse.add_columns(table, [Column.of_warehouse_type(name, present[name]) for name in sorted(unknown)])

    def _reject_rows(self, table: str, rows: list[dict[str, Any]], reason: str, result: CycleResult) -> None:
        """Rows kept in rejected_records with the reason they could not be written."""
        self._store_rejects([reject_row("merger", table, row, reason, "merger") for row in rows], result)

    def _reject(self, poison: list[tuple[Any, str]], result: CycleResult) -> None:
        self._store_rejects([reject_row("merger", "landing", message.message.data.decode("utf-8", "replace"),
                                        f"landed message cannot be read: {reason}", "merger",
                                        message.message.message_id) for message, reason in poison], result)

    def _store_rejects(self, rows: list[dict[str, Any]], result: CycleResult) -> None:
        self.window.run("rejected_records", partial(self.warehouse.merge, "rejected_records", rows))
        result.rejected += len(rows)

    def _record_dead_letters(self, result: CycleResult) -> None:
        received = self._pull(self.dead_letters, max_bytes=16 * 1024 * 1024)
        if not received:
            return
        rows = [dead_letter_row(m.message.message_id, m.message.data, m.message.publish_time) for m in received]
        self.window.run("work_dead_letters", lambda: self.warehouse.merge("work_dead_letters", rows))
        self._ack(self.dead_letters, [m.ack_id for m in received])
        result.dead_letters = len(rows)

    def _sweep(self, result: CycleResult) -> None:
        """Runs left `running` past the function's timeout (their worker killed) closed as abandoned, once per
        SWEEP_EVERY_SECONDS of the wall clock (each scheduled invocation is a new Merger: its own timer would sweep
        every minute): no lease in queue mode, so the timeout is the only sign."""
        global _last_sweep_slot
        slot = int(self._wall() // SWEEP_EVERY_SECONDS)
        if slot == _last_sweep_slot:
            return
        _last_sweep_slot = slot
        # A run's end may reach etl_runs up to a landing lag after it was stamped: only runs older than that are swept.
        timeout = self.settings.function_timeout_seconds + LANDING_LAG.total_seconds()
        for source in WORK_SOURCES:
            result.abandoned += self.window.run("etl_runs", partial(close_abandoned_runs, self.warehouse, source,
                                                                    LeaseTerms(timeout, timeout)))

    def run_for(self, seconds: float, sleep: Callable[[float], None] = time.sleep,
                stop: Callable[[], bool] = lambda: False) -> list[CycleResult]:
        """Cycles every MERGE_INTERVAL_SECONDS for about `seconds` (a scheduled invocation), or until stop()."""
        end = self._clock() + seconds
        results = []
        while True:
            started = self._clock()
            results.append(self.cycle())
            wait = self.settings.merge_interval_seconds - (self._clock() - started)
            if stop() or self._clock() + max(wait, 0) >= end:
                return results
            if wait > 0:
                sleep(wait)


def process_mirror(warehouse: Warehouse, settings: Settings) -> Resolver:
    """This process's in-memory copy of the CRM side for resolving pushed rows (made once per warehouse; each
    scheduled invocation makes a new Merger, over the process's one warehouse)."""
    from entity_resolution.mirror import ResolutionMirror

    return remembered(warehouse, "resolution mirror", lambda: ResolutionMirror(warehouse, settings))


def _by_columns(rows: list[dict[str, Any]]) -> dict[frozenset[str], list[dict[str, Any]]]:
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return groups


def dead_letter_row(message_id: str, data: bytes, published: Any) -> dict[str, Any]:
    """A work_dead_letters row of a dead-lettered work message (pipeline.worker.dead_letter_body, or a message
    Pub/Sub forwarded as it was delivered)."""
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = {"work": data.decode("utf-8", "replace")[:2000]}
    work = body.get("work", body) if isinstance(body, dict) else body
    work = work if isinstance(work, dict) else {"raw": work}
    return {"message_id": message_id, "source": str(work.get("source") or "unknown"),
            "stream": work.get("stream"), "sync_type": work.get("sync_type"), "reason": work.get("reason"),
            "error_type": body.get("error_type") if isinstance(body, dict) else None,
            "error_message": body.get("error") if isinstance(body, dict) else None,
            "attempts": body.get("attempts") if isinstance(body, dict) else None,
            "work_message": json.dumps(work, default=str),
            "dead_lettered_at": _timestamp(published)}


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc)
