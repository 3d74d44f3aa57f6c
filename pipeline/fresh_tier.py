"""The merger's side of the fresh tier (warehouse/fresh.py): pushed rows appended for free, folded every
FRESH_FOLD_SECONDS (2 hours by default).

The merger hands FreshTier the landed groups a push run marked (`tier: fresh`). Per table and cycle:
- rows of a matched table (entity resolution's) are resolved in process first (entity_resolution.mirror: the same
  SQL on an in-memory copy of the CRM side), and CRM rows update that copy, so what is fresh is also matched;
- the rows are appended to `<table>_fresh` by one load job (free), when the table's load budget allows (BigQuery
  takes 1,500 load jobs a table a day: LoadBudget spends FRESH_LOADS_PER_DAY of them, in bursts of at most
  FRESH_LOAD_BURST); a table out of budget leaves its rows on the subscription for a later cycle (a minute at
  most: never merged by the minute, which would bill 10 MB a statement).
Once a fresh table's oldest row is FRESH_FOLD_SECONDS old (or on demand), `fold` merges it into its table, one MERGE
per column set (versions decide, as for every merge), data before watermarks before etl_runs,
and then empties it with a free WRITE_TRUNCATE load. A group that cannot merge goes to rejected_records; the
fresh table is emptied either way, so one bad row never stalls a fold.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Protocol, Sequence

from observability.logger import get_logger
from pipeline.process_memory import remembered
from warehouse import Warehouse
from warehouse.fresh import META_NAMES, base_name, ensure_fresh, fold_seconds, fresh_name, fresh_rows, supplied_columns

log = get_logger(__name__)

FRESH_LOADS_PER_DAY = 1_400  # of BigQuery's 1,500 load jobs a table a day; the rest: folds (24) and headroom
FRESH_LOAD_BURST = 60


class Resolver(Protocol):
    """Resolution of pushed rows in process (entity_resolution.mirror.ResolutionMirror)."""

    def resolve(self, rows_by_table: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]: ...

    def apply(self, table: str, rows: list[dict[str, Any]]) -> None: ...

    def resolves(self, table: str) -> bool: ...

    def mirrors(self, table: str) -> bool: ...


@dataclass
class LoadBudget:
    """A token bucket per table: at most `burst` loads at once, refilled at per_day a day."""

    per_day: float = FRESH_LOADS_PER_DAY
    burst: float = FRESH_LOAD_BURST
    clock: Callable[[], float] = time.monotonic
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, table: str) -> bool:
        now = self.clock()
        tokens, at = self._tokens.get(table, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_day / 86_400)
        if tokens < 1:
            self._tokens[table] = (tokens, now)
            return False
        self._tokens[table] = (tokens - 1, now)
        return True


@dataclass
class _WarehouseState:
    """What this process knows of a warehouse's fresh tables (a Merger is made per scheduled invocation)."""

    ensured: dict[str, frozenset[str]] = field(default_factory=dict)  # table -> its columns the fresh table has
    oldest_ns: dict[str, int | None] = field(default_factory=dict)  # table -> its fresh table's oldest row
    learnt: bool = False  # oldest_ns read from the fresh tables once
    budget: LoadBudget = field(default_factory=LoadBudget)  # loads per table (survives the Mergers of a process)




@dataclass
class FreshGroup:
    """Rows of one table, all supplying the same columns, decoded, in landing order."""

    table: str
    landed_ns: int
    rows: list[dict[str, Any]]


class FreshTier:
    """See the module's docstring."""

    def __init__(self, warehouse: Warehouse, fold_seconds: float, resolver: Resolver | None = None,
                 budget: LoadBudget | None = None, wall: Callable[[], float] = time.time):
        self.warehouse, self.fold_seconds, self.resolver = warehouse, fold_seconds, resolver
        self._wall = wall
        self._state = remembered(warehouse, "fresh tier", _WarehouseState)
        self.budget = budget or self._state.budget

    def append(self, groups: Sequence[FreshGroup], run: Callable[[str, Callable[[], Any]], Any],
               reject: Callable[[str, list[dict[str, Any]], str], None]) -> tuple[dict[str, int], set[str]]:
        """Appends each table's groups to its fresh table (one load); returns rows per fresh table, and the tables
        whose load budget is spent (their rows wait on the subscription for a later cycle: the caller hands
        their messages back instead of acknowledging them). A table whose rows cannot be appended has them
        rejected (reject(table, rows, reason): kept in rejected_records), so one bad group never stalls a cycle."""
        self._learn_oldest()  # before this cycle's appends: a restarted process still folds what waited before it
        by_table: dict[str, list[FreshGroup]] = {}
        for group in groups:
            by_table.setdefault(group.table, []).append(group)
        appended: dict[str, int] = {}
        deferred: set[str] = set()
        # The CRM side first: a contact pushed in the same cycle as mail from it is in the mirror when the mail is
        # resolved.
        for table in sorted(by_table, key=lambda t: not (self.resolver is not None and self.resolver.mirrors(t))):
            table_groups = by_table[table]
            if not self.budget.take(table):
                deferred.add(table)
                continue
            try:
                try:
                    appended[table] = self._append_table(table, table_groups, run)
                except Exception:  # the table changed under this process (a column added or widened): once more
                    log.warning("append to a fresh table failed: its columns ensured again", exc_info=True)
                    self._state.ensured.pop(table, None)
                    appended[table] = self._append_table(table, table_groups, run)
            except Exception as error:
                log.exception("pushed rows could not be appended to their fresh table; kept in rejected_records")
                reject(table, [row for group in table_groups for row in group.rows],
                       f"append to {fresh_name(table)} failed: {type(error).__name__}: {error}")
        if deferred:
            log.info("fresh-table load budget spent: rows wait a cycle", extra={"json_fields": {"tables": sorted(deferred)}})
        return appended, deferred

    def _append_table(self, table: str, groups: list[FreshGroup], run: Callable[[str, Callable[[], Any]], Any]) -> int:
        if self.resolver is not None:
            groups = self._resolved(table, groups)
        rows: list[dict[str, Any]] = []
        for group in groups:
            rows += fresh_rows(group.rows, group.landed_ns, len(rows))
        ensure_fresh(self.warehouse, table, self._state.ensured)
        run(fresh_name(table), partial(self.warehouse.append, fresh_name(table), rows,
                                       batch_id=f"fresh_{uuid.uuid4().hex[:12]}"))
        if self._state.oldest_ns.get(table) is None:
            self._state.oldest_ns[table] = min(group.landed_ns for group in groups)
        return len(rows)

    def _learn_oldest(self) -> None:
        """Once per process: each fresh table's oldest row, by a free read (what an earlier process left)."""
        if self._state.learnt:
            return
        for fresh_table in self.warehouse.list_tables():
            table = base_name(fresh_table)
            if table is not None and self._state.oldest_ns.get(table) is None:
                landed = [r["_landed_ns"] for r in self.warehouse.read_rows(fresh_table, ["_landed_ns"])]
                self._state.oldest_ns[table] = min(landed) if landed else None
        self._state.learnt = True

    def _resolved(self, table: str, groups: list[FreshGroup]) -> list[FreshGroup]:
        assert self.resolver is not None
        if self.resolver.mirrors(table):
            for group in groups:
                self.resolver.apply(table, group.rows)
        if not self.resolver.resolves(table):
            return groups
        # One resolution for the table's rows of the cycle (each is a run of entity resolution's SQL), split back.
        rows = [row for group in groups for row in group.rows]
        try:
            rows = self.resolver.resolve({table: rows})[table]
        except Exception:  # unresolved rows are still fresh: the scheduled resolution matches them later
            log.exception("pushed rows could not be resolved in process; appended unresolved")
        resolved, start = [], 0
        for group in groups:
            resolved.append(FreshGroup(table, group.landed_ns, rows[start:start + len(group.rows)]))
            start += len(group.rows)
        return resolved

    def fold(self, merge: Callable[[str, list[dict[str, Any]]], Any], order: Callable[[str], int],
             force: bool = False) -> dict[str, int]:
        """Folds each fresh table whose oldest row is its fold interval old (warehouse.fresh.fold_seconds: at most
        FRESH_FOLD_SECONDS; every one with rows when force):
        merge(table, rows) per column set, then the fresh table emptied. Returns rows folded per table. The
        oldest row's age is learnt once per process by a free read, then kept from what this process appends."""
        self._learn_oldest()
        oldest_ns = self._state.oldest_ns
        now_ns = int(self._wall() * 1e9)
        due = sorted((t for t, oldest in oldest_ns.items() if oldest is not None
                      and (force or now_ns - oldest >= fold_seconds(t, self.fold_seconds) * 1e9)), key=order)
        folded: dict[str, int] = {}
        for table in due:
            rows = self.warehouse.read_rows(fresh_name(table))
            rows.sort(key=lambda r: (r["_landed_ns"] or 0, r["_seq"] or 0))
            for group in _by_supplied(rows):
                merge(table, group)
            self.warehouse.clear_rows(fresh_name(table))
            oldest_ns[table] = None
            folded[table] = len(rows)
        if folded:
            log.info("fresh tables folded", extra={"json_fields": {"tables": folded}})
        return folded


def _by_supplied(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The rows by the columns they supply (one MERGE each: versions decide between them, as in every merge), in
    landing order within each, cut to their columns (meta columns dropped)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    columns: dict[str, list[str]] = {}
    for row in rows:
        supplied = row["_supplied"]
        if supplied not in columns:
            columns[supplied] = [c for c in supplied_columns(supplied) if c not in META_NAMES]
        groups.setdefault(supplied, []).append({c: row.get(c) for c in columns[supplied]})
    return list(groups.values())
