"""Entity resolution of pushed rows in process: the scheduled run's SQL, on an in-memory DuckDB "mirror" of the
CRM side, with no billed BigQuery statement (fresh-tier design, item 5).

The mirror holds sf_contacts, sf_leads, sf_accounts, manual_mappings and ref_free_email_domains with only the
columns entity resolution's SQL names (and each table's merge key and version): the other columns are dropped
from its tables, so SQL reading a column the mirror lacks fails instead of reading NULL. refresh() reads them,
and their `<table>_fresh` rows not folded yet, from the warehouse with read_rows (BigQuery: tabledata.list, free),
and resolve() refreshes a mirror older than REFRESH_SECONDS (an hour); apply() merges the CRM rows the merger lands,
so a contact created a minute ago is matchable before the next refresh.

resolve() puts the rows into the mirror's own matched tables (emptied first, their match columns left out: every
row is one never examined), runs matcher.resolve_entities on the mirror (full mode: every value of those rows),
and reads the match columns back. The mirror's review candidates and run records are dropped: the scheduled run,
which still handles CRM-side changes, finds them again.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Any, Mapping, Sequence

from config.settings import Settings
from entity_resolution.match_tables import matched
from entity_resolution.matcher import SQL_DIR, ResolutionRequest, internal_domains, resolve_entities
from pipeline.runtime import Runtime
from warehouse import DuckDBWarehouse, Warehouse
from warehouse.fresh import META_NAMES, fresh_name, supplied_columns
from warehouse.job_ledger import JobLedger
from warehouse.merge_sql import merge_target
from warehouse.schemas import table_spec
from warehouse.sql_text import quoted

CRM_TABLES = ("sf_contacts", "sf_leads", "sf_accounts", "manual_mappings", "ref_free_email_domains")
# What a resolution writes in the mirror besides the matched tables: emptied around each resolve().
RUN_TABLES = ("etl_runs", "entity_match_candidates", "stream_leases")
REFRESH_SECONDS = 3600.0


def mirror_columns() -> dict[str, list[str]]:
    """Per CRM table, the columns the mirror holds: the ones entity resolution's SQL names (a word of its text:
    a superset), and the table's merge key and version."""
    text = "".join(re.sub(r"--[^\n]*", "", path.read_text()) for path in sorted(SQL_DIR.glob("*.sql")))
    words = set(re.findall(r"\b\w+\b", text))
    columns = {}
    for table in CRM_TABLES:
        spec, key, version = merge_target(table_spec(table), None, None)
        kept = {*key, *([version] if version else []), *(c for c in spec.column_names if c in words)}
        columns[table] = [c for c in spec.column_names if c in kept]
    return columns


def match_columns(table: str) -> list[str]:
    """The columns of table that resolution fills (05_apply.sql's SET, once per matched column's prefix)."""
    text = (SQL_DIR / "05_apply.sql").read_text()
    names = re.findall(r"\$\{prefix\}(\w+) = ", text.split("SET", 1)[1].split("FROM", 1)[0])
    prefixes = dict.fromkeys(m.prefix for m in matched() if m.table == table)
    return [prefix + name for prefix in prefixes for name in names]


class _Unrecorded(JobLedger):
    """The mirror's statements bill nothing and belong to no run: not counted (a long-lived process would
    otherwise keep them under the merger's run ids)."""

    def record(self, kind: str, table: str, rows: int = 0, cost: dict[str, int] | None = None) -> None:
        pass


class ResolutionMirror:
    """The CRM side in memory, resolving pushed rows as the scheduled entity resolution would."""

    def __init__(self, source: Warehouse, settings: Settings, refresh_seconds: float = REFRESH_SECONDS):
        self.source, self.settings, self.refresh_seconds = source, settings, refresh_seconds
        self.warehouse = DuckDBWarehouse(":memory:", source.dataset)
        self.warehouse.ledger = _Unrecorded()
        self.warehouse.ensure_schema()
        self.columns = mirror_columns()
        self._drop_unread_columns()
        self.refreshed_at: float | None = None  # time.monotonic() of the last refresh
        self._runtime = Runtime.around(settings, self.warehouse)
        # Rows apply()d since the last refresh, merged again by the next: the merger applies a pushed CRM row before
        # it appends it to the fresh table, so a refresh in between finds it in neither table.
        self._applied: list[tuple[str, Sequence[Mapping[str, Any]]]] = []
        self._lock = threading.RLock()

    def _drop_unread_columns(self) -> None:
        for table, kept in self.columns.items():
            for column in table_spec(table).column_names:
                if column not in kept:
                    self.warehouse.execute(f"ALTER TABLE {quoted(self.warehouse.dataset, table)} DROP COLUMN {column}")

    def refresh(self) -> dict[str, int]:
        """Reads the CRM tables anew from the source (free reads), their fresh tables' rows over them, then the rows
        applied since the last refresh; returns the rows read per table."""
        with self._lock:
            read = {}
            for table, columns in self.columns.items():
                read[table] = self._load(table, columns)
            for table, columns in self.columns.items():
                read[fresh_name(table)] = self._load_fresh(table, columns)
            for table, rows in self._applied:
                self.warehouse.merge(table, rows, batch_id=f"mirror_{table}")
            self._applied = []
            self._runtime = Runtime.around(self._resolution_settings(), self.warehouse)
            self.refreshed_at = time.monotonic()
            return read

    def _load(self, table: str, columns: Sequence[str]) -> int:
        """Replaces the mirror's rows of table by the source's (its columns); returns the rows read."""
        import pyarrow as pa

        rows = self.source.read_rows(table, columns)
        self.warehouse.clear_rows(table)  # once read: a failed read leaves the mirror as it was
        if not rows:
            return 0
        # As one Arrow table: merge() would copy each row dict to stamp it (200,000 contacts: +150 MB at the peak).
        batch = pa.Table.from_pylist(rows)
        count = len(rows)
        del rows
        self.warehouse.merge(table, batch, batch_id=f"mirror_{table}")
        return count

    def _load_fresh(self, table: str, columns: Sequence[str]) -> int:
        """Merges the rows of `<table>_fresh` (pushed, not folded yet; warehouse/fresh.py) over the mirror's, their
        supplied columns in landing order; returns the rows read (none when the source has no such table)."""
        if fresh_name(table) not in self.source.list_tables():
            return 0
        rows = self.source.read_rows(fresh_name(table), [*columns, *META_NAMES])
        rows.sort(key=lambda r: (r["_landed_ns"] or 0, r["_seq"] or 0))
        kept = set(columns)
        self.warehouse.merge(table, [{c: row[c] for c in supplied_columns(row["_supplied"]) if c in kept}
                                     for row in rows], batch_id=f"mirror_{table}_fresh")
        return len(rows)

    def _resolution_settings(self) -> Settings:
        """The settings with our own domains spelt out: where neither INTERNAL_DOMAINS nor MAILBOXES is set, the
        scheduled run takes the domains of the mailboxes synced (gmail_messages, a billed query); here those of
        gmail_sync_state's mailboxes (a free read)."""
        if self.settings.internal_domains or self.settings.mailboxes:
            return self.settings
        mailboxes = [r["mailbox"] for r in self.source.read_rows("gmail_sync_state", ["mailbox"])]
        domains = internal_domains(self.settings.model_copy(update={"mailboxes": mailboxes}), self.warehouse)
        return self.settings.model_copy(update={"internal_domains": domains})

    def mirrors(self, table: str) -> bool:
        """Whether apply() keeps rows of table (the CRM side entity resolution reads)."""
        return table in self.columns

    def resolves(self, table: str) -> bool:
        """Whether resolve() takes rows of table (a table entity resolution matches)."""
        return any(m.table == table for m in matched())

    def apply(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Merges CRM rows the merger lands into the mirror (the columns it holds that each row supplies); rows of
        a table the mirror does not hold are ignored."""
        if table not in self.columns or not rows:
            return
        kept = set(self.columns[table])
        rows = [{k: v for k, v in row.items() if k in kept} for row in rows]
        with self._lock:
            self._applied.append((table, rows))
            self.warehouse.merge(table, rows, batch_id=f"mirror_{table}")

    def resolve(self, rows_by_table: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """The rows of matched tables with their match columns filled as entity resolution fills them (copies,
        in the order given; rows sharing a key get the answer of the one merge() keeps)."""
        tables = {m.table for m in matched()}
        unknown = set(rows_by_table) - tables
        if unknown:
            raise ValueError(f"not matched by entity resolution: {', '.join(sorted(unknown))}")
        given = {table: list(rows) for table, rows in rows_by_table.items() if rows}
        if not given:
            return {table: [] for table in rows_by_table}
        with self._lock:
            if self.refreshed_at is None or time.monotonic() - self.refreshed_at >= self.refresh_seconds:
                self.refresh()
            self._empty([*tables, *RUN_TABLES])
            try:
                for table, rows in given.items():
                    filled = set(match_columns(table))
                    self.warehouse.merge(table, [{k: v for k, v in row.items() if k not in filled} for row in rows],
                                         batch_id=f"mirror_{table}")
                result = resolve_entities(ResolutionRequest(sync_type="full"), self._runtime)
                if result["status"] != "success":  # the rows would go on unmatched, as if examined
                    raise RuntimeError(f"the mirror's resolution ended {result['status']}")
                answers = {table: self._answers(table) for table in given}
            finally:
                self._empty([*tables, *RUN_TABLES])
        return {table: [self._filled(table, row, answers.get(table, {})) for row in rows]
                for table, rows in rows_by_table.items()}

    def _empty(self, tables: Sequence[str]) -> None:
        for table in tables:
            self.warehouse.clear_rows(table)

    def _answers(self, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
        """Per key of the mirror's rows of table, its match columns."""
        key = merge_target(table_spec(table), None, None)[1]
        columns = match_columns(table)
        return {tuple(row[k] for k in key): {c: row[c] for c in columns}
                for row in self.warehouse.read_rows(table, [*key, *columns])}

    @staticmethod
    def _filled(table: str, row: Mapping[str, Any], answers: dict[tuple[Any, ...], dict[str, Any]]) -> dict[str, Any]:
        key = merge_target(table_spec(table), None, None)[1]
        return {**row, **answers[tuple(row[k] for k in key)]}
