"""The local runner as `make run` calls it: fresh processes, the real DuckDB file, real HTTP."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
import requests

from scripts.local_schedule import cron_matches, due_jobs, load_jobs
from warehouse.schemas import load_table_specs, view_sql_files

ROOT = Path(__file__).resolve().parents[2]


def local_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a laptop with no credentials, writing under tmp_path; every process of one test
    serves the same sandbox data (laid out around one SANDBOX_NOW), as one real org would."""
    anchor = tmp_path / "sandbox_now"
    if not anchor.exists():
        anchor.write_text(datetime.now(timezone.utc).isoformat())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESFORCE_", "GMAIL_", "DIALPAD_", "HUBSPOT_"))}
    env.update({"DUCKDB_PATH": str(tmp_path / "wh.duckdb"), "ERRORS_FILE": str(tmp_path / "e.jsonl"),
                "WAREHOUSE": "duckdb", "LOCAL_SECRETS_FILE": str(tmp_path / "none.json"),
                "SANDBOX_NOW": anchor.read_text()})
    return env


def ignore_sigint() -> None:
    """A child's start as a background job of a non-interactive shell (`make test &` from a script): SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_local(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.run_local", *args], cwd=ROOT, env=local_env(tmp_path),
                          capture_output=True, text=True, timeout=600)


def counts(tmp_path: Path) -> dict[str, int]:
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        return {t: con.execute(f"SELECT COUNT(*) FROM sales_intelligence.{t}").fetchone()[0]
                for t in ("sf_accounts", "sf_contacts", "sf_leads", "sf_opportunities", "sf_activities",
                          "dialpad_calls", "hubspot_sequences", "hubspot_sequence_enrollments", "gmail_messages",
                          "crm_deals", "meetings", "meeting_participants", "meeting_transcripts")}


def test_init_creates_every_table_with_its_bigquery_layout(tmp_path):
    """`init` writes the DuckDB file with every table, each commented with its partitioning and clustering."""
    result = run_local(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        comments = dict(con.execute("SELECT table_name, comment FROM duckdb_tables() "
                                    "WHERE schema_name = 'sales_intelligence'").fetchall())
    for spec in load_table_specs().values():
        assert spec.name in comments
        assert f"primary key: {', '.join(spec.primary_key)}" in comments[spec.name]
        if spec.partition_field:
            assert f"partition: {spec.partition_type}({spec.partition_field})" in comments[spec.name]
    from warehouse.fresh import pushed_tables

    fresh_tier = 2 * len(pushed_tables())  # each pushed table's <table>_fresh and <table>_live
    assert f"created {len(load_table_specs()) + len(view_sql_files()) + fresh_tier} tables/views" in result.stdout


def test_run_twice_uses_the_sandbox_and_adds_nothing_twice(tmp_path):
    """`run --sandboxes` says it uses the sandboxes, loads, resolves, reports; the README's other commands run
    without an error line; a second run adds nothing."""
    first = run_local(tmp_path, "run", "--sandboxes")
    assert first.returncode == 0, first.stderr
    assert re.search(r"salesforce Contact +success +fetched +2,000", first.stdout)
    assert "entity resolution success" in first.stdout and "rows per table:" in first.stdout
    assert "match rates by method:" in first.stdout and "dialpad  phone_exact" in first.stdout
    assert "gmail    email_exact" in first.stdout
    assert re.search(r"hubspot +deals +18 +contact matched +18", first.stdout)  # the sample drop folder, matched
    for source in ("salesforce", "gmail", "dialpad", "hubspot", "zoom", "meet"):
        assert f"{source}: using the loopback sandbox" in first.stdout
    after_first = counts(tmp_path)
    varying = {table: after_first.pop(table) for table in ("hubspot_sequence_enrollments", "meeting_participants",
                                                            "meeting_transcripts")}
    assert after_first == {"sf_accounts": 50, "sf_contacts": 2000, "sf_leads": 500, "sf_opportunities": 100,
                           "sf_activities": 1900, "dialpad_calls": 200, "hubspot_sequences": 12,
                           "gmail_messages": 300, "meetings": 80, "crm_deals": 28}
    assert all(varying.values())
    after_first.update(varying)
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        # Meeting participants matched by the same SQL as mail and calls, shown beside them in the timeline
        matched = dict(con.execute(
            "SELECT source, COUNT(*) FROM sales_intelligence.meeting_participants WHERE match_method IS NOT NULL "
            "AND match_confidence IS NOT NULL AND matched_at IS NOT NULL GROUP BY source").fetchall())
        channels = {row[0] for row in con.execute(
            "SELECT DISTINCT source FROM sales_intelligence.v_activity_timeline WHERE sf_contact_id IS NOT NULL").fetchall()}
    assert matched.get("zoom") and matched.get("meet")
    assert {"gmail", "dialpad", "zoom", "meet"} <= channels
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:  # the company's people abroad
        abroad = con.execute(
            "SELECT c.sf_contact_id, k.id FROM sales_intelligence.dialpad_calls AS c JOIN sales_intelligence.sf_contacts "
            "AS k ON c.external_number_e164 IN (k.phone_e164, k.mobile_phone_e164) "
            "WHERE NOT STARTS_WITH(c.external_number_e164, '+1')").fetchall()
    # Their CRM numbers are national forms, read in their country: the calls from them link to them.
    assert abroad and all(linked == contact for linked, contact in abroad)
    for command in readme_commands():  # every other runner command the README shows, on this warehouse
        if command != ["run", "--sandboxes"] and command[:1] != ["sync"]:
            result = run_local(tmp_path, *command)
            assert result.returncode == 0 and result.stderr == "", (command, result.stderr)
    second = run_local(tmp_path, "run", "--sandboxes")
    assert second.returncode == 0, second.stderr
    assert counts(tmp_path) == after_first


def test_serve_answers_a_manual_trigger_and_refuses_a_bad_body(tmp_path):
    """`serve` prints a curl line per function; a POST runs that sync, a malformed body gets 400."""
    process = subprocess.Popen([sys.executable, "-m", "scripts.run_local", "serve", "--port", "0", "--sandboxes"], cwd=ROOT,
                               env=local_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=ignore_sigint)
    try:
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while "serving" not in urls and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.match(r"(\w+): (http://127\.0\.0\.1:\d+/)$", line.strip())
            if match:
                urls[match.group(1)] = match.group(2)
            if line.startswith("serving"):
                urls["serving"] = ""
        assert {"salesforce_sync", "entity_resolution"} <= set(urls), process.stderr.read() if process.poll() else urls
        response = requests.post(urls["salesforce_sync"], json={"object_type": "Account"}, timeout=120)
        assert response.status_code == 200
        assert response.json()["runs"][0]["rows_loaded"] == 50
        bad = requests.post(urls["salesforce_sync"], data=b"{not json", timeout=30,
                            headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
        assert requests.post(urls["entity_resolution"], json={"sync_type": "full"}, timeout=120).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


class TestReview:
    @pytest.fixture
    def warehouse_with_a_contact(self, tmp_path):
        assert run_local(tmp_path, "init").returncode == 0
        with duckdb.connect(str(tmp_path / "wh.duckdb")) as con:
            con.execute("INSERT INTO sales_intelligence.sf_contacts (id, is_deleted, system_modstamp, ingested_at) "
                        "VALUES ('003X', false, now(), now())")
            con.execute("INSERT INTO sales_intelligence.entity_match_candidates (source_table, value_type, value, "
                        "candidate_type, candidate_id, match_method, match_confidence, reason, occurrences, status, "
                        "created_at, updated_at) VALUES ('gmail_participants', 'email', 'mateo@hotmail.com', 'contact', "
                        "'003X', 'email_exact', 0.99, 'ambiguous', 3, 'open', now(), now())")
        return tmp_path

    def test_list_then_approve_keeps_the_normalised_value(self, warehouse_with_a_contact):
        """`review list` shows the open candidate; `approve` stores the value as the matcher reads it, and the
        candidate leaves the list."""
        tmp_path = warehouse_with_a_contact
        listed = run_local(tmp_path, "review", "list")
        assert listed.returncode == 0 and "1 candidate(s) awaiting review" in listed.stdout
        assert re.search(r"email +mateo@hotmail.com +contact +003X +email_exact", listed.stdout)
        result = run_local(tmp_path, "review", "approve", "--value-type", "email", "--value", " Mateo@Hotmail.com ",
                           "--candidate-type", "contact", "--candidate-id", "003X", "--reviewer", "me")
        assert result.returncode == 0, result.stderr
        assert "for mateo@hotmail.com" in result.stdout
        with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
            rows = con.execute("SELECT value, sf_contact_id, decision, is_active, created_by "
                               "FROM sales_intelligence.manual_mappings").fetchall()
        assert rows == [("mateo@hotmail.com", "003X", "approved", True, "me")]
        assert "0 candidate(s) awaiting review" in run_local(tmp_path, "review", "list").stdout

    @pytest.mark.parametrize("value_type, value, candidate_id, message", [
        ("email", "a@b.com", "003NOPE", "no Salesforce contact with id '003NOPE' in sf_contacts"),
        ("email", "not an address", "003X", "'not an address' is not a valid email address"),
        ("phone", "12", "003X", "'12' is not a valid phone number"),
    ])
    def test_an_unknown_id_or_an_unreadable_value_is_refused(self, warehouse_with_a_contact, value_type, value,
                                                             candidate_id, message):
        """A candidate id missing from the CRM table, or a value the matcher could not read: one line, exit 1,
        nothing stored."""
        tmp_path = warehouse_with_a_contact
        result = run_local(tmp_path, "review", "reject", "--value-type", value_type, "--value", value,
                           "--candidate-type", "contact", "--candidate-id", candidate_id)
        assert result.returncode == 1 and result.stderr == f"error: {message}\n"
        with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
            assert con.execute("SELECT COUNT(*) FROM sales_intelligence.manual_mappings").fetchone() == (0,)


class TestUserErrors:
    """Each user error: one line on stderr naming the problem, a non-zero exit code, no traceback."""

    def assert_one_line(self, result, *fragments):
        assert result.returncode == 1, result.stdout
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: ")
        for fragment in fragments:
            assert fragment in result.stderr

    def test_no_credentials_and_no_sandboxes_is_an_error_not_fake_data(self, tmp_path):
        """Without credentials a sync names the secret and where it is looked for; nothing is loaded."""
        result = run_local(tmp_path, "sync", "dialpad")
        self.assert_one_line(result, "dialpad-api-key", "DIALPAD_API_KEY", "none.json", "--sandboxes")
        assert "sandbox" not in result.stdout and counts(tmp_path)["dialpad_calls"] == 0

    def test_a_key_in_dotenv_is_named_as_misplaced(self, tmp_path):
        """A secret put in .env (settings only) is named as such in the error."""
        env = {**local_env(tmp_path), "PYTHONPATH": str(ROOT)}
        (tmp_path / ".env").write_text("DIALPAD_API_KEY=x\n")
        result = subprocess.run([sys.executable, "-m", "scripts.run_local", "sync", "dialpad"],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        self.assert_one_line(result, "DIALPAD_API_KEY is in .env, which holds settings only")

    def test_salesforce_configured_in_part_names_what_is_missing(self, tmp_path):
        """Username and password without the security token: an error naming the token, even for `run`."""
        env = {**local_env(tmp_path), "SALESFORCE_USERNAME": "u@example.com", "SALESFORCE_PASSWORD": "pw"}
        for command in (["sync", "salesforce"], ["run"]):
            result = subprocess.run([sys.executable, "-m", "scripts.run_local", *command], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=120)
            self.assert_one_line(result, "partly configured", "salesforce-security-token",
                                 "SALESFORCE_SECURITY_TOKEN")
            assert "pw" not in result.stderr.replace("pwd", "")

    @pytest.mark.parametrize("endpoint", [None, "https://bigquery.googleapis.com", "http://10.0.0.5:9050"])
    def test_sandboxes_are_refused_with_a_real_bigquery(self, tmp_path, endpoint):
        """WAREHOUSE=bigquery with the sandboxes: refused unless the endpoint is a loopback emulator."""
        env = {**local_env(tmp_path), "WAREHOUSE": "bigquery", "GCP_PROJECT": "some-real-project",
               **({"BIGQUERY_API_ENDPOINT": endpoint} if endpoint else {})}
        env.pop("BIGQUERY_API_ENDPOINT", None) if endpoint is None else None
        result = subprocess.run([sys.executable, "-m", "scripts.run_local", "sync", "dialpad", "--sandboxes"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        self.assert_one_line(result, "refused with WAREHOUSE=bigquery")

    def test_bad_setting_missing_file_and_debug(self, tmp_path):
        """A bad setting and a missing file are one line each; --debug adds the traceback."""
        env = {**local_env(tmp_path), "MERGE_BATCH_SIZE": "lots"}
        result = subprocess.run([sys.executable, "-m", "scripts.run_local", "report"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        self.assert_one_line(result, "bad setting: MERGE_BATCH_SIZE")
        self.assert_one_line(run_local(tmp_path, "import-mbox", "missing.mbox", "--mailbox", "a@b.com"),
                             "no such mbox file")
        debug = run_local(tmp_path, "--debug", "import-mbox", "missing.mbox", "--mailbox", "a@b.com")
        assert debug.returncode == 1 and "Traceback" in debug.stderr

    @pytest.mark.parametrize("content, said", [(b"", "is empty"), (b"Subject: hi\n\nnot an mbox\n", "is not an mbox")])
    def test_a_file_that_is_not_an_mbox_is_refused(self, tmp_path, content, said):
        """import-mbox of an empty file or of something else is refused, not a success of 0 messages."""
        given = tmp_path / "export.mbox"
        given.write_bytes(content)
        self.assert_one_line(run_local(tmp_path, "import-mbox", str(given), "--mailbox", "a@b.com"), said)

    def test_a_busy_port_is_one_line(self, tmp_path):
        """`serve --port P` with P held by another program: one line naming the port, before anything starts."""
        import socket

        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            result = run_local(tmp_path, "serve", "--port", str(port))
        self.assert_one_line(result, f"port {port} on 127.0.0.1 is in use", "--port 0")

    def test_bigquery_without_its_project_is_refused(self, tmp_path):
        """WAREHOUSE=bigquery without GCP_PROJECT: one line naming both, instead of a made-up project."""
        env = {k: v for k, v in local_env(tmp_path).items() if k != "GCP_PROJECT"}
        result = subprocess.run([sys.executable, "-m", "scripts.run_local", "report"], cwd=ROOT,
                                env={**env, "WAREHOUSE": "bigquery"}, capture_output=True, text=True, timeout=120)
        self.assert_one_line(result, "bad setting", "WAREHOUSE=bigquery needs GCP_PROJECT")

    def test_report_never_creates_an_empty_warehouse_and_paths_are_the_project_roots(self, tmp_path):
        """`report` from another directory reads the project's files; with none there it says so, creating nothing."""
        env = {**local_env(tmp_path), "DUCKDB_PATH": f".local/absent-{tmp_path.name}.duckdb", "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-m", "scripts.run_local", "report"], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120)
        self.assert_one_line(result, f"no warehouse at {ROOT / '.local' / f'absent-{tmp_path.name}.duckdb'}")
        assert not (ROOT / ".local" / f"absent-{tmp_path.name}.duckdb").exists()
        assert not list(tmp_path.glob("**/*.duckdb"))

    def test_a_locked_warehouse_is_one_line_and_recorded_in_the_error_sink(self, tmp_path):
        """Another process holding the DuckDB file: one line naming it, and the error in the error sink."""
        assert run_local(tmp_path, "init").returncode == 0
        holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; "
                                   f"con = duckdb.connect({str(tmp_path / 'wh.duckdb')!r}); print('held', flush=True); "
                                   "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            result = run_local(tmp_path, "sync", "dialpad", "--sandboxes")
        finally:
            holder.stdin.close()
            holder.wait(30)
        self.assert_one_line(result, "is in use by another process", str(holder.pid))
        assert "in use by another process" in (tmp_path / "e.jsonl").read_text()

    def test_a_refused_api_call_is_one_line_with_the_recorded_run(self, tmp_path):
        """A 401 from the API: one line with the source, the error and the run id recorded as failed."""
        from sandbox.dialpad import DialpadSandbox

        with DialpadSandbox(10) as sandbox:
            env = {**local_env(tmp_path), "DIALPAD_API_KEY": "not-the-key", "DIALPAD_BASE_URL": sandbox.url}
            result = subprocess.run([sys.executable, "-m", "scripts.run_local", "sync", "dialpad"], cwd=ROOT,
                                    env=env, capture_output=True, text=True, timeout=120)
        self.assert_one_line(result, "dialpad failed", "401", "recorded in etl_runs")
        assert "not-the-key" not in result.stderr
        run_id = re.search(r"run (dialpad-\S+),", result.stderr).group(1)
        with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
            assert con.execute("SELECT status FROM sales_intelligence.etl_runs WHERE run_id = ?",
                               [run_id]).fetchall() == [("failed",)]

    def test_log_level_is_honoured(self, tmp_path):
        """LOG_LEVEL=INFO adds the JSON log lines to stderr; without it the runner prints its own lines only."""
        quiet = run_local(tmp_path, "resolve")
        assert quiet.returncode == 0 and quiet.stderr == ""
        env = {**local_env(tmp_path), "LOG_LEVEL": "INFO"}
        loud = subprocess.run([sys.executable, "-m", "scripts.run_local", "resolve"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert loud.returncode == 0 and '"message": "entity resolution finished"' in loud.stderr


def readme_commands() -> list[list[str]]:
    """The runner commands of the README's code blocks that finish on their own here ([--full] both ways)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for line in re.findall(r"^\.venv/bin/python -m scripts\.run_local (.+?)(?:\s+#.*)?$", text, re.M):
        words = shlex.split(line.replace("\\", ""))  # a quoted SQL statement is one word
        if words[0] in ("serve", "schedule", "import-mbox", "import", "show") or words[:2] == ["review", "approve"]:
            continue  # long-running, or needing a file or a record of the reader's own: tested on their own
        if "[--full]" in words:
            commands += [[w for w in words if w != "[--full]"], [w if w != "[--full]" else "--full" for w in words]]
        else:
            commands.append(words)
    return commands


def test_the_readme_shows_the_runner_commands(tmp_path):
    """The README's runner commands include the ones the tests run (a sync with --full: the partial-run test)."""
    commands = readme_commands()
    assert ["run", "--sandboxes"] in commands and ["review", "list"] in commands and ["report"] in commands
    assert ["sync", "salesforce", "--full", "--sandboxes"] in commands and ["resolve", "--full"] in commands


def test_a_partial_run_prints_its_reason(tmp_path):
    """A run cut at its time budget says so on its line."""
    env = {**local_env(tmp_path), "RUN_TIME_BUDGET_SECONDS": "0.000001", "SALESFORCE_BULK_THRESHOLD": "100"}
    result = subprocess.run([sys.executable, "-m", "scripts.run_local", "sync", "salesforce", "--full", "--sandboxes"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"salesforce Contact +partial .*\(time budget reached\)", result.stdout), result.stdout


def test_ctrl_c_is_one_line_and_exit_130(tmp_path):
    """Ctrl-C (SIGINT) while the runner waits: `interrupted`, exit code 130, no traceback; also when the runner
    was started with SIGINT ignored, as a background job of a script is."""
    process = subprocess.Popen([sys.executable, "-m", "scripts.run_local", "schedule", "--sandboxes"], cwd=ROOT,
                               env=local_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ignore_sigint)
    while not process.stdout.readline().startswith("schedule:"):
        pass
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130
    assert process.stderr.read() == "interrupted\n"


def test_a_sync_on_a_terminal_shows_rows_and_rows_per_second(tmp_path):
    """On a terminal (a pseudo-terminal here) each stream shows its rows merged and its rate as it loads;
    piped, the output stays the runner's lines."""
    import pty

    primary, secondary = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "scripts.run_local", "sync", "salesforce", "--sandboxes"],
                               cwd=ROOT, env=local_env(tmp_path), stdout=subprocess.PIPE, stderr=secondary, text=True)
    os.close(secondary)
    stdout = process.stdout.read()
    assert process.wait(300) == 0
    terminal = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the process has gone: the terminal is closed
            break
        if not chunk:
            break
        terminal += chunk
    assert re.search(rb"salesforce Contact: 2\.00krows \[[^\]]*rows/s\]", terminal), terminal[-400:]
    assert "rows/s" not in stdout


class TestCron:
    @pytest.mark.parametrize("expression, moment, fires", [
        ("0 * * * *", "2026-11-22T05:00", True),
        ("0 * * * *", "2026-11-22T05:01", False),
        ("0 */6 * * *", "2026-11-22T12:00", True),
        ("0 */6 * * *", "2026-11-22T13:00", False),
        ("0 3 * * 0", "2026-11-22T03:00", True),   # 2026-11-22 is a Sunday
        ("0 3 * * 7", "2026-11-22T03:00", True),
        ("0 3 * * 0", "2026-11-23T03:00", False),
        ("30 */4 * * *", "2026-11-22T08:30", True),
        ("0 9-17 * * 1-5", "2026-11-23T09:00", True),
        ("0 9-17 * * 1-5", "2026-11-22T09:00", False),
        ("0 0 1,15 * *", "2026-11-15T00:00", True),
    ])
    def test_cron_matches(self, expression, moment, fires):
        """Five-field cron: lists, ranges, steps, Sunday as 0 or 7."""
        assert cron_matches(expression, datetime.fromisoformat(moment)) is fires

    def test_bad_expressions_are_refused(self):
        """Wrong field counts and out-of-range values are errors."""
        for expression in ("* * * *", "61 * * * *", "0 0 0 * *"):
            with pytest.raises(ValueError):
                cron_matches(expression, datetime(2026, 1, 1))

    def test_the_schedule_at_three_on_a_sunday(self):
        """At 03:00 on a Sunday the weekly Salesforce full sync is due (and the hourly Gmail one)."""
        _, jobs = load_jobs()
        due = {job.name for job in due_jobs(jobs, datetime(2026, 11, 22, 3, 0))}
        assert due == {"salesforce-full-sync", "gmail-incremental-sync"}


def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path):
    """`... | head -1` with far more output than a pipe holds: the reader goes away after one line and the runner
    ends without a traceback (a BrokenPipeError handled, as for `report | head`)."""
    assert run_local(tmp_path, "init").returncode == 0
    query = "SELECT x FROM UNNEST(GENERATE_ARRAY(1, 200000)) AS x"
    piped = subprocess.run(f'{sys.executable} -m scripts.run_local sql "{query}" --format csv | head -1', shell=True,
                           cwd=ROOT, env=local_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert piped.stdout == "x\n"
    assert "Traceback" not in piped.stderr and "Error" not in piped.stderr, piped.stderr


class TestCleanCancel:
    @pytest.mark.parametrize("stop, exit_code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
    def test_a_signal_mid_sync_closes_the_run_cancelled_and_frees_the_stream(self, tmp_path, stop, exit_code):
        """SIGINT or SIGTERM while a sync waits on the API (the runner started with SIGINT ignored): one line, the
        exit code of the signal, the run `cancelled` with its reason, its lease released, and a rerun at once runs."""
        from sandbox.dialpad import DialpadSandbox

        with DialpadSandbox(60) as sandbox:
            env = {**local_env(tmp_path), "DIALPAD_BASE_URL": sandbox.url, "DIALPAD_API_KEY": sandbox.state.api_key}
            hold = sandbox.server.faults.hold_next(r"^/api/v2/call$", skip=1)
            process = subprocess.Popen([sys.executable, "-m", "scripts.run_local", "sync", "dialpad"], cwd=ROOT, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       preexec_fn=ignore_sigint)
            try:
                assert hold.reached.wait(120), process.stderr.read() if process.poll() is not None else "no request"
                process.send_signal(stop)
                assert process.wait(60) == exit_code
            finally:
                hold.release()
                if process.poll() is None:
                    process.kill()
            assert "Traceback" not in process.stderr.read()
            with duckdb.connect(env["DUCKDB_PATH"], read_only=True) as con:
                cancelled = con.execute("SELECT status, error_message FROM sales_intelligence.etl_runs").fetchall()
                leases = con.execute("SELECT * FROM sales_intelligence.stream_leases").fetchall()
            assert cancelled == [("cancelled", f"stopped by {stop.name}" + (" (Ctrl-C)" if stop == signal.SIGINT else ""))]
            assert leases == []
            rerun = subprocess.run([sys.executable, "-m", "scripts.run_local", "sync", "dialpad"], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0 and re.search(r"dialpad calls +success", rerun.stdout), rerun.stdout + rerun.stderr


def test_run_goes_on_past_a_failing_source_and_fails_at_the_end(tmp_path):
    """`run` with one source's API refusing it: the other sources, entity resolution, recommendations and the
    report still run; the failure is named and the exit code is 1."""
    from sandbox.dialpad import DialpadSandbox

    with DialpadSandbox(20) as sandbox:
        sandbox.state.api_key = "revoked"
        env = {**local_env(tmp_path), "DIALPAD_BASE_URL": sandbox.url, "DIALPAD_API_KEY": "the-old-key-0001"}
        result = subprocess.run([sys.executable, "-m", "scripts.run_local", "run"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "dialpad failed: HTTPError" in result.stderr and "recorded in etl_runs" in result.stderr
    assert "entity resolution" in result.stdout and "account recommendations" in result.stdout


def test_nothing_configured_is_an_error(tmp_path):
    """`run` with no source configured at all is an error saying how to configure one, not a success."""
    result = run_local(tmp_path, "run")
    assert result.returncode == 1 and "no source is configured" in result.stderr


class TestDoctor:
    def test_every_sandbox_checks_ok(self, tmp_path):
        """`doctor --sandboxes`: each source's credentials work and its cheap read answers; exit 0."""
        result = run_local(tmp_path, "doctor", "--sandboxes")
        assert result.returncode == 0, result.stdout + result.stderr
        for line in ("salesforce  ok     login and API limits", "gmail       ok     profile of ",
                     "dialpad     ok     one page of calls", "hubspot     ok     owners",
                     "zoom        ok     token and users", "meet        ok     conferences of "):
            assert line in result.stdout, result.stdout

    def test_a_revoked_key_names_the_source_and_the_fix_and_writes_nothing(self, tmp_path):
        """Dialpad's key revoked (the others not configured): doctor names dialpad, says which secret to renew,
        exits 1, and no run is recorded."""
        from sandbox.dialpad import DialpadSandbox

        with DialpadSandbox(5) as sandbox:
            sandbox.state.api_key = "rotated-by-the-admin"
            env = {**local_env(tmp_path), "DIALPAD_BASE_URL": sandbox.url, "DIALPAD_API_KEY": "the-old-key-0001"}
            result = subprocess.run([sys.executable, "-m", "scripts.run_local", "doctor"], cwd=ROOT, env=env,
                                    capture_output=True, text=True, timeout=300)
        assert result.returncode == 1 and result.stderr == "error: doctor: dialpad failed its check (the fix is " \
                                                           "printed above)\n", result.stderr
        assert re.search(r"dialpad +FAILED +one page of calls: HTTPError: 401", result.stdout), result.stdout
        assert "fix: the credential was refused: save a current company API key in the dialpad-api-key secret " \
               "(docs/SETUP.md, 5. Dialpad)" in result.stdout
        assert "salesforce  not configured" in result.stdout and "the-old-key-0001" not in result.stdout
        with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
            assert con.execute("SELECT COUNT(*) FROM sales_intelligence.etl_runs").fetchone() == (0,)
