"""What happened, for people and scripts: `report --json`, `report --html FILE` and `check`.

Every figure comes from the warehouse in BigQuery SQL (etl_runs, rejected_records and the views), so it is the
same on DuckDB and BigQuery. The page is one self-contained HTML file: plotly's JavaScript is inlined, nothing is
fetched to view it.
"""
from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from config.schedules import load_jobs
from scripts.local_schedule import cron_matches
from warehouse import Warehouse

STATUS_COLOURS = {"success": "#2e7d32", "partial": "#f9a825", "failed": "#c62828", "abandoned": "#6a1b9a",
                  "cancelled": "#8d6e63", "skipped": "#9e9e9e", "running": "#1565c0"}
# A source is stale when its last success is older than this many times its schedule's longest gap.
STALE_FACTOR = 2


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


def freshness(warehouse: Warehouse, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per scheduled source: last success, its schedule's longest gap, the age of that success and whether it is
    older than STALE_FACTOR gaps (never succeeded: stale)."""
    now = now or datetime.now(timezone.utc)
    last = {r["source"]: r["last_success"] for r in warehouse.query(
        f"SELECT source, MAX(ended_at) AS last_success FROM `{warehouse.dataset}.etl_runs` "
        f"WHERE status = 'success' GROUP BY source")}
    rows = []
    for source, gap in schedule_gaps().items():
        success = last.get(source)
        age = (now - success) if success else None
        rows.append({"source": source, "last_success": success, "schedule_gap_hours": gap.total_seconds() / 3600,
                     "age_hours": age.total_seconds() / 3600 if age is not None else None,
                     "stale": age is None or age > STALE_FACTOR * gap})
    return rows


def report_data(warehouse: Warehouse, days: int = 30) -> dict[str, Any]:
    """Everything the report shows, as plain values: runs, rows per table and day, freshness, match rates,
    rejects, unmatched domains, rows per table."""
    ds = warehouse.dataset
    since = {"days": days}
    runs = warehouse.query(
        f"SELECT run_id, source, stream, sync_type, status, started_at, ended_at, duration_seconds, rows_fetched, "
        f"rows_loaded, rows_rejected, error_type, error_message, details FROM `{ds}.etl_runs` "
        f"WHERE started_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @days DAY) ORDER BY started_at", since)
    loaded: dict[tuple[str, str], int] = {}
    for run in runs:  # each run's ledger counts the rows it merged per table
        jobs = ((run.pop("details") or {}).get("warehouse_jobs") or {}).get("jobs") or {}
        for name, entry in jobs.items():
            kind, _, table = name.partition(" ")
            if kind == "merge" and entry.get("rows"):
                key = (run["started_at"].date().isoformat(), table)
                loaded[key] = loaded.get(key, 0) + entry["rows"]
    return {
        "generated_at": datetime.now(timezone.utc),
        "warehouse_dataset": ds,
        "days": days,
        "runs": runs,
        "rows_loaded_per_day": [{"day": d, "table": t, "rows": n} for (d, t), n in sorted(loaded.items())],
        "freshness": freshness(warehouse),
        "match_rates": warehouse.query(
            f"SELECT day, source, match_method, SUM(row_count) AS row_count, SUM(share_of_day) AS share_of_day "
            f"FROM `{ds}.v_match_quality` WHERE day >= DATE_SUB(CURRENT_DATE(), INTERVAL @days DAY) "
            f"GROUP BY day, source, match_method ORDER BY day, source, match_method", since),
        "rejected_by_reason": warehouse.query(
            f"SELECT source, stream, reason, COUNT(*) AS records, MAX(rejected_at) AS last_rejected_at "
            f"FROM `{ds}.rejected_records` WHERE rejected_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @days DAY) "
            f"GROUP BY source, stream, reason ORDER BY records DESC, source, stream, reason LIMIT 50", since),
        "top_unmatched_domains": warehouse.query(
            f"SELECT domain, addresses, occurrences, last_seen, sf_account_id, is_free_mail "
            f"FROM `{ds}.v_unmatched_domains` ORDER BY occurrences DESC, domain LIMIT 20"),
        "rows_per_table": warehouse.table_counts(),
    }


def to_json(data: Any) -> str:
    """The report as JSON (times in ISO 8601, NUMERIC as text)."""
    from transform.values import json_ready

    return json.dumps(json_ready(data), indent=2, ensure_ascii=False)


def _figures(data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(id, title, plotly figure) of every chart of the page."""
    import plotly.graph_objects as go

    figures = []
    runs = go.Figure()
    for status, colour in STATUS_COLOURS.items():
        mine = [r for r in data["runs"] if r["status"] == status]
        if mine:
            runs.add_trace(go.Scatter(
                x=[r["started_at"] for r in mine], y=[r["source"] for r in mine], mode="markers", name=status,
                marker={"color": colour, "size": 10, "symbol": "square"},
                text=[f"{r['stream'] or '-'}: {r['rows_loaded'] or 0:,} rows, {r['duration_seconds'] or 0:.1f} s"
                      + (f"<br>{html.escape((r['error_message'] or '')[:200])}" if r["error_message"] else "")
                      for r in mine], hovertemplate="%{x}<br>%{text}<extra>%{fullData.name}</extra>"))
    runs.update_layout(xaxis_title="started", yaxis_title="source")
    figures.append(("runs", "Runs per source over time, by status", runs))

    per_day = go.Figure()
    for table in sorted({r["table"] for r in data["rows_loaded_per_day"]}):
        mine = [r for r in data["rows_loaded_per_day"] if r["table"] == table]
        per_day.add_trace(go.Bar(x=[r["day"] for r in mine], y=[r["rows"] for r in mine], name=table))
    per_day.update_layout(barmode="stack", xaxis_title="day", yaxis_title="rows merged")
    figures.append(("rows_per_day", "Rows loaded per day per table", per_day))

    fresh = go.Figure(go.Bar(
        x=[r["source"] for r in data["freshness"]],
        y=[r["age_hours"] if r["age_hours"] is not None else 0 for r in data["freshness"]],
        marker_color=["#c62828" if r["stale"] else "#2e7d32" for r in data["freshness"]], name="hours since success",
        text=["never" if r["age_hours"] is None else f"{r['age_hours']:.1f} h" for r in data["freshness"]]))
    fresh.add_trace(go.Scatter(x=[r["source"] for r in data["freshness"]],
                               y=[STALE_FACTOR * r["schedule_gap_hours"] for r in data["freshness"]],
                               mode="markers", marker={"symbol": "line-ew-open", "size": 30, "color": "#000"},
                               name=f"stale after ({STALE_FACTOR} x schedule)"))
    fresh.update_layout(yaxis_title="hours", yaxis_type="log")
    figures.append(("freshness", "Freshness per source against its schedule", fresh))

    rates = go.Figure()
    for source, method in sorted({(r["source"], r["match_method"]) for r in data["match_rates"]}):
        mine = [r for r in data["match_rates"] if (r["source"], r["match_method"]) == (source, method)]
        rates.add_trace(go.Scatter(x=[r["day"] for r in mine], y=[r["share_of_day"] for r in mine],
                                   mode="lines+markers", name=f"{source} {method}"))
    rates.update_layout(xaxis_title="day", yaxis_title="share of the day's rows", yaxis_tickformat=".0%")
    figures.append(("match_rates", "Match rates by method over time", rates))

    rejects = go.Figure(go.Bar(
        y=[f"{r['source']} {r['stream']}: {r['reason'][:60]}" for r in data["rejected_by_reason"]],
        x=[r["records"] for r in data["rejected_by_reason"]], orientation="h", name="records"))
    rejects.update_layout(xaxis_title="records", yaxis={"autorange": "reversed"})
    figures.append(("rejects", "Rejected records by reason", rejects))

    domains = go.Figure(go.Bar(
        y=[r["domain"] for r in data["top_unmatched_domains"]],
        x=[r["occurrences"] for r in data["top_unmatched_domains"]], orientation="h", name="occurrences",
        marker_color=["#9e9e9e" if r["is_free_mail"] else "#1565c0" for r in data["top_unmatched_domains"]]))
    domains.update_layout(xaxis_title="occurrences (grey: free mail)", yaxis={"autorange": "reversed"})
    figures.append(("unmatched_domains", "Top unmatched domains (lead candidates)", domains))
    return figures


def to_html(data: dict[str, Any]) -> str:
    """One self-contained page: the charts (plotly.js inlined once) and the stale sources named in words."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    sections = []
    for name, title, figure in _figures(data):
        figure.update_layout(title=title, height=380, margin={"l": 60, "r": 20, "t": 50, "b": 50})
        chart = pio.to_html(figure, include_plotlyjs=False, full_html=False, div_id=f"chart-{name}")
        sections.append(f'<section class="chart" data-chart="{name}">{chart}</section>')
    stale = [r["source"] for r in data["freshness"] if r["stale"]]
    summary = (f"Stale (last success older than {STALE_FACTOR} x its schedule): {', '.join(stale)}" if stale
               else "Every scheduled source succeeded within twice its schedule.")
    generated = data["generated_at"].isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Pipeline report {html.escape(generated)}</title>"
        "<style>body{font-family:sans-serif;margin:1em 2em} .chart{margin-bottom:1em}</style>"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
        f"<h1>Pipeline report</h1><p>Dataset {html.escape(data['warehouse_dataset'])}, last {data['days']} days, "
        f"generated {html.escape(generated)}. {len(data['runs'])} runs.</p>"
        f"<p id=\"freshness-summary\">{html.escape(summary)}</p>"
        + "\n".join(sections) + "</body></html>\n")


def write_html(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_html(data), encoding="utf-8")


class StaleSources(Exception):
    """`check` found sources whose last success is older than twice their schedule."""


def check(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Each scheduled source's freshness, printed; raises StaleSources naming the stale ones."""
    rows = freshness(warehouse)
    for row in rows:
        print(f"  {row['source']:<24} {'STALE' if row['stale'] else 'ok':<5} {_age(row)} "
              f"(schedule gap {row['schedule_gap_hours']:.1f} h)")
    stale = [r for r in rows if r["stale"]]
    if stale:
        raise StaleSources("stale: " + ", ".join(
            f"{r['source']} ({_age(r)}, limit {STALE_FACTOR * r['schedule_gap_hours']:.1f} h)" for r in stale))
    return rows


def _age(row: dict[str, Any]) -> str:
    return "never succeeded" if row["age_hours"] is None else f"last success {row['age_hours']:.1f} h ago"
