"""BigQuery bytes billed per day at the project's schedules: before and after issue 12, at year 0 and year 3.

    .venv/bin/python bench/bigquery_cost.py                 # the default org profile (see --help)
    .venv/bin/python bench/bigquery_cost.py --mailboxes 3 --contacts 200000 --messages-per-mailbox-day 100

What it does, in order (bench/README.md explains the method and its limits):
1. Row sizes measured, not guessed: the real pipeline runs once on the loopback sandboxes into a fresh
   DuckDB file (`run_local run --sandboxes`), and every column's average size is computed with
   BigQuery's data size rules from the table's schema file.
2. A simulated day: every job of config/schedules.yaml fires as often as its cron says (averaged over a
   week); each run is expanded into the warehouse statements the code issues (before: the code at
   adc0803, after: now), with the rows the org profile gives it and the partitions those rows fall in
   (the MERGE spans come from warehouse.base.partition_spans itself).
3. Each statement is billed with BigQuery's on-demand rules: per table referenced, the referenced
   columns of the partitions scanned, plus for UPDATE/DELETE/MERGE-with-UPDATE the whole of the target's
   scanned partitions, at least 10 MB per table referenced. Load jobs are free.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from copy import copy
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud_functions.salesforce_sync.records import OBJECTS
from config.schedules import load_jobs
from config.settings import Settings
from pipeline.fresh_tier import FRESH_LOAD_BURST, FRESH_LOADS_PER_DAY
from push.salesforce_probe import FOLLOWERS, PROBED
from scripts.local_schedule import cron_matches
from warehouse.fresh import fold_seconds
from warehouse.merge_sql import partition_spans
from warehouse.schemas import table_spec

DML_DOC = "https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax#on-demand_query_size_calculation"
PRICING_DOC = "https://cloud.google.com/bigquery/pricing#on_demand_pricing"
SIZE_DOC = "https://cloud.google.com/bigquery/docs/storage_overview#storage-data-size"
MIN_BILLED = 10 * 2**20  # 10 MB per table referenced (and per query)
GB = 2**30
DAY_SECONDS = 86400.0
FLUSH_ROWS_AFTER = 250_000  # settings.merge_flush_rows
BATCH_ROWS = 10_000  # settings.merge_batch_size: before, one MERGE per source page of at most this many rows
GMAIL_PAGE = 500  # messages.list ids a page (and history.list)
SF_REST_PAGE = 2_000
SF_BULK_PAGE = 10_000
DIALPAD_PAGE = 50
HUBSPOT_PAGE = 200
ZOOM_PAGE = 300
MEET_PAGE = 100
MEETING_TABLES = ("meetings", "meeting_participants", "meeting_transcripts")
# Measured on the sandbox run (bytes per row) for sizes saved before the meeting tables existed.
MEETING_ROW_DEFAULTS = {
    "meetings": {"source": 4.0, "meeting_id": 30.0, "started_at": 8.0, "ended_at": 8.0, "topic": 25.0,
                 "meeting_number": 12.0, "host_id": 20.0, "host_email": 24.0, "duration_minutes": 8.0,
                 "participant_count": 8.0, "calendar_event_id": 4.0, "has_recording": 1.0,
                 "transcript_status": 8.0, "ingested_at": 8.0},
    "meeting_participants": {"source": 4.0, "meeting_id": 30.0, "participant_key": 30.0, "started_at": 8.0,
                             "display_name": 14.0, "email": 26.0, "domain": 12.0, "phone_e164": 2.0, "role": 8.0,
                             "source_user_id": 12.0, "joined_at": 8.0, "left_at": 8.0, "duration_seconds": 8.0,
                             "sf_contact_id": 14.0, "sf_lead_id": 2.0, "sf_account_id": 14.0, "match_method": 10.0,
                             "match_confidence": 8.0, "matched_at": 8.0, "ingested_at": 8.0},
    "meeting_transcripts": {"source": 4.0, "meeting_id": 30.0, "transcript_id": 24.0, "started_at": 8.0,
                            "transcript_format": 6.0, "language_code": 2.0, "transcript_text": 200.0,
                            "transcript_lines": 300.0, "ingested_at": 8.0},
}
ABANDONED_LOOKBACK_DAYS = 35
ER_SQL = ROOT / "entity_resolution" / "sql"
VIEWS = ROOT / "bigquery" / "views"
SF_OBJECT_TABLES = {"Account": "sf_accounts", "Contact": "sf_contacts", "Lead": "sf_leads",
                    "Opportunity": "sf_opportunities", "Task": "sf_activities", "Event": "sf_activities",
                    "EmailMessage": "sf_activities"}
ACTIVITY_SHARE = {"Task": 0.6, "Event": 0.25, "EmailMessage": 0.15}


# ---------------------------------------------------------------- 1. row sizes, measured
_FIXED = {"INTEGER": 8, "INT64": 8, "FLOAT": 8, "FLOAT64": 8, "TIMESTAMP": 8, "DATE": 8, "DATETIME": 8,
          "TIME": 8, "BOOLEAN": 1, "BOOL": 1, "NUMERIC": 16, "BIGNUMERIC": 32}


def size_sql(column: dict[str, Any], expr: str, depth: int = 0) -> str:
    """DuckDB expression: the BigQuery logical size of one value (0 for NULL), by BigQuery's data size rules."""
    if column.get("mode") == "REPEATED":
        item = f"x{depth}"
        inner = size_sql({**column, "mode": "NULLABLE"}, item, depth + 1)
        return f"coalesce(list_sum(list_transform({expr}, lambda {item}: {inner})), 0)"
    kind = column["type"]
    if kind in ("RECORD", "STRUCT"):
        return "(" + " + ".join(size_sql(sub, f"{expr}.\"{sub['name']}\"", depth) for sub in column["fields"]) + ")"
    if kind in ("STRING", "BYTES"):
        return f"coalesce(2 + strlen(CAST({expr} AS VARCHAR)), 0)"
    if kind == "JSON":
        return f"coalesce(strlen(CAST({expr} AS VARCHAR)), 0)"
    return f"CASE WHEN {expr} IS NULL THEN 0 ELSE {_FIXED[kind]} END"


def run_sandbox_pipeline(workdir: Path) -> Path:
    """The real pipeline on the loopback sandboxes into a fresh DuckDB file; returns that file."""
    path = workdir / "warehouse.duckdb"
    env = {**os.environ, "DUCKDB_PATH": str(path), "WAREHOUSE": "duckdb"}
    env.pop("BIGQUERY_API_ENDPOINT", None)
    subprocess.run([sys.executable, "-m", "scripts.run_local", "run", "--sandboxes"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


def measure_columns(duckdb_path: Path, dataset: str = "sales_intelligence") -> dict[str, dict[str, float]]:
    """Per table that holds rows: column -> average BigQuery logical bytes per row."""
    import duckdb

    con = duckdb.connect(str(duckdb_path), read_only=True)
    sizes: dict[str, dict[str, float]] = {}
    for schema_file in sorted((ROOT / "bigquery" / "schemas").glob("*.json")):
        table = schema_file.stem
        present = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [dataset, table]).fetchall()}
        columns = [c for c in json.loads(schema_file.read_text()) if c["name"] in present]
        if not columns or not con.execute(f"SELECT COUNT(*) FROM {dataset}.{table}").fetchone()[0]:
            continue
        exprs = ", ".join(f"AVG({size_sql(c, chr(34) + c['name'] + chr(34))})" for c in columns)
        averages = con.execute(f"SELECT {exprs} FROM {dataset}.{table}").fetchone()
        sizes[table] = {c["name"]: float(a or 0) for c, a in zip(columns, averages)}
    con.close()
    return sizes


# ---------------------------------------------------------------- 2. the org and its tables over time
@dataclass
class Profile:
    mailboxes: int = 3
    contacts: int = 200_000
    leads: int = 100_000
    accounts: int = 20_000
    opportunities: int = 30_000
    crm_age_years: float = 5.0  # Salesforce created dates spread over this many years before year 0
    activities_per_day: int = 2_000  # Tasks, Events and EmailMessages logged per day
    messages_per_mailbox_day: int = 100
    participants_per_message: float | None = None  # None: as measured on the sandbox
    mail_history_days: int = 365  # mail already in the mailboxes at year 0 (a full sync loads all of it)
    label_changes_per_mailbox_day: int = 50  # 90 % on mail of the last 7 days, the rest anywhere
    deletions_per_mailbox_day: int = 5
    calls_per_day: int = 300
    call_history_days: int = 365
    crm_change_rate: float = 0.01  # share of contacts, leads, accounts and opportunities modified a day
    new_contacts_per_day: int = 100
    new_leads_per_day: int = 100
    enrollments_per_day: int = 200
    changed_values_in_mail: float = 0.25  # share of re-resolved CRM addresses that occur in mail
    rows_per_address: int = 20  # participant rows of one such address, spread over the mail history
    # share of re-resolved values whose match changes (a new or changed address or number, not a new title):
    # only their rows' partitions are updated (05_apply_partitions.sql)
    outcome_change_share: float = 0.2
    message_body_bytes: float | None = None  # body_text + body_html per message; None: as measured
    transcript_bytes: float | None = None  # transcript_text + transcript_lines per call; None: as measured
    # Video meetings (Zoom and Google Meet, half each), a rep being a mailbox: recorded meetings per rep and week,
    # their length, the people in each (the sandbox's measured rows give the rest), and transcript text per hour.
    meetings_per_rep_week: float = 10.0
    meeting_minutes: float = 45.0
    meeting_transcript_kb_per_hour: float = 8.0
    meeting_history_days: int = 365
    seed: int = 12


@dataclass
class Table:
    """One table at a point in time: rows, average bytes per column, its partitions (uniform in time)."""

    name: str
    columns: dict[str, float]
    rows: float
    partitions: int  # partitions holding data (1 when not partitioned)
    unit: str | None  # DAY or MONTH, None when not partitioned
    last: int = 0  # number of the newest partition

    @property
    def row_bytes(self) -> float:
        return sum(self.columns.values())

    @property
    def bytes(self) -> float:
        return self.rows * self.row_bytes

    def column_bytes(self, names: Iterable[str], partitions: float | None = None) -> float:
        """Bytes of these columns in `partitions` partitions (all of them when None)."""
        share = 1.0 if partitions is None else min(partitions, self.partitions) / self.partitions
        return self.rows * share * sum(self.columns.get(n, 0.0) for n in names)

    def partition_bytes(self, partitions: float) -> float:
        return self.bytes * min(partitions, self.partitions) / self.partitions


def _unit_days(unit: str | None) -> float:
    return {"DAY": 1, "MONTH": 30.44}.get(unit or "", 1)


TRANSCRIPT_COLUMNS = ("transcript_text", "transcript_lines")


def transcribed_share(sizes: dict[str, dict[str, float]]) -> float:
    """Calls with a transcript, as a share of calls (measured: dialpad_transcripts rows / dialpad_calls rows)."""
    counts = sizes.get("_counts", {})
    return counts.get("dialpad_transcripts", 0.0) / counts["dialpad_calls"] if counts.get("dialpad_calls") else 0.0


def transcript_bytes_per_call(sizes: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each transcript column's bytes averaged over all calls (a call without a transcript counts 0), from a
    measurement of either layout: dialpad_transcripts rows (now) or dialpad_calls columns (sizes saved before)."""
    if "dialpad_transcripts" in sizes:
        share = transcribed_share(sizes)
        return {c: sizes["dialpad_transcripts"].get(c, 0.0) * share for c in TRANSCRIPT_COLUMNS}
    return {c: sizes.get("dialpad_calls", {}).get(c, 0.0) for c in TRANSCRIPT_COLUMNS}


def _with_wanted(columns: dict[str, float], names: Iterable[str], wanted: float | None) -> None:
    """Sets these columns to `wanted` bytes in all, keeping their measured split."""
    names = list(names)
    measured = sum(columns.get(c, 0.0) for c in names)
    if wanted is not None:
        for column in names:
            columns[column] = wanted * (columns.get(column, 0.0) / measured if measured else 1 / len(names))


def with_content_sizes(sizes: dict[str, dict[str, float]], profile: Profile,
                       after: bool = True) -> dict[str, dict[str, float]]:
    """The measured sizes with the mail bodies and call transcripts the profile states (the sandbox's are short).
    Transcripts (--transcript-bytes: per call) are rows of dialpad_transcripts after, columns of dialpad_calls before."""
    sizes = {table: dict(columns) for table, columns in sizes.items()}
    if "gmail_messages" in sizes:
        _with_wanted(sizes["gmail_messages"], ("body_text", "body_html"), profile.message_body_bytes)
    per_call = transcript_bytes_per_call(sizes)
    _with_wanted(per_call, TRANSCRIPT_COLUMNS, profile.transcript_bytes)
    calls = {c: b for c, b in sizes.get("dialpad_calls", {}).items() if c not in TRANSCRIPT_COLUMNS}
    share = max(transcribed_share(sizes), 1e-9) if "dialpad_transcripts" in sizes else 1.0
    transcripts = {**sizes.get("dialpad_transcripts", {"call_id": 12.0, "started_at": 8.0, "ingested_at": 8.0}),
                   **{c: b / share for c, b in per_call.items()}}
    for table, defaults in MEETING_ROW_DEFAULTS.items():
        sizes.setdefault(table, dict(defaults))
    # A meeting's transcript: the profile's text per hour; its lines (speaker, times) in the measured proportion.
    _with_wanted(sizes["meeting_transcripts"], TRANSCRIPT_COLUMNS,
                 profile.meeting_transcript_kb_per_hour * 1000 * profile.meeting_minutes / 60
                 * sum(sizes["meeting_transcripts"].get(c, 0.0) for c in TRANSCRIPT_COLUMNS)
                 / max(sizes["meeting_transcripts"].get("transcript_text", 0.0), 1.0))
    sizes["dialpad_calls"] = calls if after else {**calls, **per_call}
    if after:
        sizes["dialpad_transcripts"] = transcripts
        sizes.setdefault("_counts", {})["dialpad_transcripts_share"] = share
    else:
        sizes.pop("dialpad_transcripts", None)
    return sizes


class Org:
    """The org's tables at a given year of history; `after` chooses the layout (tables.yaml now / before)."""

    def __init__(self, profile: Profile, sizes: dict[str, dict[str, float]], year: int, after: bool):
        self.p, self.year, self.after = profile, year, after
        self.sizes = with_content_sizes(sizes, profile, after)
        self.today = date(2027 + year, 6, 15)
        p = profile
        days = 365 * year
        ppm = self.participants_per_message
        crm_days = 365 * p.crm_age_years + days
        mail_days = p.mail_history_days + days
        messages_day = p.mailboxes * p.messages_per_mailbox_day
        self.tables: dict[str, Table] = {}
        self._add("gmail_messages", messages_day * mail_days, mail_days)
        self._add("gmail_participants", messages_day * ppm * mail_days, mail_days)
        self._add("dialpad_calls", p.calls_per_day * (p.call_history_days + days), p.call_history_days + days)
        if after:  # one row per transcribed call, partitioned like the calls
            self._add("dialpad_transcripts", self.tables["dialpad_calls"].rows * self.transcribed_share,
                      p.call_history_days + days)
        self._add("sf_contacts", p.contacts + p.new_contacts_per_day * days, crm_days)
        self._add("sf_leads", p.leads + p.new_leads_per_day * days, crm_days)
        self._add("sf_accounts", p.accounts * (1 + 0.1 * year), crm_days)
        self._add("sf_opportunities", p.opportunities * (1 + 0.2 * year), crm_days)
        self._add("sf_activities", p.activities_per_day * crm_days, crm_days)
        # OpportunityHistory and OpportunityFieldHistory: a row each per opportunity change (only the push model
        # writes them: the schedules' model leaves the two history objects out, see bench/README.md)
        opportunity_changes = p.opportunities * p.crm_change_rate
        self._add("sf_opportunity_history", opportunity_changes * crm_days, crm_days)
        self._add("sf_opportunity_field_history", opportunity_changes * crm_days, crm_days)
        self._add("hubspot_sequence_enrollments", p.enrollments_per_day * (365 + days), 365 + days)
        if after:  # the meeting tables are new: every meeting recorded, each with its transcript
            meeting_days = p.meeting_history_days + days
            self._add("meetings", self.meetings_per_day * meeting_days, meeting_days)
            self._add("meeting_participants", self.meetings_per_day * self.participants_per_meeting * meeting_days,
                      meeting_days)
            self._add("meeting_transcripts", self.meetings_per_day * meeting_days, meeting_days)
        self._add("etl_runs", 0, 1)  # sized once the day's runs are known (set_runs_per_day)
        # push_runs: etl_runs' columns (sizes measured before it existed, or on a sandbox run without push, have
        # none of its own); sized by set_push_runs_per_day.
        if not any(self.sizes.get("push_runs", {}).values()):
            self.sizes["push_runs"] = dict(self.sizes.get("etl_runs", {}))
        self._add("push_runs", 0, 1)
        for small in ("hubspot_sequences", "sync_state", "gmail_sync_state", "stream_leases", "manual_mappings",
                      "ref_free_email_domains", "entity_match_candidates", "rejected_records", "sf_custom_fields"):
            self._add(small, 0, 1)

    @property
    def participants_per_message(self) -> float:
        if self.p.participants_per_message is not None:
            return self.p.participants_per_message
        measured = self.sizes.get("_counts", {})
        return measured.get("gmail_participants", 3.0) / max(measured.get("gmail_messages", 1.0), 1.0)

    @property
    def meetings_per_day(self) -> float:
        return self.p.mailboxes * self.p.meetings_per_rep_week / 7

    @property
    def participants_per_meeting(self) -> float:
        measured = self.sizes.get("_counts", {})
        return measured.get("meeting_participants", 3.0) / max(measured.get("meetings", 1.0), 1.0)

    @property
    def transcribed_share(self) -> float:
        return self.sizes.get("_counts", {}).get("dialpad_transcripts_share", 0.0)

    def partition_unit(self, name: str) -> str | None:
        spec = table_spec(name)
        if not self.after and name.startswith("sf_"):
            return "MONTH"  # before: every sf_ table on system_modstamp MONTH (mutable, never pruned)
        return spec.partition_type if spec.partition_field else None

    def _add(self, name: str, rows: float, history_days: float) -> None:
        unit = self.partition_unit(name)
        partitions = max(1, math.ceil(history_days / _unit_days(unit))) if unit else 1
        self.tables[name] = Table(name, self.sizes.get(name, {}), rows, partitions, unit,
                                  self.partition_number(self.today, unit))

    def set_runs_per_day(self, runs: float, table: str = "etl_runs") -> None:
        """The run-record table's rows: `runs` a day over its history, at most its partitions' expiration."""
        history = min(365 * self.year + 1, table_spec(table).partition_expiration_days or math.inf)
        self._add(table, runs * history, history)

    @staticmethod
    def partition_number(day: date, unit: str | None) -> int:
        if unit == "MONTH":
            return day.year * 12 + day.month - 1
        return day.toordinal()

    def days_ago(self, days: Iterable[float], unit: str | None) -> set[int]:
        return {self.partition_number(self.today - timedelta(days=d), unit) for d in days}

    def scanned_partitions(self, table: str, numbers: set[int]) -> int:
        """Partitions with data inside the MERGE's spans (warehouse.base.partition_spans joins them as the code does)."""
        t = self.tables[table]
        if not t.unit or not numbers:
            return t.partitions
        spans = partition_spans(numbers, t.unit, "DATE")
        first = t.last - t.partitions + 1
        covered = 0
        for start, end in spans.spans:
            a = self.partition_number(start, t.unit)
            b = self.partition_number(end, t.unit)  # exclusive
            covered += max(0, min(b, t.last + 1) - max(a, first))
        return covered


# ---------------------------------------------------------------- 3. statements and their bills
@dataclass
class Statement:
    job: str
    kind: str
    table: str  # the table the statement is about (as the ledger names it)
    refs: list[tuple[str, float]] = field(default_factory=list)  # (table referenced, bytes processed)
    weight: float = 1.0  # how many of these a run issues on average (a run with no deletions issues none)
    merged: tuple | None = None  # a MERGE's (rows, partitions, columns, update): what queue mode folds together

    @property
    def billed(self) -> float:
        return sum(max(MIN_BILLED, b) for _t, b in self.refs)


class Day:
    """The statements of one run, built for the before or after code."""

    def __init__(self, org: Org, job: str):
        self.org, self.job, self.statements = org, job, []

        self.weight = 1.0  # of the statements added next

    def add(self, kind: str, table: str, *refs: tuple[str, float]) -> None:
        self.statements.append(Statement(self.job, kind, table, list(refs), self.weight))

    def select(self, table: str, columns: Iterable[str], partitions: float | None = None) -> None:
        self.add("select", table, (table, self.org.tables[table].column_bytes(columns, partitions)))

    def merge(self, table: str, rows: float, numbers: set[int] | None, columns: Iterable[str] | None = None,
              update: bool = True, one_row: bool = False) -> None:
        """A MERGE of `rows` staged rows into table, scanning the partitions of `numbers` (None: all).

        one_row: a single row merged by warehouse.merge() (a run's record, a watermark), which the after code
        MERGEs from query parameters, with no staging table to reference."""
        org, t = self.org, self.org.tables[table]
        spec = table_spec(table)
        merged = list(columns) if columns is not None else list(t.columns)
        staging = rows * sum(t.columns.get(c, 0.0) for c in merged)
        scanned = t.partitions if numbers is None else org.scanned_partitions(table, numbers)
        read = [*spec.primary_key, *([spec.version] if spec.version else []),
                *([spec.partition_field] if spec.partition_field else [])]
        target = t.column_bytes(read, scanned) + (t.partition_bytes(scanned) if update else 0.0)
        if one_row and org.after:
            self.add("merge", table, (table, target))
        else:
            self.add("merge", table, ("(staging tables)", staging), (table, target))
        self.statements[-1].merged = (rows, numbers, columns, update)

    def update(self, table: str, columns: Iterable[str], partitions: float | None = None,
               extra: Iterable[tuple[str, float]] = ()) -> None:
        t = self.org.tables[table]
        scanned = t.partitions if partitions is None else partitions
        self.add("update", table, (table, t.column_bytes(columns, scanned) + t.partition_bytes(scanned)), *extra)


def pruned(org: Org, table: str, numbers: set[int]) -> set[int] | None:
    """The partitions a MERGE scans: the batch's (after, immutable partition column) or all (before)."""
    spec = table_spec(table)
    return numbers if org.after and spec.partition_field and spec.partition_immutable else None


def run_overhead(day: Day, source: str, watermark_table: str = "sync_state") -> None:
    """What every run asks besides its data: its etl_runs rows, the lease and abandoned-run check (after)."""
    org = day.org
    today = org.days_ago([0], "DAY")
    if org.after:
        # The abandoned-run UPDATE also reads which runs hold a live lease (a killed run's lapses unrenewed).
        day.update("etl_runs", ["source", "status", "started_at", "run_id"], ABANDONED_LOOKBACK_DAYS,
                   [("stream_leases", 0)])
        # The lease MERGE says by its affected rows whether it took the lease: the holder is read only when not.
        day.add("merge", "stream_leases", ("stream_leases", 0))
        day.add("delete", "stream_leases", ("stream_leases", 0))
        # The opening row is appended by a load job (free); only the close is a MERGE.
        day.merge("etl_runs", 1, pruned(org, "etl_runs", today), one_row=True)
    else:
        for _ in ("open", "close"):
            day.merge("etl_runs", 1, pruned(org, "etl_runs", today), one_row=True)
    if watermark_table:
        day.select(watermark_table, [])


def checkpoints(day: Day, table: str, count: int) -> None:
    for _ in range(count):
        day.merge(table, 1, None, one_row=True)


def batches(rows: float, page: int, after: bool) -> int:
    """MERGEs of a run: after, one per MERGE_FLUSH_ROWS staged; before, one per source page (<= 10,000 rows)."""
    if rows <= 0:
        return 0
    return math.ceil(rows / FLUSH_ROWS_AFTER) if after else math.ceil(rows / min(page, BATCH_ROWS))


def data_merges(day: Day, table: str, rows: float, page: int, numbers: set[int], columns=None) -> int:
    """The run's MERGEs into table; returns how many (each scans its batch's partitions after, all before)."""
    count = batches(rows, page, day.org.after)
    for _ in range(count):
        day.merge(table, rows / count, pruned(day.org, table, numbers), columns)
    return count


def _scattered(org: Org, rng: random.Random, count: float, history_days: float, recent_share: float = 0.0,
               recent_days: float = 7) -> list[float]:
    """Ages in days of `count` rows: recent_share within recent_days, the rest anywhere in the history."""
    return [rng.uniform(0, recent_days) if rng.random() < recent_share else rng.uniform(0, history_days)
            for _ in range(int(round(count)))]


def gmail_incremental(day: Day, rng: random.Random) -> None:
    """One hourly run of one mailbox: the hour's new mail and deletions (a run sees some with Poisson odds)."""
    org, p = day.org, day.org.p
    new = p.messages_per_mailbox_day / 24
    deleted = p.deletions_per_mailbox_day / 24
    history = p.mail_history_days + 365 * org.year
    run_overhead(day, "gmail", "gmail_sync_state")
    with_deletions, with_mail = 1 - math.exp(-deleted), 1 - math.exp(-new)
    day.weight = with_deletions
    day.select("gmail_messages", ["mailbox", "message_id", "sent_at"])
    if not org.after:  # before: deletions flagged by an UPDATE over the whole table
        day.update("gmail_messages", ["mailbox", "message_id", "is_deleted"])
    day.weight = 1 - (1 - with_mail) * (1 - with_deletions) if org.after else with_mail
    per_run = max(1, deleted / with_deletions) if with_deletions else 0
    ages = [0.0, *_scattered(org, rng, per_run, history, recent_share=0.8, recent_days=30)]
    data_merges(day, "gmail_messages", (new + deleted) / day.weight if day.weight else 0, GMAIL_PAGE,
                org.days_ago(ages if org.after else [0.0], "DAY"))
    day.weight = with_mail
    participants = new * org.participants_per_message / with_mail if with_mail else 0
    data_merges(day, "gmail_participants", participants, GMAIL_PAGE, org.days_ago([0], "DAY"))
    day.weight = 1 - (1 - with_mail) * (1 - with_deletions)
    checkpoints(day, "gmail_sync_state", 1)
    day.weight = 1.0


def gmail_full(day: Day, rng: random.Random) -> None:
    org, p = day.org, day.org.p
    history = p.mail_history_days + 365 * org.year
    stored = p.messages_per_mailbox_day * history
    run_overhead(day, "gmail", "gmail_sync_state")
    if org.after:
        # Stored messages are not fetched again: their ids, dates and labels are read, only changes are written.
        day.select("gmail_messages", ["mailbox", "message_id", "sent_at", "label_ids", "is_deleted"])
        new = p.messages_per_mailbox_day / 24  # what arrived since the last hourly incremental run
        changes = p.label_changes_per_mailbox_day
        ages = [0.0, *_scattered(org, rng, changes, history, recent_share=0.9)]
        data_merges(day, "gmail_messages", new + changes, GMAIL_PAGE, org.days_ago(ages, "DAY"))
        data_merges(day, "gmail_participants", new * org.participants_per_message, GMAIL_PAGE,
                    org.days_ago([0], "DAY"))
        checkpoints(day, "gmail_sync_state", 2)  # a first page with nothing to write, and the end
    else:
        pages = math.ceil(stored / GMAIL_PAGE)
        for table, per_message in (("gmail_messages", 1.0), ("gmail_participants", org.participants_per_message)):
            for _ in range(pages):
                day.merge(table, GMAIL_PAGE * per_message, None)
        checkpoints(day, "gmail_sync_state", pages)


def salesforce(day: Day, rng: random.Random, full: bool) -> None:
    org, p = day.org, day.org.p
    history = 365 * (p.crm_age_years + org.year)
    changed_share = p.crm_change_rate / 4  # four incremental runs a day
    for obj, table in SF_OBJECT_TABLES.items():
        t = org.tables[table]
        share = ACTIVITY_SHARE.get(obj, 1.0)
        run_overhead(day, "salesforce")
        if full:
            rows = t.rows * share
            ages = [0.0, history]  # every month of the org's history
            page = SF_BULK_PAGE
        else:
            new = {"sf_contacts": p.new_contacts_per_day, "sf_leads": p.new_leads_per_day,
                   "sf_activities": p.activities_per_day}.get(table, 0) * share / 4
            if table == "sf_activities":  # a fifth of new activities change again (completed), within 30 days
                changed, recent, recent_days = new * 0.2, 1.0, 30
            else:  # records modified: 30 % created in the last 90 days, the rest anywhere in the org's history
                changed, recent, recent_days = t.rows * share * changed_share, 0.3, 90
            rows = new + changed
            ages = [0.0, *_scattered(org, rng, changed, history, recent, recent_days)]
            page = SF_REST_PAGE
        numbers = org.days_ago(ages, t.unit) if not full else set(range(t.last - t.partitions + 1, t.last + 1))
        count = data_merges(day, table, rows, page, numbers)
        checkpoints(day, "sync_state", max(1, count))


def dialpad(day: Day, rng: random.Random) -> None:
    org, p = day.org, day.org.p
    calls = p.calls_per_day * 1.25  # a day's window plus the 6 h lookback
    pages = math.ceil(calls / DIALPAD_PAGE)
    run_overhead(day, "dialpad")
    for _ in range(pages):  # the transcripts already stored, per page of calls
        if org.after:  # dialpad_transcripts, bounded to the window's days (a day either side: about 3 partitions)
            day.select("dialpad_transcripts", ["call_id", "started_at"], 3)
        else:  # before: the transcript column of every partition of dialpad_calls
            day.select("dialpad_calls", ["call_id", "transcript_text", "started_at"])
    data_merges(day, "dialpad_calls", calls, DIALPAD_PAGE, org.days_ago([0, 1], "DAY"))
    if org.after:  # the transcripts fetched: the new calls' (stored ones are not fetched again)
        data_merges(day, "dialpad_transcripts", p.calls_per_day * org.transcribed_share, DIALPAD_PAGE,
                    org.days_ago([0, 1], "DAY"))
    checkpoints(day, "sync_state", 2 if org.after else 2 + pages)


def hubspot(day: Day, rng: random.Random) -> None:
    org, p = day.org, day.org.p
    run_overhead(day, "hubspot")
    day.merge("hubspot_sequences", 50, None)
    run_overhead(day, "hubspot")
    rows = p.enrollments_per_day * 1.5  # new ones and changed ones
    ages = [0.0, *_scattered(org, rng, p.enrollments_per_day * 0.5, 365 * (1 + org.year), 0.5, 60)]
    t = org.tables["hubspot_sequence_enrollments"]
    data_merges(day, "hubspot_sequence_enrollments", rows, HUBSPOT_PAGE, org.days_ago(ages, t.unit))
    checkpoints(day, "sync_state", 1 if org.after else max(1, math.ceil(rows / HUBSPOT_PAGE)))


def meeting_source(day: Day, streams: int, page: int, lookback_days: float) -> None:
    """One run of a meeting source (after only: the sources are new), half the org's meetings: per stream (one
    each: Meet reads every user within its one stream) its overhead; per page the stored-transcripts look-up (the
    window's days, a day either side); the meetings of the look-back and the window read again, merged into the
    three tables; one watermark checkpoint (one window covers the look-back)."""
    org = day.org
    if not org.after:
        return
    per_stream = org.meetings_per_day / 2 * (lookback_days + 0.25) / streams
    pages = max(1, math.ceil(per_stream / page))
    recent = org.days_ago(range(int(math.ceil(lookback_days)) + 1), "DAY")
    for _ in range(streams):
        run_overhead(day, "meetings")
        for _ in range(pages):
            day.select("meeting_transcripts", ["source", "meeting_id", "started_at"], lookback_days + 2)
        data_merges(day, "meetings", per_stream, page, recent)
        data_merges(day, "meeting_participants", per_stream * org.participants_per_meeting, page, recent)
        data_merges(day, "meeting_transcripts", per_stream / (lookback_days + 0.25), page, org.days_ago([0, 1], "DAY"))
        checkpoints(day, "sync_state", 1)


def _er_columns(name: str) -> dict[str, list[str]]:
    """Per warehouse table an entity-resolution statement reads: the table's columns its text names."""
    return _sql_columns((ER_SQL / f"{name}.sql").read_text())


def _sql_columns(text: str) -> dict[str, list[str]]:
    """Per warehouse table that SQL text (views expanded) reads: the table's columns the text names."""
    text = re.sub(r"--[^\n]*", "", text)
    views = {p.stem: p for p in VIEWS.rglob("v_*.sql")}
    for _ in range(3):  # views read views: expand to the tables underneath
        text += "".join(re.sub(r"--[^\n]*", "", views[v].read_text().split(" AS", 1)[1])
                        for v in set(re.findall(r"\$\{dataset\}\.(v_\w+)", text)) if v in views)
        text = re.sub(r"\$\{dataset\}\.v_\w+", "", text)
    words = set(re.findall(r"\b\w+\b", text))
    tables = set(re.findall(r"\$\{dataset\}\.(\w+)", text))
    refs = {}
    for table in sorted(tables):
        spec = table_spec(table)
        refs[table] = [c for c in spec.column_names if c in words]
    return refs


# 01_scope after: per matched table, its value columns read whole (the CRM-changed values' rows, anywhere) and the
# partitions written since the last run (runs every 4 hours: mail of today and yesterday, Dialpad's window of two
# days, the month of the day's enrollments) read for rows never examined.
SCOPE_VALUE_COLUMNS = {"gmail_participants": (["email", "domain"], 2),
                       "hubspot_sequence_enrollments": (["email", "domain"], 1),
                       "meeting_participants": (["email", "domain", "phone_e164"], 3),
                       "dialpad_calls": (["external_number_e164"], 2)}


def _scope_bytes(org: Org, table: str, columns: list[str]) -> float:
    t = org.tables[table]
    if not org.after or table not in SCOPE_VALUE_COLUMNS:
        return t.column_bytes(columns)
    values, written = SCOPE_VALUE_COLUMNS[table]
    return t.column_bytes(values) + t.column_bytes([*columns, table_spec(table).partition_field], written)


def entity_resolution(day: Day, rng: random.Random) -> None:
    org, p = day.org, day.org.p
    runs = 6
    run_overhead(day, "entity_resolution", watermark_table="")
    day.select("ref_free_email_domains", [])
    day.select("etl_runs", ["source", "status", "started_at", "stream"])  # 01_scope_since
    if org.after:  # 01_scope_written: the runs that ended since, over the abandoned-run lookback's partitions
        day.select("etl_runs", ["source", "status", "started_at", "updated_at", "details"], ABANDONED_LOOKBACK_DAYS)
    work = ("(er work tables)", 0.0)
    for name, kind in (("01_scope", "create"), ("02_candidates", "create"), ("03_resolve", "create"),
                       ("04_review_candidates", "merge")):
        refs = [(table, _scope_bytes(org, table, cols) if name == "01_scope" else org.tables[table].column_bytes(cols))
                for table, cols in _er_columns(name).items() if table in org.tables]
        day.add(kind, name, *refs, *([work] if name != "01_scope" else []))
    mail_history = p.mail_history_days + 365 * org.year
    crm_changes = (p.contacts + p.leads) * p.crm_change_rate / runs
    in_mail = crm_changes * p.changed_values_in_mail
    meeting_history = p.meeting_history_days + 365 * org.year
    targets = [("gmail_participants", "email", mail_history),
               ("dialpad_calls", "external_number_e164", p.call_history_days + 365 * org.year)]
    if org.after:
        targets += [("meeting_participants", "email", meeting_history),
                    ("meeting_participants", "phone_e164", meeting_history)]
    for target, value_column, history in targets:
        read = [value_column, "matched_at", "sf_contact_id", "sf_lead_id", "sf_account_id", "match_method",
                table_spec(target).partition_field]
        if org.after:
            day.select(target, [value_column, "matched_at", table_spec(target).partition_field])
            per_value = p.rows_per_address if target == "gmail_participants" else max(1, p.rows_per_address // 4)
            if target == "meeting_participants":  # a person meets far less often than they mail
                per_value = max(1, p.rows_per_address // 10)
            ages = [0.0, *_scattered(org, rng, in_mail * p.outcome_change_share * per_value, history)]
            scanned = org.scanned_partitions(target, org.days_ago(ages, "DAY"))
            day.update(target, read, scanned, extra=[work])
        else:
            day.update(target, read, None, extra=[work])
    day.add("select", "06_summary", work)


def account_recommendations(day: Day, rng: random.Random) -> None:
    """recommend.sql (after only: the job is new): one statement over the views, then a MERGE of the day's rows."""
    org = day.org
    if not org.after:
        return
    run_overhead(day, "account_recommendations", watermark_table="")
    text = (ROOT / "recommendations" / "sql" / "recommend.sql").read_text()
    refs = [(table, org.tables[table].column_bytes(cols)) for table, cols in _sql_columns(text).items()
            if table in org.tables]
    day.add("select", "recommend", *refs)
    # A day's rows (a twentieth of the accounts fire a rule) into a table of every earlier day's: its MERGE is
    # not pruned (generated_at is stamped per run), so it scans all of it.
    rows, row_bytes = org.p.accounts * 0.05, 437.0
    history = rows * row_bytes * 365 * (1 + org.year)
    day.add("merge", "account_recommendations", ("(staging tables)", rows * row_bytes),
            ("account_recommendations", history))


# ---------------------------------------------------------------- 3b. queue mode (DISPATCH=queue)
SYNC_JOBS = ("salesforce", "gmail", "dialpad", "hubspot")
MERGER_SWEEPS_PER_DAY = 24 * 60 / 10  # pipeline.merger: runs left running closed every 10 minutes
MERGER_SWEEP_LOOKBACK_DAYS = 2


def queue_fold(day: Day, runs: int, cycles_per_fire: int) -> None:
    """A fire's statements as queue mode issues them: the workers' reads unchanged; no lease MERGE or DELETE and
    no abandoned-run UPDATE per run (the merger sweeps); every MERGE the runs would issue (data, etl_runs rows,
    watermarks) landed instead, and folded by the merger into one MERGE per table per cycle the fire's runs
    span (at most cycles_per_fire: the runs of one fire finish within a few merge intervals)."""
    kept: list[Statement] = []
    folded: dict[str, list[Any]] = {}
    for statement in day.statements:
        if statement.table == "stream_leases" or (statement.kind == "update" and statement.table == "etl_runs"):
            continue
        if statement.kind == "merge" and statement.merged is not None:
            rows, numbers, columns, update = statement.merged
            entry = folded.setdefault(statement.table, [0.0, set(), columns, False])
            entry[0] += rows * statement.weight
            entry[1] = None if numbers is None or entry[1] is None else entry[1] | set(numbers)
            entry[3] = entry[3] or update
            continue
        kept.append(statement)
    day.statements = kept
    day.weight = 1.0
    cycles = max(1, min(runs, cycles_per_fire))
    for table, (rows, numbers, columns, update) in folded.items():
        if table == "etl_runs":
            rows *= 2  # the opening row is landed too (inline, it is a free load job)
        for _ in range(cycles):
            day.merge(table, rows / cycles, numbers, columns, update)


def merger_sweep(day: Day, _rng: random.Random) -> None:
    """The merger's UPDATE closing runs left running past the function's timeout, over two days of etl_runs."""
    day.update("etl_runs", ["source", "status", "started_at", "run_id"], MERGER_SWEEP_LOOKBACK_DAYS,
               [("stream_leases", 0)])


# ---------------------------------------------------------------- 4. a day of the schedules
def runs_per_day() -> dict[str, float]:
    """Each job of schedules.yaml: its fires over a week (UTC minutes), divided by 7."""
    _zone, jobs = load_jobs()
    start = datetime(2027, 6, 7)  # a Monday
    fires = {job.name: 0 for job in jobs}
    for minute in range(7 * 24 * 60):
        moment = start + timedelta(minutes=minute)
        for job in jobs:
            if cron_matches(job.schedule, moment):
                fires[job.name] += 1
    return {name: count / 7 for name, count in fires.items()}


BUILDERS = {
    "salesforce-incremental-sync": lambda day, rng: salesforce(day, rng, full=False),
    "salesforce-full-sync": lambda day, rng: salesforce(day, rng, full=True),
    "gmail-incremental-sync": lambda day, rng: [gmail_incremental(day, rng) for _ in range(day.org.p.mailboxes)],
    "gmail-full-sync": lambda day, rng: [gmail_full(day, rng) for _ in range(day.org.p.mailboxes)],
    "dialpad-sync": dialpad,
    "hubspot-sync": hubspot,
    "zoom-sync": lambda day, rng: meeting_source(day, 1, ZOOM_PAGE, 2.0),
    "meet-sync": lambda day, rng: meeting_source(day, 1, MEET_PAGE, 2.0),
    "entity-resolution": entity_resolution,
    "account-recommendations": account_recommendations,
    "merger-sweep": merger_sweep,
}


def runs_per_fire(job: str, profile: Profile) -> int:
    """etl_runs rows one fire of the job writes: one per Salesforce object, mailbox, HubSpot stream."""
    if job == "merger-sweep":
        return 0
    if job.startswith("salesforce"):
        return len(SF_OBJECT_TABLES)
    if job.startswith("gmail"):
        return profile.mailboxes
    return 2 if job == "hubspot-sync" else 1


# The incremental runs push makes redundant: their watermarks are the push runs', so with push on they find only
# what a dropped notification or a missed probe left (the daily Dialpad and HubSpot runs re-read their look-back).
PUSHED_JOBS = ("gmail-incremental-sync", "salesforce-incremental-sync")


def pushed_org(org: Org) -> Org:
    """The org as a run that push left nothing to find sees it: the same tables, no new or changed records."""
    quiet = copy(org)
    quiet.p = replace(org.p, messages_per_mailbox_day=0, label_changes_per_mailbox_day=0, deletions_per_mailbox_day=0,
                      crm_change_rate=0.0, new_contacts_per_day=0, new_leads_per_day=0, activities_per_day=0)
    return quiet


SF_LOOKBACK_SECONDS = float(Settings.model_fields["salesforce_lookback_seconds"].default)


def salesforce_lookback_rows(profile: Profile) -> dict[str, float]:
    """Records a scheduled Salesforce incremental run re-reads per object when push brought every change: its query
    starts SALESFORCE_LOOKBACK_SECONDS before the stored cursor (the push runs' watermark) and is inclusive
    (SystemModstamp >=), so it finds the record at the cursor and those changed in the look-back before it
    (history objects included: CreatedDate cursors, a row per opportunity change)."""
    changes = salesforce_object_changes(profile)
    changes.update({f: changes[name] for name, followers in FOLLOWERS.items() for f in followers})
    return {name: 1 + per_day * SF_LOOKBACK_SECONDS / DAY_SECONDS for name, per_day in changes.items() if per_day}


def salesforce_lookback(day: Day, rng: random.Random, profile: Profile) -> None:
    """The look-back's records MERGEd again by one scheduled incremental run (the rows push already brought: the
    versions keep them as they are, yet each MERGE bills its staged rows and its target's partitions they fall in,
    at least 10 MB each); profile: the org's rates (the day's org, push having left nothing new, has none)."""
    org = day.org
    history = 365 * (profile.crm_age_years + org.year)
    new = {"Contact": profile.new_contacts_per_day, "Lead": profile.new_leads_per_day}
    per_day = salesforce_object_changes(profile)
    for name, rows in salesforce_lookback_rows(profile).items():
        table = org.tables[OBJECTS[name].table]
        if name not in per_day:  # history rows: created by the change
            ages = [0.0]
        elif table.name == "sf_activities":  # new ones, and a fifth of them changed again within 30 days
            ages = [0.0] + _scattered(org, rng, rows * 0.2 / 1.2, 30, 1.0, 30)
        else:  # as the changes: the new records, and records modified (30 % created in the last 90 days)
            fresh = rows * new.get(name, 0.0) / per_day[name]
            ages = [0.0] * round(fresh) + _scattered(org, rng, rows - fresh, history, 0.3, 90)
        data_merges(day, table.name, rows, SF_REST_PAGE, org.days_ago([0.0, *ages], table.unit))


@dataclass
class DayBill:
    """A day's statements by job and by table (counts per day, bytes billed per day)."""

    by_job: dict[str, list[float]]  # job -> [statements, bytes]
    by_table: dict[str, list[float]]  # table referenced -> [references, bytes]
    by_statement: dict[str, list[float]]  # "job: kind table" -> [statements, bytes]
    runs: float

    @property
    def total(self) -> float:
        return sum(v[1] for v in self.by_job.values())

    @property
    def statements(self) -> float:
        return sum(v[0] for v in self.by_job.values())


def simulate_day(profile: Profile, sizes: dict[str, dict[str, float]], year: int, after: bool,
                 queue: bool = False, cycles_per_fire: int = 3, extra_runs: float = 0.0,
                 pushed: bool = False) -> DayBill:
    """The schedules' day; extra_runs: runs a day besides the schedules' whose etl_runs rows the schedules' reads of
    etl_runs scan too; pushed: the incremental runs push makes redundant find nothing new (Salesforce's re-reads
    its look-back: salesforce_lookback)."""
    fires = runs_per_day()
    if queue:
        fires["merger-sweep"] = MERGER_SWEEPS_PER_DAY
    org = Org(profile, sizes, year, after)
    runs = sum(count * runs_per_fire(job, profile) for job, count in fires.items())
    org.set_runs_per_day(runs + extra_runs)
    rng = random.Random(profile.seed * 1000 + year)
    by_job: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    by_table: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    by_statement: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for job, per_day in fires.items():
        if job not in BUILDERS:
            raise SystemExit(f"schedules.yaml has a job this bench does not model: {job}")
        day = Day(pushed_org(org) if pushed and job in PUSHED_JOBS else org, job)
        BUILDERS[job](day, rng)
        if queue and job.startswith(SYNC_JOBS):
            queue_fold(day, runs_per_fire(job, profile), cycles_per_fire)
        if pushed and job == "salesforce-incremental-sync":
            # After the fold: each object's run lands its few rows once, one MERGE per table and column set (the
            # fire's other runs write other tables), inline and in queue mode alike.
            salesforce_lookback(day, rng, profile)
        for statement in day.statements:
            times = per_day * statement.weight
            by_job[job][0] += times
            by_job[job][1] += times * statement.billed
            described = f"{job}: {statement.kind} {statement.table}"
            by_statement[described][0] += times
            by_statement[described][1] += times * statement.billed
            for table, processed in statement.refs:
                by_table[table][0] += times
                by_table[table][1] += times * max(MIN_BILLED, processed)
    return DayBill(dict(by_job), dict(by_table), dict(by_statement), runs)


# ---------------------------------------------------------------- 5. the report
def _gb(value: float) -> str:
    return f"{value / GB:9.2f}"


def report(profile: Profile, sizes: dict[str, dict[str, float]], queue: bool = False,
           cycles_per_fire: int = 3) -> dict[str, DayBill]:
    """Before (the code at adc0803) and after (now, inline), or with --dispatch queue inline and queue mode."""
    if queue:
        bills = {f"{label} y{year}": simulate_day(profile, sizes, year, True, label == "queue", cycles_per_fire)
                 for label in ("inline", "queue") for year in (0, 3)}
    else:
        bills = {f"{'after' if after else 'before'} y{year}": simulate_day(profile, sizes, year, after)
                 for after in (False, True) for year in (0, 3)}
    order = list(bills)
    fires = runs_per_day()
    if queue:
        fires["merger-sweep"] = MERGER_SWEEPS_PER_DAY
    print("\nGB billed per day (on-demand; statements per day in brackets)")
    print(f"  {'job':<30}{'runs/day':>9}" + "".join(f"{k:>20}" for k in order))
    for job, per_day in fires.items():
        cells = "".join(f"{_gb(bills[k].by_job.get(job, [0, 0])[1])} [{bills[k].by_job.get(job, [0, 0])[0]:7.0f}]"
                        for k in order)
        print(f"  {job:<30}{per_day:9.2f}{cells}")
    print(f"  {'total':<39}" + "".join(f"{_gb(bills[k].total)} [{bills[k].statements:7.0f}]" for k in order))
    print("\nGB billed per day by table referenced (each reference at least 10 MB; references per day in brackets)")
    tables = sorted({t for b in bills.values() for t in b.by_table}, key=lambda t: -bills[order[-1]].by_table.get(t, [0, 0])[1])
    for table in tables:
        cells = "".join(f"{_gb(bills[k].by_table.get(table, [0, 0])[1])} [{bills[k].by_table.get(table, [0, 0])[0]:7.0f}]"
                        for k in order)
        print(f"  {table:<39}{cells}")
    print_largest_statements(bills)
    return bills


def print_largest_statements(bills: dict[str, DayBill], count: int = 12) -> None:
    """The statements that bill most at year 3 in the last variant (what dominates), with their year 0 bill."""
    columns = tuple(list(bills)[-2:])
    last = bills[columns[-1]].by_statement
    print(f"\nLargest statements ({columns[-1].split()[0]}), by their bill at year 3 (GB billed per day; statements "
          f"per day in brackets)")
    print(f"  {'job: statement target':<58}" + "".join(f"{k:>20}" for k in columns))
    for described in sorted(last, key=lambda d: -last[d][1])[:count]:
        cells = "".join(f"{_gb(bills[k].by_statement.get(described, [0, 0])[1])} "
                        f"[{bills[k].by_statement.get(described, [0, 0])[0]:7.0f}]" for k in columns)
        print(f"  {described:<58}{cells}")


def print_sizes(profile: Profile, sizes: dict[str, dict[str, float]]) -> None:
    print("\nmeasured average row size (BigQuery logical bytes, from the sandbox run) and table sizes")
    for year in (0, 3):
        org = Org(profile, sizes, year, True)
        line = ", ".join(f"{n} {t.rows:,.0f} rows {t.bytes / GB:.2f} GB" for n, t in org.tables.items() if t.rows)
        print(f"  year {year}: {line}")
    print("  row bytes: " + ", ".join(f"{t} {sum(c.values()):,.0f}" for t, c in sizes.items() if not t.startswith("_")))


# ---------------------------------------------------------------- 6. push on (issue 25): the fresh tier
# pipeline/fresh_tier.py: push runs land their rows (free); each merger cycle appends a table's rows to
# `<table>_fresh` by one load job (free) when the table's load budget has a token; a table out of budget hands its
# messages back to Pub/Sub and its rows wait for a later cycle's token (nothing is merged by the minute). Once a
# fresh table's oldest row is FRESH_FOLD_SECONDS old, the merger folds it into its table (one MERGE per column set)
# and empties it (a WRITE_TRUNCATE load, free). A push run's record goes to push_runs (pipeline/etl_runs.RunTracker,
# 30 days of partitions): its folds MERGE push_runs', and the schedules' reads of etl_runs do not grow.
RUN_SECONDS = {"gmail": 5.0, "salesforce": 3.0, "dialpad": 3.0, "hubspot": 3.0}  # a push run's length
PROBE_SECONDS = float(Settings.model_fields["salesforce_probe_seconds"].default)  # one run per object per probe
MERGE_CYCLE_SECONDS = float(Settings.model_fields["merge_interval_seconds"].default)
DEFAULT_FOLD_SECONDS = float(Settings.model_fields["fresh_fold_seconds"].default)
FOLD_INTERVALS = tuple(sorted({900, 1800, 3600, 7200, 21600, 86400, int(DEFAULT_FOLD_SECONDS)}))  # FRESH_FOLD_SECONDS
DIALPAD_LOOKBACK_DAYS = Settings.model_fields["dialpad_lookback_hours"].default / 24  # a push run lists it again
TABLE_LOADS_PER_DAY = 1500  # BigQuery: load jobs per table per day, appends and truncations alike
COLD_STARTS_PER_DAY = 24  # per source worker: a process with empty caches
CYCLES_PER_DAY = DAY_SECONDS / MERGE_CYCLE_SECONDS
FOLD_SAMPLES = 8  # MERGEs drawn per flow (where a MERGE's rows fall is random)
TARGET_GB = 25.0  # issue 25: bytes billed a day at year 3 with push on
# The earlier design's figure (bench/README.md): MERGEing a table's rows in every cycle its budget refused.
MERGED_WHEN_REFUSED_GB = 207
SF_OBJECTS = tuple(OBJECTS)  # the probed objects and their followers: a run each
GMAIL_STATE_COLUMNS = ["mailbox", "message_id", "sent_at", "is_deleted"]  # message_state_rows: a column set
SF_REGISTRY_COLUMNS = ["object_name", "field_name", "salesforce_type", "bigquery_type", "removed_at"]
# What a cold process queries, once per cache (the free-reads helper's caches): (table, columns, partitions read).
# The field registry is one cache read whole (a query per object would be 9 a cold process, 2.1 GB a day). A Gmail
# push run reads no quota spent (gmail_sync.client_for: the cap is the scheduled runs').
COLD_PROCESS_READS: dict[str, list[tuple[str, list[str], float | None]]] = {
    "gmail": [],
    "salesforce": [("sf_custom_fields", SF_REGISTRY_COLUMNS, None)],
    "dialpad": [("dialpad_transcripts", ["call_id", "started_at"], 3)],  # the transcripts stored
    "hubspot": [],
}


def push_event_rates(profile: Profile) -> dict[str, float]:
    """Changes per day each source pushes at the profile's rate (each a notification, webhook event or probe hit)."""
    p = profile
    return {"gmail": p.mailboxes * (p.messages_per_mailbox_day + p.label_changes_per_mailbox_day
                                    + p.deletions_per_mailbox_day),
            "salesforce": sum(salesforce_object_changes(p).values()),
            "dialpad": p.calls_per_day * 1.5,  # hangup, and call_transcription for the recorded half
            "hubspot": float(p.enrollments_per_day)}


def salesforce_object_changes(profile: Profile) -> dict[str, float]:
    """Changes a day per probed Salesforce object: 1 % of the records, the new contacts and leads, the activities."""
    p = profile
    changes = {"Account": p.accounts * p.crm_change_rate,
               "Contact": p.contacts * p.crm_change_rate + p.new_contacts_per_day,
               "Lead": p.leads * p.crm_change_rate + p.new_leads_per_day,
               "Opportunity": p.opportunities * p.crm_change_rate}
    changes.update({name: p.activities_per_day * share for name, share in ACTIVITY_SHARE.items()})
    return {name: changes[name] for name in PROBED}


def coalesced_runs(pushes: float, run_seconds: float) -> float:
    """Runs a day of one stream pushed `pushes` times a day (Poisson): the pushes during a run are covered by one
    run after it (superseded() skips the rest), so at most one run per run length."""
    rate = pushes / DAY_SECONDS
    return DAY_SECONDS * rate / (rate * run_seconds + math.exp(-rate * run_seconds)) if pushes else 0.0


def probed_runs(changes: float, probe_seconds: float = PROBE_SECONDS) -> float:
    """Runs a day of one probed Salesforce object: one per probe that finds a change (Poisson)."""
    probes = DAY_SECONDS / probe_seconds
    return probes * (1 - math.exp(-changes / probes))


def push_runs(profile: Profile) -> dict[str, float]:
    """Push runs a day per stream kind: the mailboxes', each Salesforce object's (an Opportunity run brings its
    history objects' runs: push.salesforce_probe.FOLLOWERS), Dialpad's calls, HubSpot's enrollments."""
    rates = push_event_rates(profile)
    runs = {"gmail": profile.mailboxes * coalesced_runs(rates["gmail"] / profile.mailboxes, RUN_SECONDS["gmail"])}
    for name, changes in salesforce_object_changes(profile).items():
        runs[name] = min(probed_runs(changes), coalesced_runs(changes, RUN_SECONDS["salesforce"]))
        runs.update({follower: runs[name] for follower in FOLLOWERS.get(name, ())})
    runs["dialpad"] = coalesced_runs(rates["dialpad"], RUN_SECONDS["dialpad"])
    runs["hubspot"] = coalesced_runs(rates["hubspot"], RUN_SECONDS["hubspot"])
    return runs


def runs_by_source(runs: dict[str, float]) -> dict[str, float]:
    by_source: dict[str, float] = defaultdict(float)
    for stream, count in runs.items():
        by_source["salesforce" if stream in SF_OBJECTS else stream] += count
    return dict(by_source)


@dataclass
class FreshFlow:
    """What push runs land a day for one table and column set: its rows by where they fall and the runs that land
    them (each a landing). parts: (rows a day, recent share, recent days, history days): recent_share of the rows
    at most recent_days old, the rest anywhere in the history."""

    table: str
    landings: float
    parts: list[tuple[float, float, float, float]] = field(default_factory=list)
    columns: list[str] | None = None  # None: every column

    @property
    def rows(self) -> float:
        return sum(part[0] for part in self.parts)


def fresh_flows(org: Org, runs: dict[str, float]) -> dict[str, list[FreshFlow]]:
    """Per table push writes, its flows (one per column set; landed by different runs)."""
    p, year = org.p, 365 * org.year
    mail, crm, ppm = p.mail_history_days + year, 365 * p.crm_age_years + year, org.participants_per_message
    new_mail, relabelled = p.mailboxes * p.messages_per_mailbox_day, p.mailboxes * p.label_changes_per_mailbox_day
    deleted = p.mailboxes * p.deletions_per_mailbox_day
    deleting = min(runs["gmail"], deleted)  # runs with a deletion: at most one per deletion
    # A push run fetches a relabelled message whole (no look-up of its stored row): full rows in its partition.
    flows = [FreshFlow("gmail_messages", runs["gmail"] - deleting,
                       [(new_mail, 1, 0, mail), (relabelled, 0.9, 7, mail)]),
             FreshFlow("gmail_messages", deleting, [(deleted, 0.8, 30, mail)], GMAIL_STATE_COLUMNS),
             FreshFlow("gmail_participants", runs["gmail"], [(new_mail * ppm, 1, 0, mail),
                                                             (relabelled * ppm, 0.9, 7, mail)]),
             FreshFlow("gmail_sync_state", runs["gmail"], [(runs["gmail"], 1, 0, 1)])]
    for name, changes in salesforce_object_changes(p).items():
        # Each object its own column set: Task, Event and EmailMessage rows of sf_activities are three flows.
        if OBJECTS[name].table == "sf_activities":  # a fifth of new activities change again within 30 days
            parts = [(changes / 1.2, 1, 0, crm), (changes * 0.2 / 1.2, 1, 30, crm)]
        else:  # new records, and records modified: 30 % created in the last 90 days, the rest anywhere
            new = {"Contact": p.new_contacts_per_day, "Lead": p.new_leads_per_day}.get(name, 0.0)
            parts = [(new, 1, 0, crm), (changes - new, 0.3, 90, crm)]
        flows.append(FreshFlow(OBJECTS[name].table, runs[name], parts))
        flows += [FreshFlow(OBJECTS[f].table, runs[f], [(changes, 1, 0, crm)])  # a history row per change
                  for f in FOLLOWERS.get(name, ())]
    calls, share = p.calls_per_day, org.transcribed_share
    sync_runs = sum(runs_by_source(runs)[s] for s in ("salesforce", "dialpad", "hubspot"))
    every_run = sum(runs.values())
    flows += [FreshFlow("dialpad_calls", runs["dialpad"], [(calls + runs["dialpad"] * calls * DIALPAD_LOOKBACK_DAYS,
                                                            1, 1, p.call_history_days + year)]),
              FreshFlow("dialpad_transcripts", min(runs["dialpad"], calls * share),
                        [(calls * share, 1, 1, p.call_history_days + year)]),
              FreshFlow("hubspot_sequence_enrollments", runs["hubspot"],
                        [(p.enrollments_per_day, 1, 0, 365 * (1 + org.year)),
                         (p.enrollments_per_day * 0.5, 0.5, 60, 365 * (1 + org.year))]),
              FreshFlow("sync_state", sync_runs, [(sync_runs, 1, 0, 1)]),
              FreshFlow("push_runs", every_run, [(2 * every_run, 1, 0, 1)])]  # each run's record opened and closed
    by_table: dict[str, list[FreshFlow]] = defaultdict(list)
    for flow in flows:
        by_table[flow.table].append(flow)
    return dict(by_table)


def _merge_ages(org: Org, rng: random.Random, flow: FreshFlow, rows: float) -> list[float]:
    """Ages in days of `rows` rows of a flow: each part's count drawn around its share (at least one row)."""
    ages: list[float] = []
    for part_rows, recent_share, recent_days, history in flow.parts:
        expected = rows * part_rows / flow.rows
        count = int(expected) + (rng.random() < expected - int(expected))
        ages += _scattered(org, rng, count, history, recent_share, recent_days)
    if not ages:
        _rows, recent_share, recent_days, history = max(flow.parts)
        ages = _scattered(org, rng, 1, history, recent_share, recent_days)
    return ages


def merge_bill(org: Org, flow: FreshFlow, rows: float, rng: random.Random) -> float:
    """Bytes one MERGE of `rows` rows of a flow bills (staging at least 10 MB, the partitions the rows touch: Day.merge
    and pruned() as for the schedules), averaged over FOLD_SAMPLES draws of where the rows fall."""
    table = org.tables[flow.table]
    billed = 0.0
    for _ in range(FOLD_SAMPLES):
        day = Day(org, "push")
        numbers = pruned(org, flow.table, org.days_ago(_merge_ages(org, rng, flow, rows), table.unit)) \
            if table.unit else None
        day.merge(flow.table, rows, numbers, flow.columns)
        billed += _billed(day)
    return billed / FOLD_SAMPLES


def fold_bill(org: Org, flows: list[FreshFlow], interval: float, rng: random.Random) -> dict[str, float]:
    """A day of folds of one table every `interval` seconds: folds, MERGEs, bytes. A fold is due once the fresh
    table's oldest row is `interval` old, so it holds the first landing and those of the interval after it; it
    MERGEs each column set present once (fresh_tier._by_supplied)."""
    landings = sum(flow.landings for flow in flows)
    folds = DAY_SECONDS / (interval + DAY_SECONDS / landings)
    per_fold = landings / folds
    merges = billed = 0.0
    for flow in flows:
        segments = folds * (1 - (1 - flow.landings / landings) ** per_fold)  # the folds holding a landing of it
        merges += segments
        billed += segments * merge_bill(org, flow, flow.rows / segments, rng)
    return {"folds": folds, "merges": merges, "billed": billed}


def deferred_loads(flows: list[FreshFlow]) -> dict[str, float]:
    """One table's appends a day: cycles holding its rows (demand), loads within the budget (FRESH_LOADS_PER_DAY a
    day, bursts of FRESH_LOAD_BURST absorb the fluctuations), and the cycles deferred: their rows wait on the
    subscription for a later cycle's token and go in its load (billed nothing)."""
    landings = sum(flow.landings for flow in flows)
    demand = CYCLES_PER_DAY * (1 - math.exp(-landings / CYCLES_PER_DAY))
    return {"landings": landings, "demand": demand, "appends": min(demand, FRESH_LOADS_PER_DAY),
            "deferred": max(0.0, demand - FRESH_LOADS_PER_DAY)}


def run_reads(org: Org, runs: dict[str, float]) -> Day:
    """The billed statements of a day's push runs (weights: statements a day): Gmail's look-up of permanently
    deleted ids (a run with a deletion: at most one per deletion), and a cold process's query per cache."""
    p = org.p
    day = Day(org, "push runs")
    day.weight = min(runs["gmail"], p.mailboxes * p.deletions_per_mailbox_day)
    day.select("gmail_messages", ["mailbox", "message_id", "sent_at"])
    day.weight = COLD_STARTS_PER_DAY
    for source in runs_by_source(runs):
        for table, columns, partitions in COLD_PROCESS_READS[source]:
            day.select(table, columns, partitions)
    day.weight = 1.0
    return day


def _billed(day: Day) -> float:
    return sum(s.billed * s.weight for s in day.statements)


def push_org(profile: Profile, sizes: dict[str, dict[str, float]], year: int) -> tuple[Org, dict[str, float]]:
    """The org at `year` with push on: etl_runs holds the schedules' runs, push_runs the push runs' (30 days)."""
    org = Org(profile, sizes, year, True)
    runs = push_runs(profile)
    org.set_runs_per_day(sum(c * runs_per_fire(j, profile) for j, c in runs_per_day().items()))
    org.set_runs_per_day(sum(runs.values()), "push_runs")
    return org, runs


def push_day(profile: Profile, sizes: dict[str, dict[str, float]], year: int, interval: float) -> dict[str, Any]:
    """Bytes billed per day by push on top of the schedules, folding every `interval` seconds: per table its folds;
    the runs' own statements. Landing, the loads into the fresh tables (deferred cycles included) and their
    truncation, watermark reads and superseded() bill nothing."""
    org, runs = push_org(profile, sizes, year)
    rng = random.Random(profile.seed * 1000 + int(interval))
    by_table = {table: fold_bill(org, flows, fold_seconds(table, interval), rng)
                for table, flows in fresh_flows(org, runs).items()}
    folds = sum(t["billed"] for t in by_table.values())
    reads = _billed(run_reads(org, runs))
    return {"by_table": by_table, "merges": sum(t["merges"] for t in by_table.values()), "folds": folds,
            "runs": reads, "total": folds + reads}


def fresh_loads(profile: Profile, sizes: dict[str, dict[str, float]], interval: float) -> dict[str, dict[str, float]]:
    """Load jobs a day per fresh table: appends (within the budget; deferred cycles wait for a token) and the
    folds' truncations."""
    org, runs = push_org(profile, sizes, 3)
    loads = {}
    for table, flows in fresh_flows(org, runs).items():
        row = deferred_loads(flows)
        row["truncations"] = DAY_SECONDS / (fold_seconds(table, interval) + DAY_SECONDS / row["landings"])
        row["total"] = row["appends"] + row["truncations"]
        loads[table] = row
    return loads


def print_push(profile: Profile, sizes: dict[str, dict[str, float]], cycles_per_fire: int = 3) -> None:
    """Push on top of the schedules' day (queue mode, year 3), per fold interval (GB billed per day)."""
    org, runs = push_org(profile, sizes, 3)
    print("\nPush on (issue 25), year 3, the fresh tier: changes pushed per day " +
          ", ".join(f"{s} {r:,.0f}" for s, r in push_event_rates(profile).items()))
    print("  push runs per day (one per run length per stream, one per probe per Salesforce object): " +
          ", ".join(f"{s} {r:,.0f}" for s, r in runs_by_source(runs).items()) + f"; {sum(runs.values()):,.0f} in all, "
          "their records in push_runs")
    deleted, *cold = run_reads(org, runs).statements
    print(f"  billed by the runs: Gmail's look-up of permanently deleted ids {deleted.weight:,.0f} a day "
          f"{deleted.billed * deleted.weight / GB:.2f} GB; a cold process's query per cache ({COLD_STARTS_PER_DAY} "
          "a day per worker): " + ", ".join(f"{s.table} {s.billed * s.weight / GB:.2f} GB" for s in cold))
    print("  free: landing (Pub/Sub), watermark reads (tabledata.list), superseded() (no query on BigQuery), the "
          "loads into the fresh tables and their truncation, the merger's resolution (its CRM mirror read by "
          "tabledata.list hourly)")
    print("  a table out of load budget hands its messages back to Pub/Sub: its rows wait for the next token "
          f"(merging a table's rows when its budget was spent would bill ~{MERGED_WHEN_REFUSED_GB} GB/day)")
    schedules = print_schedules(profile, sizes, cycles_per_fire)
    print_fresh_loads(profile, sizes)
    days = {interval: push_day(profile, sizes, 3, interval) for interval in FOLD_INTERVALS}
    today, brought = (bill.total / GB for bill in schedules.values())
    print(f"\n  {'fold every':<12}{'MERGEs':>8}{'folds':>8}{'runs':>6}{'push':>8}{'+ (i)':>8}{'+ (ii)':>8}"
          f"  within {TARGET_GB:.0f}? (ii)   (GB billed per day; MERGEs a day)")
    for interval, day in days.items():
        push = day["total"] / GB
        print(f"  {interval:>7.0f} s{day['merges']:11,.0f}{day['folds'] / GB:8.2f}{day['runs'] / GB:6.2f}{push:8.2f}"
              f"{today + push:8.2f}{brought + push:8.2f}  {'yes' if brought + push <= TARGET_GB else 'no'}"
              + ("   (FRESH_FOLD_SECONDS default)" if interval == DEFAULT_FOLD_SECONDS else ""))
    print("\n  the folds by table (GB billed per day; MERGEs a day in brackets)")
    print(f"  {'table':<30}" + "".join(f"{f'{i} s':>16}" for i in FOLD_INTERVALS))
    default = days[int(DEFAULT_FOLD_SECONDS)]["by_table"]
    for table in sorted(default, key=lambda t: -default[t]["billed"]):
        cells = (days[i]["by_table"][table] for i in FOLD_INTERVALS)
        print(f"  {table:<30}" + "".join(f"{fold['billed'] / GB:7.2f} [{fold['merges']:6,.0f}]" for fold in cells))


def print_schedules(profile: Profile, sizes: dict[str, dict[str, float]], cycles_per_fire: int) -> dict[str, DayBill]:
    """The schedules' day with push on, two ways: (i) as today, (ii) push brought it; returns their bills."""
    today = simulate_day(profile, sizes, 3, True, True, cycles_per_fire)
    brought = simulate_day(profile, sizes, 3, True, True, cycles_per_fire, pushed=True)
    print(f"  the schedules' day (queue mode) with push on, GB billed per day:\n"
          f"    (i)  as today {today.total / GB:.2f}: unchanged, an upper bound (it prices each scheduled incremental "
          "as if it still found the changes push already brought)")
    print(f"    (ii) push brought it {brought.total / GB:.2f}: {' and '.join(PUSHED_JOBS)} find nothing new; push "
          "runs' records in push_runs (etl_runs and what reads it as today)")
    rereads = {k: v for k, v in brought.by_statement.items() if k.startswith("salesforce-incremental-sync: merge sf_")}
    records = salesforce_lookback_rows(profile)
    print(f"         in (ii), salesforce-incremental-sync's look-back: its query starts {SF_LOOKBACK_SECONDS:.0f} s "
          f"before the push runs' cursor, inclusive: {sum(records.values()):.0f} records a run over {len(records)} "
          f"objects re-read and MERGEd again, {sum(v[0] for v in rereads.values()):,.0f} MERGEs a day (one per object a "
          f"run, at least 20 MB each) {sum(v[1] for v in rereads.values()) / GB:.2f} GB")
    return {"as today": today, "push brought it": brought}


def print_fresh_loads(profile: Profile, sizes: dict[str, dict[str, float]]) -> None:
    """Load jobs a day per fresh table and fold interval, against BigQuery's 1,500 per table."""
    print(f"\n  load jobs a day per fresh table: a merger cycle every {MERGE_CYCLE_SECONDS:.0f} s appends a table's "
          f"rows by one load when its budget has a token ({FRESH_LOADS_PER_DAY:,} a day, bursts of {FRESH_LOAD_BURST}), "
          f"else they wait for the next token (deferred); each fold's truncation is one more load; BigQuery's limit "
          f"{TABLE_LOADS_PER_DAY:,}")
    loads = {interval: fresh_loads(profile, sizes, interval) for interval in FOLD_INTERVALS}
    print(f"  {'table':<30}{'landings':>9}{'cycles':>8}{'appends':>8}{'deferred':>9}" +
          "".join(f"{f'@{i} s':>9}" for i in FOLD_INTERVALS))
    for table, row in loads[FOLD_INTERVALS[0]].items():
        print(f"  {table:<30}{row['landings']:9,.0f}{row['demand']:8,.0f}{row['appends']:8,.0f}{row['deferred']:9,.0f}"
              + "".join(f"{loads[i][table]['total']:9,.0f}" for i in FOLD_INTERVALS))
    most = max(row["total"] for by_table in loads.values() for row in by_table.values())
    print(f"  most loads on one table: {most:,.0f} a day ({'within' if most <= TABLE_LOADS_PER_DAY else 'over'} "
          f"the {TABLE_LOADS_PER_DAY:,} a table; a merger process that starts again starts with a full burst)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Profile()
    for name, value in defaults.__dict__.items():
        kind = float if isinstance(value, float) or value is None else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=value)
    parser.add_argument("--sizes-json", help="reuse row sizes measured before (written by --save-sizes)")
    parser.add_argument("--dispatch", choices=["inline", "queue"], default="inline",
                        help="queue: compare inline (today) with queue mode (the merger's folded MERGEs)")
    parser.add_argument("--merge-cycles-per-fire", type=int, default=3,
                        help="queue mode: merger cycles one fire's runs span (each a MERGE per table written)")
    parser.add_argument("--save-sizes", help="write the measured row sizes here")
    args = parser.parse_args(argv)
    profile = Profile(**{name: getattr(args, name) for name in defaults.__dict__})
    print("bench/bigquery_cost.py " + " ".join(sys.argv[1:] if argv is None else argv))
    print(f"billing rules: {DML_DOC}; {PRICING_DOC} (10 MB minimum per table referenced); sizes: {SIZE_DOC}")
    print("profile: " + ", ".join(f"{k}={v}" for k, v in profile.__dict__.items()))
    started = time.perf_counter()
    if args.sizes_json:
        sizes = json.loads(Path(args.sizes_json).read_text())
    else:
        with tempfile.TemporaryDirectory(prefix="bqcost_") as workdir:
            path = run_sandbox_pipeline(Path(workdir))
            sizes = measure_columns(path)
            import duckdb

            con = duckdb.connect(str(path), read_only=True)
            sizes["_counts"] = {t: float(con.execute(f"SELECT COUNT(*) FROM sales_intelligence.{t}").fetchone()[0])
                                for t in ("gmail_messages", "gmail_participants", "dialpad_calls",
                                          "dialpad_transcripts", *MEETING_TABLES)}
            con.close()
        print(f"sandbox pipeline run and row sizes measured in {time.perf_counter() - started:.1f} s")
    if args.save_sizes:
        Path(args.save_sizes).write_text(json.dumps(sizes, indent=1))
    print_sizes(profile, sizes)
    bills = report(profile, sizes, args.dispatch == "queue", args.merge_cycles_per_fire)
    first, second = ("inline", "queue") if args.dispatch == "queue" else ("before", "after")
    before, after = bills[f"{first} y3"].total, bills[f"{second} y3"].total
    print_push(profile, sizes, args.merge_cycles_per_fire)
    print(f"\nyear 3: {before / GB:.1f} GB/day {first}, {after / GB:.1f} GB/day {second} "
          f"({'within' if after <= 25 * GB else 'over'} the 25 GB target); year 0: "
          f"{bills[f'{first} y0'].total / GB:.1f} -> {bills[f'{second} y0'].total / GB:.1f} GB/day")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
