"""`report --json`, `report --html` (opened in a real headless Chromium) and `check`, as processes on the
sandbox company's warehouse."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from scripts.run_history import schedule_gaps
from tests.conftest import _missing
from tests.scripts.test_run_local import ROOT, run_local
from warehouse import DuckDBWarehouse

CHARTS = ("runs", "rows_per_day", "freshness", "match_rates", "rejects", "unmatched_domains")
# The sandbox run rejects nothing: its rejects chart is drawn with empty axes.
EMPTY_CHARTS = {"rejects"}
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync")


def chromium() -> str:
    """The Chromium binary; skipped without one (failed under CI=true) saying what to install."""
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    if found is None:
        _missing("Chromium is not installed: `apt-get install -y chromium` (.ci/run installs it on CI)")
    return found


def test_report_json_for_scripts(sandbox_company):
    """--json: every run of the sandbox run with its status and times, rows per day per table, freshness."""
    done = run_local(sandbox_company, "report", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {r["source"] for r in report["runs"]} >= {"salesforce", "gmail", "dialpad", "hubspot", "entity_resolution",
                                                    "account_recommendations"}
    assert all(r["status"] == "success" and r["started_at"] and r["ended_at"] for r in report["runs"])
    loaded = {r["table"]: r["rows"] for r in report["rows_loaded_per_day"]}
    assert loaded["sf_contacts"] == 2000 and loaded["dialpad_calls"] == 200
    assert not {"etl_runs", "sync_state", "stream_leases", "ref_free_email_domains"} & set(loaded)  # bookkeeping
    assert {r["source"] for r in report["streams"]} == set(schedule_gaps())
    streams = {(r["source"], r["stream"]) for r in report["streams"]}
    assert {("salesforce", "Contact"), ("dialpad", "calls")} <= streams and len(streams) > len(schedule_gaps())
    assert not any(r["stale"] or r["failed"] for r in report["streams"])
    assert report["headline"].startswith(f"All {len(streams)} streams healthy")
    assert 0 < report["match_rate_per_source"]["gmail"]["share"] <= 1
    assert report["match_rates"] and report["top_unmatched_domains"]
    assert report["rows_per_table"]["sf_accounts"] == 50


def test_report_html_renders_its_charts_in_a_browser(sandbox_company, tmp_path):
    """The page, opened offline in headless Chromium, draws every chart (plotly's SVG with its traces) and a
    screenshot of it is taken."""
    browser = chromium()
    page = tmp_path / "report.html"
    done = run_local(sandbox_company, "report", "--html", str(page))
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert not re.search(r"<script[^>]+src=", text), "the page must not load scripts from anywhere"
    profile = tmp_path / "profile"
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000",
              "--window-size=1280,2600"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for name in CHARTS:
        chart = re.search(rf'<div id="chart-{name}".*?(?=<section|</body>)', dom.stdout, re.S)
        assert chart, f"chart {name} missing from the rendered page"
        assert 'class="main-svg"' in chart.group(0), f"chart {name} was not drawn"
        if name not in EMPTY_CHARTS:
            assert re.search(r'class="(point|js-line)', chart.group(0)), f"chart {name} has no bars, markers or lines"
    shot = tmp_path / "report.png"
    taken = subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert taken.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", taken.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a page of charts, not a blank one


def test_check_names_a_stale_stream(sandbox_company, tmp_path):
    """`check` exits 0 after a fresh run; once Dialpad's last success is older than twice its schedule it exits 1
    naming dialpad's stream (and only it)."""
    fresh = run_local(sandbox_company, "check")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    copy = tmp_path / "wh.duckdb"
    shutil.copy(sandbox_company / "wh.duckdb", copy)
    wh = DuckDBWarehouse(copy)
    wh.execute("UPDATE sales_intelligence.etl_runs SET ended_at = @old WHERE source = 'dialpad'",
               {"old": datetime.now(timezone.utc) - timedelta(days=3)})
    wh.close()
    (tmp_path / "sandbox_now").write_text((sandbox_company / "sandbox_now").read_text())
    stale = run_local(tmp_path, "check")
    assert stale.returncode == 1
    assert stale.stderr.startswith("error: 1 of ") and "1 stale (dialpad/calls)" in stale.stderr
    assert "gmail" not in stale.stderr
    assert re.search(r"dialpad/calls +STALE .*last success 72\.0 h ago \(limit 48\.0 h\)", stale.stdout)


@pytest.mark.emulator
@pytest.mark.parametrize("which", ["duckdb", "bigquery"])
def test_report_queries_run_on_both_warehouses(which, request):
    """The report's SQL runs on DuckDB and BigQuery alike; an empty warehouse is every source stale and a page
    of empty charts."""
    from scripts.run_report import report_data, to_html

    wh = request.getfixturevalue("warehouse" if which == "duckdb" else "bigquery_warehouse")
    data = report_data(wh)
    assert data["runs"] == [] and all(r["stale"] and r["last_success"] is None for r in data["streams"])
    page = to_html(data)
    assert all(f'id="chart-{name}"' in page for name in CHARTS)
    assert "No run in the last 30 days." in page and "No rows were loaded in the last 30 days." in page


@pytest.mark.emulator
@pytest.mark.parametrize("which", ["duckdb", "bigquery"])
def test_push_runs_are_counted_with_their_last_failure(which, request, capsys):
    """Push runs (push_runs, folded or still in its fresh tier) per source in the report's data, its page and the
    text report: counts, failures, the last failure's error."""
    from datetime import datetime, timedelta, timezone

    from scripts.run_history import print_push_runs, push_runs
    from scripts.run_report import report_data, to_html
    from warehouse.fresh import ensure_fresh, fresh_rows

    wh = request.getfixturevalue("warehouse" if which == "duckdb" else "bigquery_warehouse")
    ensure_fresh(wh, "push_runs", {})  # the emulator's warehouse is made without the fresh tier (seconds a table)
    now = datetime.now(timezone.utc)

    def run(run_id, status, minutes, error=None):
        return {"run_id": run_id, "source": "gmail", "stream": "alex@ourcompany.example", "sync_type": "incremental",
                "trigger": "queue-push", "status": status, "started_at": now - timedelta(minutes=minutes),
                "updated_at": now, "error_type": error and "HttpError", "error_message": error}

    wh.merge("push_runs", [run("r1", "success", 30), run("r2", "failed", 20, "503 backend error")])
    wh.append("push_runs_fresh", fresh_rows([run("r3", "success", 1)], 1), batch_id="fresh1")
    (gmail,) = report_data(wh)["push_runs"]
    assert (gmail["runs"], gmail["failed"]) == (3, 1) and gmail["last_failure"] == "HttpError 503 backend error"
    assert 'id="push-runs"' in to_html(report_data(wh))
    print_push_runs(push_runs(wh))
    assert "gmail" in capsys.readouterr().out


@pytest.fixture(scope="module")
def failed_dialpad(sandbox_company, tmp_path_factory):
    """A copy of the sandbox company's warehouse whose latest Dialpad run failed for real: its key was revoked."""
    from sandbox.dialpad import DialpadSandbox
    from tests.scripts.test_run_local import local_env

    copy = tmp_path_factory.mktemp("failed")
    shutil.copy(sandbox_company / "wh.duckdb", copy / "wh.duckdb")
    (copy / "sandbox_now").write_text((sandbox_company / "sandbox_now").read_text())
    with DialpadSandbox(10) as sandbox:
        sandbox.state.api_key = "rotated-by-the-admin"
        env = {**local_env(copy), "DIALPAD_BASE_URL": sandbox.url, "DIALPAD_API_KEY": "the-old-key-0001"}
        failed = subprocess.run([sys.executable, "-m", "scripts.run_local", "sync", "dialpad"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
    assert failed.returncode == 1 and "dialpad failed" in failed.stderr
    return copy


class TestAFailureWherePeopleLook:
    def test_check_names_the_failed_stream(self, failed_dialpad):
        """`check` exits 1 and names dialpad/calls as failed, with its error, though its last success is recent."""
        done = run_local(failed_dialpad, "check")
        assert done.returncode == 1 and "1 failed (dialpad/calls)" in done.stderr
        assert re.search(r"dialpad/calls +FAILED +latest failed .*HTTPError: 401", done.stdout), done.stdout

    def test_runs_lists_it_and_show_prints_it(self, failed_dialpad):
        """`runs --status failed` lists the failed run; `show` prints its whole record with the error."""
        listed = run_local(failed_dialpad, "runs", "--status", "failed", "--since", "1h")
        assert listed.returncode == 0, listed.stderr
        (line,) = listed.stdout.splitlines()
        run_id = line.split()[0]
        assert run_id.startswith("dialpad-") and " calls " in line and "HTTPError: 401" in line
        shown = run_local(failed_dialpad, "show", run_id)
        assert shown.returncode == 0, shown.stderr
        assert re.search(r"^status +failed$", shown.stdout, re.M) and "401 Client Error" in shown.stdout
        assert "rejected records (0): none" in shown.stdout and '"warehouse_jobs"' in shown.stdout
        missing = run_local(failed_dialpad, "show", "no-such-run")
        assert missing.returncode == 1 and "no run 'no-such-run'" in missing.stderr

    def test_the_page_says_so_in_its_headline_in_a_browser(self, failed_dialpad, tmp_path):
        """The page's headline, read from headless Chromium's DOM, names the failed stream; its row in the streams
        table is marked failed with the error; a screenshot is taken."""
        browser = chromium()
        page = tmp_path / "report.html"
        assert run_local(failed_dialpad, "report", "--html", str(page)).returncode == 0
        common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
                  "--window-size=1280,2600"]
        dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
        assert dom.returncode == 0, dom.stderr[-2000:]
        headline = re.search(r'<p id="headline" class="bad">(.*?)</p>', dom.stdout)
        assert headline and "1 failed (dialpad/calls)" in headline.group(1)
        row = re.search(r'<tr class="failed"><td>dialpad/calls</td>.*?</tr>', dom.stdout)
        assert row and "HTTPError: 401" in row.group(0)
        shot = tmp_path / "report.png"
        taken = subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True,
                               timeout=180)
        assert taken.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", taken.stderr[-2000:]


@pytest.mark.parametrize("command", [["report", "--json", "--days", "-5"], ["schedule", "--minutes", "0"],
                                     ["runs", "--limit", "-1"], ["runs", "--since", "yesterday-ish"]])
def test_a_period_or_count_that_is_not_positive_is_refused(sandbox_company, command):
    """`report --days -5`, `schedule --minutes 0`, `runs --limit -1` or an unreadable `--since` are usage errors
    naming the value, not an empty answer."""
    done = run_local(sandbox_company, *command)
    assert done.returncode == 2 and command[-1] in done.stderr, done.stderr


def test_which_streams_are_judged(warehouse):
    """A failure before any stream started shows only while it is the source's latest run; an mbox import is never
    judged; a stream that stopped running long ago (taken out of the configuration) is left out; a configured
    mailbox that never ran is stale; a source with nothing run within its limit is one stale row."""
    from pipeline.etl_runs import RunRecord
    from scripts.run_history import stream_health

    now = datetime.now(timezone.utc)

    def ran(source, stream, status, hours_ago):
        started = now - timedelta(hours=hours_ago)
        record = RunRecord(run_id=f"{source}-{stream}-{hours_ago}", source=source, stream=stream, sync_type="full",
                           trigger="test", started_at=started, status=status, ended_at=started + timedelta(minutes=1))
        warehouse.merge("etl_runs", [record.row()])

    ran("dialpad", None, "failed", 3)  # a missing secret, since fixed
    ran("dialpad", "calls", "success", 1)
    ran("gmail", None, "failed", 0.5)  # the key was revoked: nothing started since
    ran("gmail", "a@x.com", "success", 1)
    ran("gmail", "mbox:old@x.com", "success", 200)
    ran("salesforce", "Account", "success", 1)
    ran("salesforce", "Retired__c", "success", 24 * 20)
    health = {(h["source"], h["stream"]): h for h in stream_health(warehouse, {"gmail": ["a@x.com", "new@x.com"]},
                                                                     now=now)}
    assert ("dialpad", None) not in health and not health[("dialpad", "calls")]["failed"]
    assert health[("gmail", None)]["failed"] and health[("gmail", "new@x.com")]["stale"]
    assert ("gmail", "mbox:old@x.com") not in health and ("salesforce", "Retired__c") not in health
    assert health[("hubspot", None)]["stale"] and health[("hubspot", None)]["status"] is None
