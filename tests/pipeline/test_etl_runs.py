"""etl_runs and stream leases through the real entry points: overlapping runs, killed runs, failures
before a run starts. Dialpad is the stream under test (a loopback sandbox whose requests a test can hold)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import requests

from observability.monitoring import ErrorPublisher
from pipeline.etl_runs import LeaseKeeper, LeaseTerms, RunRecord, claim_stream, new_run_id, release_lease, take_lease, this_holder
from pipeline.runner import LEASE_LOST, run_sync
from pipeline.runtime import Runtime
from sandbox.dialpad import DialpadSandbox
from tests.conftest import ROOT, free_port
from tests.helpers import ListSource, point_at
from warehouse import DuckDBWarehouse

DS = "sales_intelligence"
CALL_LIST = r"^/api/v2/call$"


@pytest.fixture
def sandbox():
    with DialpadSandbox(60, spacing_seconds=2400) as sb:  # a call every 40 minutes: 40 hours of calls
        yield sb


def runs(warehouse) -> list[dict]:
    return warehouse.query(f"SELECT * FROM {warehouse.dataset}.etl_runs ORDER BY started_at")


def sandbox_call_ids(sandbox) -> set[str]:
    return {str(c["call_id"]) for c in sandbox.state.calls}


def stored_call_ids(warehouse) -> set[str]:
    rows = warehouse.query(f"SELECT call_id FROM {DS}.dialpad_calls")
    assert len(rows) == len({r["call_id"] for r in rows}), "a call stored twice"
    return {r["call_id"] for r in rows}


class TestLease:
    def test_two_concurrent_runs_of_one_stream_give_one_success_and_one_skipped(self, runtime, sandbox, monkeypatch,
                                                                                 function_server):
        """While a run is inside the stream, a second POST ends at once: HTTP 200, status skipped, naming the
        holder, recorded in etl_runs; the first run then completes."""
        point_at(runtime, sandbox, monkeypatch)
        server = function_server("dialpad_sync")
        hold = sandbox.server.faults.hold_next(CALL_LIST)
        first: dict = {}
        thread = threading.Thread(target=lambda: first.update(response=server.post({"sync_type": "full", "days": 3})))
        thread.start()
        assert hold.reached.wait(30)
        second = server.post({"sync_type": "full", "days": 3})
        hold.release()
        thread.join(60)
        assert second.status_code == 200 and second.json()["status"] == "skipped"
        assert first["response"].status_code == 200 and first["response"].json()["status"] == "success"
        assert second.json()["runs"][0]["details"]["held_by"] == first["response"].json()["runs"][0]["run_id"]
        recorded = {r["run_id"]: r["status"] for r in runs(runtime.warehouse)}
        assert recorded == {first["response"].json()["runs"][0]["run_id"]: "success", second.json()["runs"][0]["run_id"]: "skipped"}
        assert runtime.warehouse.query(f"SELECT * FROM {DS}.stream_leases") == []  # released at the end

    def test_a_lease_past_its_expiry_passes_to_the_next_run(self, any_warehouse):
        """On both warehouses: a lease whose holder never released it (killed) is taken over once it has
        expired, not before; a released lease is free at once."""
        warehouse = any_warehouse
        assert take_lease(warehouse, "dialpad", "calls", "dead-run", LeaseTerms(3600, 3600)) == "dead-run"
        assert take_lease(warehouse, "dialpad", "calls", "next-run", LeaseTerms(3600, 3600)) == "dead-run"
        warehouse.execute(f"UPDATE {warehouse.dataset}.stream_leases SET expires_at = TIMESTAMP '2000-01-01 00:00:00+00' "
                          f"WHERE TRUE")
        assert take_lease(warehouse, "dialpad", "calls", "next-run", LeaseTerms(3600, 3600)) == "next-run"
        assert take_lease(warehouse, "dialpad", "other-stream", "third-run", LeaseTerms(3600, 3600)) == "third-run"
        release_lease(warehouse, "dialpad", "calls", "next-run")
        assert take_lease(warehouse, "dialpad", "calls", "fourth-run", LeaseTerms(3600, 3600)) == "fourth-run"


    def test_a_working_run_keeps_its_lease_and_a_silent_one_loses_it_within_the_lease(self, any_warehouse):
        """On both warehouses: while LeaseKeeper renews a run's lease, others are refused well past the lease's
        length; a lease nobody renews passes on once that length has passed, long before the function timeout."""
        # A renewal every second against a 3 s lease: a slow emulator statement (under a loaded CI) still lands in time.
        warehouse, terms = any_warehouse, LeaseTerms(lease_seconds=3.0, timeout_seconds=540)
        working = RunRecord(run_id="working-run", source="dialpad", stream="calls", sync_type="full", trigger="http")
        assert take_lease(warehouse, "dialpad", "calls", "working-run", terms) == "working-run"
        assert take_lease(warehouse, "dialpad", "silent", "silent-run", terms) == "silent-run"
        with LeaseKeeper(warehouse, working, terms) as keeper:
            time.sleep(2.5 * terms.lease_seconds)
            assert take_lease(warehouse, "dialpad", "calls", "next-run", terms) == "working-run"
            assert take_lease(warehouse, "dialpad", "silent", "next-run", terms) == "next-run"
        assert not keeper.lost and "lease_lost" not in working.details

    def test_a_lease_whose_process_is_gone_passes_at_once_only_on_one_machine(self, warehouse):
        """A lease held by a process of this machine that no longer exists is taken over before it expires (and
        its run closed as abandoned) when every holder is on this machine; otherwise it waits for its expiry."""
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        held = RunRecord(run_id="dead-run", source="dialpad", stream="calls", sync_type="full", trigger="http")
        warehouse.merge("etl_runs", [held.row()])
        warehouse.append("stream_leases", [{"source": "dialpad", "stream": "calls", "run_id": "dead-run",
                                            "acquired_at": held.started_at, "holder": f"{socket.gethostname()}:{dead.pid}",
                                            "expires_at": held.started_at + timedelta(hours=1)}], batch_id="lease")
        assert take_lease(warehouse, "dialpad", "calls", "cloud-run", LeaseTerms(3600, 3600)) == "dead-run"
        assert take_lease(warehouse, "dialpad", "calls", "local-run", LeaseTerms(3600, 3600, True)) == "local-run"
        (closed,) = runs(warehouse)
        assert closed["status"] == "abandoned" and f":{dead.pid})" in closed["error_message"]
        assert take_lease(warehouse, "dialpad", "calls", "third-run", LeaseTerms(3600, 3600, True)) == "local-run"

    def test_on_one_machine_a_live_holder_keeps_its_lease_past_its_expiry(self, warehouse):
        """A lease past its expiry whose holder process is alive here (renewals waiting behind a long DuckDB
        statement) stays held on one machine; elsewhere, or past the function timeout, expiry decides."""
        now = datetime.now(timezone.utc)
        warehouse.append("stream_leases", [{"source": "dialpad", "stream": "calls", "run_id": "busy-run",
                                            "acquired_at": now - timedelta(minutes=5), "holder": this_holder(),
                                            "expires_at": now - timedelta(minutes=1)}], batch_id="lease")
        assert take_lease(warehouse, "dialpad", "calls", "next-run", LeaseTerms(180, 540, True)) == "busy-run"
        assert take_lease(warehouse, "dialpad", "calls", "next-run", LeaseTerms(180, 240, True)) == "next-run"

    def test_a_run_whose_lease_was_taken_stops_partial_without_moving_the_watermark(self, warehouse, settings):
        """When another run takes the stream (this one was silent past its lease), the run's renewal notices and
        the run stops `partial` at its next page, its watermark left to the run that now holds the stream."""
        source = ListSource(40, page_size=10)
        pages = source.pages

        def taken_after_the_first_page(watermark):
            for number, page in enumerate(pages(watermark)):
                if number == 1:
                    warehouse.execute(f"UPDATE {DS}.stream_leases SET run_id = 'the-other-run' WHERE TRUE")
                    time.sleep(1.5)  # the keeper renews every 0.1 s: it finds the lease gone
                yield page

        job = source.job()
        job.fetch_pages = taken_after_the_first_page
        quick = settings.model_copy(update={"stream_lease_seconds": 0.3})
        summary = run_sync(job, warehouse=warehouse, publisher=ErrorPublisher(quick), settings=quick)
        assert summary.status == "partial" and summary.stop_reason == LEASE_LOST
        assert summary.details["lease_lost"] is True
        (state,) = warehouse.query(f"SELECT watermark FROM {DS}.sync_state")
        assert state["watermark"] == "9"  # the first page's checkpoint, nothing after the lease was lost


@pytest.fixture(params=["duckdb", "bigquery"])
def any_warehouse(request):
    """The DuckDB warehouse, then a BigQuery one on the emulator."""
    return request.getfixturevalue("warehouse" if request.param == "duckdb" else "bigquery_warehouse")


class TestAbandonedRuns:
    def test_a_run_left_running_past_the_timeout_is_closed_as_abandoned(self, any_warehouse):
        """On both warehouses: runs of the source still `running` past the function timeout become `abandoned`
        with the reason when the next run of that source claims its stream; younger ones and other sources are
        left alone."""
        warehouse = any_warehouse
        two_days_ago = datetime.now(timezone.utc) - timedelta(days=2)
        old = RunRecord(run_id="dialpad-old", source="dialpad", stream="calls", sync_type="full", trigger="http",
                        started_at=two_days_ago)
        young = RunRecord(run_id="dialpad-young", source="dialpad", stream="calls", sync_type="full",
                          trigger="http")
        other = RunRecord(run_id="hubspot-old", source="hubspot", stream="sequences", sync_type="full",
                          trigger="http", started_at=two_days_ago)
        # Older than the look-back: not scanned (the UPDATE reads only ABANDONED_LOOKBACK's partitions).
        ancient = RunRecord(run_id="dialpad-ancient", source="dialpad", stream="calls", sync_type="full",
                            trigger="http", started_at=datetime(2020, 1, 1, tzinfo=timezone.utc))
        warehouse.merge("etl_runs", [r.row() for r in (old, young, other, ancient)])
        record = RunRecord(run_id=new_run_id("dialpad"), source="dialpad", stream="other", sync_type="full",
                           trigger="http")
        assert claim_stream(warehouse, record, LeaseTerms(540, 540))
        assert record.details["abandoned_runs_closed"] == 1
        statuses = {r["run_id"]: (r["status"], r["error_message"]) for r in runs(warehouse)}
        assert statuses["dialpad-old"][0] == "abandoned" and "not renewed for 540 s" in statuses["dialpad-old"][1]
        assert statuses["dialpad-young"] == ("running", None) and statuses["hubspot-old"] == ("running", None)
        assert statuses["dialpad-ancient"] == ("running", None)

    def test_a_run_whose_lease_lapsed_unrenewed_is_abandoned_before_the_timeout(self, any_warehouse):
        """On both warehouses: a `running` run older than the lease whose lease is gone or lapsed is closed as
        abandoned; one holding a live lease is left, however old."""
        warehouse, terms = any_warehouse, LeaseTerms(lease_seconds=5, timeout_seconds=540)
        a_minute_ago = datetime.now(timezone.utc) - timedelta(minutes=1)
        silent, working = (RunRecord(run_id=f"dialpad-{name}", source="dialpad", stream=name, sync_type="full",
                                     trigger="http", started_at=a_minute_ago) for name in ("silent", "working"))
        warehouse.merge("etl_runs", [silent.row(), working.row()])
        assert take_lease(warehouse, "dialpad", "working", "dialpad-working", terms) == "dialpad-working"
        record = RunRecord(run_id=new_run_id("dialpad"), source="dialpad", stream="other", sync_type="full",
                           trigger="http")
        assert claim_stream(warehouse, record, terms)
        statuses = {r["run_id"]: (r["status"], r["error_message"]) for r in runs(warehouse)}
        assert statuses["dialpad-silent"][0] == "abandoned" and "not renewed for 5 s" in statuses["dialpad-silent"][1]
        assert statuses["dialpad-working"] == ("running", None)

    def test_kill_9_mid_run_then_rerun_leaves_no_running_row_and_loses_nothing(self, settings, sandbox, monkeypatch,
                                                                                function_server, tmp_path):
        """A functions-framework process killed with SIGKILL mid-run leaves its row `running` and its lease held;
        the next run, at once (its process is gone, on this machine), takes the lease over, closes the row as
        `abandoned` and ends with every call stored once."""
        timeout = 540.0
        environment = {**os.environ, "DUCKDB_PATH": str(settings.duckdb_path), "ERRORS_FILE": str(settings.errors_file),
                       "LOCAL_SECRETS_FILE": str(settings.local_secrets_file), "DIALPAD_BASE_URL": sandbox.url,
                       "DIALPAD_API_KEY": sandbox.state.api_key, "DIALPAD_WINDOW_HOURS": "4",
                       "FUNCTION_TIMEOUT_SECONDS": str(timeout), "GCP_PROJECT": "test-project", "LOG_LEVEL": "WARNING"}
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target", "dialpad_sync", "--source", str(ROOT / "main.py"),
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        try:
            _wait_listening(port, process)
            hold = sandbox.server.faults.hold_next(CALL_LIST, skip=4)  # 4-hour windows merged before the kill
            thread = threading.Thread(target=_post_ignoring_the_cut, args=(f"http://127.0.0.1:{port}/",), daemon=True)
            thread.start()
            assert hold.reached.wait(60)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            hold.release()

        warehouse = _open_once_released(settings)
        (killed,) = runs(warehouse)
        assert killed["status"] == "running"
        assert stored_call_ids(warehouse) and warehouse.query(f"SELECT watermark FROM {DS}.sync_state")  # progress made
        assert warehouse.query(f"SELECT run_id FROM {DS}.stream_leases") == [{"run_id": killed["run_id"]}]
        import pipeline.runtime

        rerun_settings = settings.model_copy(update={"dialpad_base_url": sandbox.url,
                                                     "function_timeout_seconds": timeout})
        monkeypatch.setattr(pipeline.runtime, "_runtime", Runtime.around(rerun_settings, warehouse))
        monkeypatch.setenv("DIALPAD_API_KEY", sandbox.state.api_key)
        response = function_server("dialpad_sync").post({"sync_type": "incremental"})
        assert response.status_code == 200 and response.json()["status"] == "success", response.text
        statuses = {r["run_id"]: r["status"] for r in runs(warehouse)}
        assert statuses == {killed["run_id"]: "abandoned", response.json()["runs"][0]["run_id"]: "success"}
        (abandoned,) = [r for r in runs(warehouse) if r["run_id"] == killed["run_id"]]
        assert "ended without recording an end (killed)" in abandoned["error_message"]
        assert stored_call_ids(warehouse) == sandbox_call_ids(sandbox)
        warehouse.close()


class TestFailureBeforeTheRun:
    def test_a_warehouse_held_by_another_process_is_a_one_line_answer_naming_it_and_recorded(self, settings, warehouse,
                                                                                           tmp_path):
        """functions-framework on a DuckDB file this test's process holds: HTTP 500 whose error names the holder's
        PID, and the error in the error sink (etl_runs is in the very file that is held)."""
        environment = {**os.environ, "DUCKDB_PATH": str(settings.duckdb_path), "ERRORS_FILE": str(settings.errors_file),
                       "LOCAL_SECRETS_FILE": str(settings.local_secrets_file), "DIALPAD_API_KEY": "k-0000000000",
                       "GCP_PROJECT": "test-project", "LOG_LEVEL": "CRITICAL"}
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target", "dialpad_sync", "--source", str(ROOT / "main.py"),
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_listening(port, process)
            answer = requests.post(f"http://127.0.0.1:{port}/", json={}, timeout=60)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        assert answer.status_code == 500 and f"PID {os.getpid()}" in answer.json()["error"], answer.text
        (published,) = [json.loads(line) for line in settings.errors_file.read_text().splitlines()]
        assert published["source"] == "dialpad" and f"PID {os.getpid()}" in published["message"]


    def test_a_missing_secret_is_a_recorded_and_published_failure(self, runtime, sandbox, function_server,
                                                                  monkeypatch):
        """No dialpad-api-key: HTTP 500 naming the secret, with a run id whose etl_runs row is `failed` with
        that reason, and the same error in the error sink; no secret value anywhere."""
        point_at(runtime, sandbox, monkeypatch)
        monkeypatch.delenv("DIALPAD_API_KEY")
        response = function_server("dialpad_sync").post({"sync_type": "incremental"})
        assert response.status_code == 500
        body = response.json()
        assert body["error_type"] == "SecretNotFoundError" and "dialpad-api-key" in body["error"]
        (row,) = runs(runtime.warehouse)
        assert (row["run_id"], row["status"], row["source"]) == (body["run_id"], "failed", "dialpad")
        assert "dialpad-api-key" in row["error_message"]
        published = [json.loads(line) for line in runtime.settings.errors_file.read_text().splitlines()]
        assert [p["run_id"] for p in published] == [body["run_id"]]
        assert Counter(p["error_type"] for p in published) == {"SecretNotFoundError": 1}


def _wait_listening(port: int, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"functions-framework exited with {process.returncode}")
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("functions-framework did not start")


def _open_once_released(settings) -> DuckDBWarehouse:
    """The warehouse file, opened once the killed server's worker processes have all exited."""
    import duckdb

    for _ in range(100):
        try:
            return DuckDBWarehouse(settings.duckdb_path, settings.dataset)
        except duckdb.IOException:
            time.sleep(0.1)
    return DuckDBWarehouse(settings.duckdb_path, settings.dataset)


def _post_ignoring_the_cut(url: str) -> None:
    try:
        requests.post(url, json={"sync_type": "full", "days": 2}, timeout=120)
    except requests.RequestException:
        pass  # the server is killed mid-request
