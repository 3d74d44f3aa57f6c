"""What happened, for people and scripts: `report --json` and `report --html FILE` (`check` is scripts.run_history).

Every figure comes from the warehouse in BigQuery SQL (etl_runs, rejected_records and the views), so it is the
same on DuckDB and BigQuery. The page is one self-contained HTML file: plotly's JavaScript is inlined, nothing is
fetched to view it.
"""
from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from scripts.run_history import STALE_FACTOR, dead_letters, headline, name, push_runs, stream_health
from warehouse import Warehouse

STATUS_COLOURS = {"success": "#2e7d32", "partial": "#f9a825", "failed": "#c62828", "abandoned": "#6a1b9a",
                  "cancelled": "#8d6e63", "skipped": "#9e9e9e", "running": "#1565c0"}
# Tables that record the pipeline's own work or reference data, not what a source brought: left out of volumes.
BOOKKEEPING_TABLES = frozenset({"etl_runs", "stream_leases", "sync_state", "gmail_sync_state", "rejected_records",
                                "sf_custom_fields", "ref_free_email_domains", "entity_match_candidates",
                                "manual_mappings", "push_runs"})
# Match methods that are no match.
UNMATCHED = frozenset({"unmatched", "not_yet_resolved", "no_valid_number", "no_address"})


def report_data(warehouse: Warehouse, days: int = 30, expected: Mapping[str, Iterable[str]] | None = None
                ) -> dict[str, Any]:
    """Everything the report shows, as plain values: the headline, each stream's health, runs, rows per source
    and day (bookkeeping and reference tables left out), match rates, rejects, unmatched domains, rows per table.
    expected: streams that should exist (every configured mailbox), shown even before their first run."""
    if days <= 0:
        raise ValueError(f"days must be a positive number of days, not {days}")
    ds = warehouse.dataset
    since = {"days": days}
    runs = warehouse.query(
        f"SELECT run_id, source, stream, sync_type, status, started_at, ended_at, duration_seconds, rows_fetched, "
        f"rows_loaded, rows_rejected, error_type, error_message, details FROM `{ds}.etl_runs` "
        f"WHERE started_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @days DAY) ORDER BY started_at", since)
    loaded: dict[tuple[str, str, str], int] = {}
    for run in runs:  # each run's ledger counts the rows it merged per table
        jobs = ((run.pop("details") or {}).get("warehouse_jobs") or {}).get("jobs") or {}
        for job, entry in jobs.items():
            kind, _, table = job.partition(" ")
            # merged by the run itself, or landed for the merger (queue mode)
            if kind in ("merge", "land") and entry.get("rows") and table not in BOOKKEEPING_TABLES:
                key = (run["started_at"].date().isoformat(), run["source"], table)
                loaded[key] = loaded.get(key, 0) + entry["rows"]
    health = stream_health(warehouse, expected)
    match_rates = warehouse.query(
        f"SELECT day, source, match_method, SUM(row_count) AS row_count, SUM(share_of_day) AS share_of_day "
        f"FROM `{ds}.v_match_quality` WHERE day >= DATE_SUB(CURRENT_DATE(), INTERVAL @days DAY) "
        f"GROUP BY day, source, match_method ORDER BY day, source, match_method", since)
    return {
        "generated_at": datetime.now(timezone.utc),
        "warehouse_dataset": ds,
        "days": days,
        "headline": headline(health),
        "streams": health,
        "dead_letters": dead_letters(warehouse, days),
        "push_runs": push_runs(warehouse, 24),
        "runs": runs,
        "rows_loaded_per_day": [{"day": d, "source": s, "table": t, "rows": n} for (d, s, t), n in sorted(loaded.items())],
        "match_rate_per_source": match_rate_per_source(match_rates),
        "match_rates": match_rates,
        "rejected_by_reason": warehouse.query(
            f"SELECT source, stream, reason, COUNT(*) AS records, MAX(rejected_at) AS last_rejected_at "
            f"FROM `{ds}.rejected_records` WHERE rejected_at >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @days DAY) "
            f"GROUP BY source, stream, reason ORDER BY records DESC, source, stream, reason LIMIT 50", since),
        "top_unmatched_domains": warehouse.query(
            f"SELECT domain, addresses, occurrences, last_seen, sf_account_id, is_free_mail "
            f"FROM `{ds}.v_unmatched_domains` ORDER BY occurrences DESC, domain LIMIT 20"),
        "rows_per_table": warehouse.table_counts(),
    }


def match_rate_per_source(match_rates: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per source over the period: rows, rows matched by any method, and their share."""
    totals: dict[str, dict[str, Any]] = {}
    for row in match_rates:
        entry = totals.setdefault(row["source"], {"rows": 0, "matched": 0})
        entry["rows"] += row["row_count"]
        entry["matched"] += 0 if row["match_method"] in UNMATCHED else row["row_count"]
    for entry in totals.values():
        entry["share"] = entry["matched"] / entry["rows"] if entry["rows"] else None
    return totals


def to_json(data: Any) -> str:
    """The report as JSON (times in ISO 8601, NUMERIC as text)."""
    from transform.values import json_ready

    return json.dumps(json_ready(data), indent=2, ensure_ascii=False)


def _figures(data: dict[str, Any]) -> list[tuple[str, str, Any, str | None]]:
    """(id, title, plotly figure, empty-state text or None) of every chart of the page."""
    figures = [_runs_figure(data), _volumes_figure(data), _freshness_figure(data), _match_rates_figure(data)]
    import plotly.graph_objects as go

    rejects = go.Figure(go.Bar(
        y=[f"{r['source']} {r['stream']}: {r['reason'][:60]}" for r in data["rejected_by_reason"]],
        x=[r["records"] for r in data["rejected_by_reason"]], orientation="h", name="records",
        text=[f"{r['records']:,}" for r in data["rejected_by_reason"]], textposition="auto"))
    rejects.update_layout(xaxis_title="records", yaxis={"autorange": "reversed"})
    figures.append(("rejects", "Rejected records by reason", rejects,
                    None if data["rejected_by_reason"] else f"No record was rejected in the last {data['days']} days."))
    domains = go.Figure(go.Bar(
        y=[r["domain"] for r in data["top_unmatched_domains"]],
        x=[r["occurrences"] for r in data["top_unmatched_domains"]], orientation="h", name="occurrences",
        text=[f"{r['occurrences']:,}" for r in data["top_unmatched_domains"]], textposition="auto",
        marker_color=["#9e9e9e" if r["is_free_mail"] else "#1565c0" for r in data["top_unmatched_domains"]]))
    domains.update_layout(xaxis_title="occurrences (grey: free mail)", yaxis={"autorange": "reversed"})
    figures.append(("unmatched_domains", "Top unmatched domains (lead candidates)", domains,
                    None if data["top_unmatched_domains"] else "No unmatched domain: every address found its account."))
    return figures


def _runs_figure(data: dict[str, Any]) -> tuple[str, str, Any, str | None]:
    import plotly.graph_objects as go

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
    return ("runs", "Runs per source over time, by status", runs,
            None if data["runs"] else f"No run in the last {data['days']} days.")


def _volumes_figure(data: dict[str, Any]) -> tuple[str, str, Any, str | None]:
    """Rows merged per day, one stack per source (its tables summed; bookkeeping left out)."""
    import plotly.graph_objects as go

    per_day: dict[tuple[str, str], int] = {}
    for row in data["rows_loaded_per_day"]:
        per_day[(row["source"], row["day"])] = per_day.get((row["source"], row["day"]), 0) + row["rows"]
    figure = go.Figure()
    for source in sorted({source for source, _day in per_day}):
        days = sorted(day for s, day in per_day if s == source)
        figure.add_trace(go.Bar(x=days, y=[per_day[(source, d)] for d in days], name=source,
                                text=[f"{per_day[(source, d)]:,}" for d in days], textposition="auto"))
    figure.update_layout(barmode="stack", xaxis_title="day", yaxis_title="rows merged")
    return ("rows_per_day", "Rows loaded per day per source", figure,
            None if per_day else f"No rows were loaded in the last {data['days']} days.")


def _freshness_figure(data: dict[str, Any]) -> tuple[str, str, Any, str | None]:
    """Per stream: hours since its last success (red when failed or stale), against its limit."""
    import plotly.graph_objects as go

    streams = data["streams"]
    labels = [name(h) for h in streams]
    figure = go.Figure(go.Bar(
        x=labels, y=[h["age_hours"] if h["age_hours"] is not None else 0 for h in streams], name="hours since success",
        marker_color=["#c62828" if h["failed"] or h["stale"] else "#2e7d32" for h in streams],
        text=[("FAILED " if h["failed"] else "") + ("never" if h["age_hours"] is None else f"{h['age_hours']:.1f} h")
              for h in streams], textposition="outside"))
    figure.add_trace(go.Scatter(x=labels, y=[STALE_FACTOR * h["schedule_gap_hours"] for h in streams],
                                mode="markers", marker={"symbol": "line-ew-open", "size": 30, "color": "#000"},
                                name=f"stale after ({STALE_FACTOR} x schedule)"))
    figure.update_layout(yaxis_title="hours since last success", yaxis_type="log")
    return ("freshness", "Freshness per stream against its schedule (red: latest run failed, or stale)", figure, None)


def _match_rates_figure(data: dict[str, Any]) -> tuple[str, str, Any, str | None]:
    import plotly.graph_objects as go

    rates = go.Figure()
    for source, method in sorted({(r["source"], r["match_method"]) for r in data["match_rates"]}):
        mine = [r for r in data["match_rates"] if (r["source"], r["match_method"]) == (source, method)]
        rates.add_trace(go.Scatter(x=[r["day"] for r in mine], y=[r["share_of_day"] for r in mine],
                                   mode="lines+markers", name=f"{source} {method}"))
    rates.update_layout(xaxis_title="day", yaxis_title="share of the day's rows", yaxis_tickformat=".0%")
    return ("match_rates", "Match rates by method over time", rates,
            None if data["match_rates"] else "No mail or calls to match yet.")


def _streams_table(data: dict[str, Any]) -> str:
    """The latest run of every stream, a row each, failed and stale ones marked."""
    rows = []
    for h in data["streams"]:
        verdict = "failed" if h["failed"] else "stale" if h["stale"] else "ok"
        cells = [name(h), verdict, h["status"] or "no run",
                 "-" if h["run_age_hours"] is None else f"{h['run_age_hours']:.1f} h ago",
                 f"{h['rows_loaded'] or 0:,}", "never" if h["age_hours"] is None else f"{h['age_hours']:.1f} h ago",
                 (h["reason"] or "")[:300]]
        rows.append(f'<tr class="{verdict}">' + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{c}</th>" for c in ("stream", "verdict", "latest run", "started", "rows", "last success",
                                             "error or reason"))
    return f'<table id="streams"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _push_runs_table(data: dict[str, Any]) -> str:
    """Push runs of the last day per source (queue mode with push), when there are any."""
    summary = data.get("push_runs") or []
    if not summary:
        return ""
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
        p["source"], p["runs"], p["failed"], f"{p['last_run']:%Y-%m-%d %H:%M}", (p["last_failure"] or "")[:300]))
        + "</tr>" for p in summary)
    head = "".join(f"<th>{c}</th>" for c in ("source", "runs", "failed", "last run", "last failure"))
    return (f'<h2>Push runs, last 24 hours</h2><table id="push-runs"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _dead_letters_table(data: dict[str, Any]) -> str:
    """The work messages given up (queue mode), when there are any."""
    letters = data.get("dead_letters") or []
    if not letters:
        return ""
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
        f"{d['dead_lettered_at']:%Y-%m-%d %H:%M}", f"{d['source']}/{d['stream'] or '-'}", d["attempts"] or "?",
        " ".join(filter(None, (d["error_type"], (d["error_message"] or "")[:300]))))) + "</tr>" for d in letters)
    head = "".join(f"<th>{c}</th>" for c in ("dead-lettered", "stream", "attempts", "last error"))
    return (f'<h2>Dead-lettered work messages</h2><table id="dead-letters"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _match_summary(data: dict[str, Any]) -> str:
    rates = data["match_rate_per_source"]
    if not rates:
        return "No mail or calls to match yet."
    what = {"gmail": "mail participants", "dialpad": "calls"}
    return "Matched to Salesforce: " + "; ".join(
        f"{source} {100 * entry['share']:.1f} % of {entry['rows']:,} {what.get(source) or _matched_rows(source)}"
        for source, entry in sorted(rates.items()) if entry["share"] is not None) + "."


def _matched_rows(source: str) -> str:
    """What a registered source's matched rows are, from its first matched table (meeting_participants ->
    "meeting participants"); "rows" for anything else."""
    from config.sources import registered

    declared = registered().get(source)
    return declared.match[0].table.replace("_", " ") if declared and declared.match else "rows"


def to_html(data: dict[str, Any]) -> str:
    """One self-contained page: the headline, the streams' table, the charts (plotly.js inlined once)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    sections = []
    for chart_id, title, figure, empty in _figures(data):
        figure.update_layout(title=title, height=380, margin={"l": 60, "r": 20, "t": 50, "b": 50})
        if empty:
            figure.add_annotation(text=empty, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        chart = pio.to_html(figure, include_plotlyjs=False, full_html=False, div_id=f"chart-{chart_id}")
        note = f'<p class="empty">{html.escape(empty)}</p>' if empty else ""
        sections.append(f'<section class="chart" data-chart="{chart_id}">{note}{chart}</section>')
    healthy = not any(h["failed"] or h["stale"] for h in data["streams"])
    generated = data["generated_at"].isoformat(timespec="seconds")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Pipeline report {html.escape(generated)}</title>"
        "<style>body{font-family:sans-serif;margin:1em 2em} .chart{margin-bottom:1em} "
        "#headline{font-size:1.3em;padding:.5em;border-radius:4px} .bad{background:#ffebee;color:#b71c1c} "
        ".good{background:#e8f5e9;color:#1b5e20} table{border-collapse:collapse} td,th{padding:2px 8px;"
        "border-bottom:1px solid #ddd;text-align:left} tr.failed td{background:#ffcdd2} tr.stale td{background:#fff3e0}"
        " .empty{color:#666;font-style:italic}</style>"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
        f"<h1>Pipeline report</h1><p id=\"headline\" class=\"{'good' if healthy else 'bad'}\">"
        f"{html.escape(data['headline'])}</p>"
        f"<p>Dataset {html.escape(data['warehouse_dataset'])}, last {data['days']} days, "
        f"generated {html.escape(generated)}. {len(data['runs'])} runs.</p>"
        f"<p id=\"match-summary\">{html.escape(_match_summary(data))}</p>"
        f"<h2>Latest run of every stream</h2>{_streams_table(data)}{_dead_letters_table(data)}"
        f"{_push_runs_table(data)}"
        + "\n".join(sections) + "</body></html>\n")


def write_html(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_html(data), encoding="utf-8")
