"""Account recommendations: transparent rules over the analyst views, written daily to account_recommendations.

recommendations/sql/recommend.sql (BigQuery dialect, set-based, on DuckDB through sqlglot) selects every rule that
fires with its evidence and score; the rows are merged on recommendation_id (rule, account, subject, day), so a
rerun the same day rewrites the same rows. Rules and thresholds are settings (RECOMMENDATION_*).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from config.settings import Settings
from http_entry.validation import RequestModel
from observability.logger import log_context
from pipeline.etl_runs import LeaseTerms, RunRecord, claim_stream, new_run_id, tracked_run
from pipeline.runtime import Runtime

SQL = Path(__file__).resolve().parent / "sql" / "recommend.sql"
SOURCE = "account_recommendations"
# Bumped whenever a rule or its score formula changes: rows say which rules made them.
RULES_VERSION = "rules@1"


class RecommendationRequest(RequestModel):
    """Body of an account_recommendations call (no options: the rules and thresholds are settings)."""


def rule_parameters(settings: Settings, now: datetime) -> dict[str, Any]:
    """The query parameters of recommend.sql: the thresholds of the settings."""
    return {"now": now, "stalled_days": settings.recommendation_stalled_days,
            "new_contact_days": settings.recommendation_new_contact_days,
            "new_contact_min_messages": settings.recommendation_new_contact_min_messages,
            "burst_days": settings.recommendation_burst_days,
            "burst_min_touches": settings.recommendation_burst_min_touches,
            "dormant_days": settings.recommendation_dormant_days,
            "role_locals": list(settings.role_address_locals) or [""], "model_version": RULES_VERSION}


def recommend_accounts(request: RecommendationRequest, runtime: Runtime) -> dict[str, Any]:
    """Runs the rules once and merges what fired; returns the run's summary (also recorded in etl_runs)."""
    warehouse, settings = runtime.warehouse, runtime.settings
    record = RunRecord(run_id=new_run_id(SOURCE), source=SOURCE, stream="accounts", sync_type="full",
                       trigger=request.trigger)
    with log_context(run_id=record.run_id, source=SOURCE, stream="accounts"):
        terms = LeaseTerms.of(settings)
        if not claim_stream(warehouse, record, terms):
            return {"run_id": record.run_id, "status": record.status, "held_by": record.details["held_by"]}
        with tracked_run(warehouse, runtime.publisher, record, lambda: {}, terms):
            sql = SQL.read_text().replace("${dataset}", warehouse.dataset)
            rows = warehouse.query(sql, rule_parameters(settings, datetime.now(timezone.utc)))
            for row in rows:  # a JSON value is a Python object on both warehouses
                row["evidence"] = json.loads(row["evidence"]) if isinstance(row["evidence"], str) else row["evidence"]
            if rows:
                warehouse.merge("account_recommendations", rows, batch_id=f"{record.run_id}_rules")
            by_rule: dict[str, int] = {}
            for row in rows:
                by_rule[row["recommendation_type"]] = by_rule.get(row["recommendation_type"], 0) + 1
            record.rows_fetched = record.rows_loaded = len(rows)
            record.details = {**record.details, "by_rule": by_rule, "rules_version": RULES_VERSION}
            record.status = "success"
    return {"run_id": record.run_id, "status": record.status, "recommendations": len(rows), "by_rule": by_rule,
            "duration_seconds": record.duration_seconds}
