"""Queue mode across processes on the BigQuery emulator: a worker or the merger killed with SIGKILL mid-run loses
nothing and stores nothing twice (Pub/Sub delivers what was not acknowledged again; the MERGE absorbs it)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from pipeline.merger import Merger
from pipeline.runtime import Runtime
from pipeline.work_queue import WorkMessage, WorkQueue
from sandbox.gmail import NOT_MAIL, GmailSandbox
from scripts.fan_out import LocalFanOut, ensure_topology
from tests.helpers import point_at

pytestmark = pytest.mark.emulator
ROOT = Path(__file__).resolve().parents[2]
MAILBOXES = ["alex@ourcompany.example", "sam@ourcompany.example"]
ACK_SECONDS = 10  # what a killed process holds its messages for before Pub/Sub delivers them again


@pytest.fixture
def queue_runtime(bigquery_warehouse, bigquery_settings, pubsub_emulator, monkeypatch):
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    tag = uuid.uuid4().hex[:6]
    settings = bigquery_settings.model_copy(update={
        "dispatch": "queue", "work_topic_prefix": f"work-{tag}-", "landing_topic": f"landed-{tag}",
        "work_dead_letter_topic": f"dead-{tag}", "merge_interval_seconds": 0.5, "gmail_list_page_size": 10})
    return Runtime.around(settings, bigquery_warehouse)


def environment(settings) -> dict[str, str]:
    """The settings as the environment a deployed function would read them from."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = ",".join(value) if isinstance(value, list) else json.dumps(value) if isinstance(value, dict) else str(value)
        env[name.upper()] = text
    return env


def start(role: str, settings) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "scripts.fan_out", role, "--ack-deadline", str(ACK_SECONDS)],
                            cwd=ROOT, env=environment(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def stored(warehouse) -> list[tuple[str, str]]:
    return [(r["mailbox"], r["message_id"]) for r in warehouse.query(
        f"SELECT mailbox, message_id FROM {warehouse.dataset}.gmail_messages")]


def mail_of(sandbox) -> set[tuple[str, str]]:
    return {(address, m.id) for address, box in sandbox.state.mailboxes.items() for m in box.messages.values()
            if not set(m.labels) & set(NOT_MAIL)}


def succeeded(warehouse) -> set[str]:
    return {r["stream"] for r in warehouse.query(
        f"SELECT stream FROM {warehouse.dataset}.etl_runs WHERE status = 'success'")}


def merge_until(merger: Merger, done, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        merger.cycle()
        if done():
            return
        time.sleep(0.5)
    raise AssertionError("the fan-out did not finish in time")


class TestKilled:
    def test_a_worker_killed_mid_run_loses_and_doubles_nothing(self, queue_runtime, monkeypatch):
        """Worker process A is SIGKILLed once its first rows are merged; worker B gets its unacknowledged message
        again: every message stored exactly once, both mailboxes end in a successful run."""
        with GmailSandbox(MAILBOXES, messages_per_mailbox=40) as sandbox:
            # 1,200 units a minute: four messages a second a mailbox, so the run is still going when it is killed.
            point_at(queue_runtime, sandbox, monkeypatch, gmail_quota_units_per_minute=1200)
            settings, warehouse = queue_runtime.settings, queue_runtime.warehouse
            ensure_topology(settings, ["gmail"], ack_deadline_seconds=ACK_SECONDS)
            merger = Merger(warehouse, settings)
            first = start("worker", settings)
            try:
                WorkQueue(settings).publish([WorkMessage("gmail", mailbox, "full") for mailbox in MAILBOXES])
                merge_until(merger, lambda: len(stored(warehouse)) > 0)
                assert len(stored(warehouse)) < len(mail_of(sandbox))
            finally:
                kill(first)
            second = start("worker", settings)
            try:
                merge_until(merger, lambda: succeeded(warehouse) >= set(MAILBOXES))
                merge_until(merger, lambda: merger.cycle().messages == 0)
            finally:
                kill(second)
            rows = stored(warehouse)
            assert len(rows) == len(set(rows)) and set(rows) == mail_of(sandbox)

    def test_the_merger_killed_mid_cycle_loses_and_doubles_nothing(self, queue_runtime, monkeypatch):
        """The merger process is SIGKILLed once some rows are merged; a new merger gets the unacknowledged batches
        again: every message stored exactly once."""
        with GmailSandbox(MAILBOXES, messages_per_mailbox=40) as sandbox:
            point_at(queue_runtime, sandbox, monkeypatch, gmail_quota_units_per_minute=1200)
            settings, warehouse = queue_runtime.settings, queue_runtime.warehouse
            merger_process = start("merger", settings)
            try:
                with LocalFanOut(queue_runtime, ["gmail"], workers=2, merge=False,
                                 ack_deadline_seconds=ACK_SECONDS) as fan:
                    fan.enqueue("gmail", "full")
                    deadline = time.monotonic() + 120
                    while not stored(warehouse) and time.monotonic() < deadline:
                        time.sleep(0.2)
                    assert stored(warehouse), "the merger process merged nothing"
                    kill(merger_process)
                    assert fan.wait_until_done(timeout=240)
            finally:
                if merger_process.poll() is None:
                    kill(merger_process)
            merger = Merger(warehouse, settings)
            merge_until(merger, lambda: succeeded(warehouse) >= set(MAILBOXES) and set(stored(warehouse)) == mail_of(sandbox))
            merge_until(merger, lambda: merger.cycle().messages == 0)
            rows = stored(warehouse)
            assert len(rows) == len(set(rows)) and set(rows) == mail_of(sandbox)
