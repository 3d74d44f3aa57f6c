"""Fixtures shared by the whole suite: isolated settings, a DuckDB warehouse, the Pub/Sub emulator."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from config.settings import Settings
from utils.warehouse import DuckDBWarehouse

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings that touch only tmp_path and never read the developer's .env."""
    return Settings(_env_file=None, gcp_project="test-project", duckdb_path=tmp_path / "warehouse.duckdb",
                    errors_file=tmp_path / "errors.jsonl", local_secrets_file=tmp_path / "secrets.json",
                    run_time_budget_seconds=60, retry_max_seconds=5, merge_batch_size=1000)


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[DuckDBWarehouse]:
    """A DuckDB warehouse in a temporary file with every table created."""
    wh = DuckDBWarehouse(settings.duckdb_path, settings.dataset)
    wh.ensure_schema()
    yield wh
    wh.close()


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Pub/Sub emulator exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"Pub/Sub emulator did not listen on 127.0.0.1:{port} within {timeout:g} s")


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """host:port of a Pub/Sub emulator started for this session (gcloud + Java)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        message = ("the Pub/Sub emulator needs the Google Cloud SDK: install gcloud and its "
                   "'pubsub-emulator' component (plus a Java runtime)")
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: these tests must run)")
        pytest.skip(message)
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"pubsub-emulator-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}", "--quiet"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, process)
        yield f"127.0.0.1:{port}"
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def pubsub_subscription(pubsub_emulator: str, settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """A fresh topic and pull subscription on the emulator; settings publish errors there."""
    from google.cloud import pubsub_v1

    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    topic_name = f"ingestion-errors-{uuid.uuid4().hex[:8]}"
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=f"projects/{settings.gcp_project}/topics/{topic_name}").name
    subscription = subscriber.create_subscription(
        name=f"projects/{settings.gcp_project}/subscriptions/{topic_name}-sub", topic=topic).name
    pubsub_settings = settings.model_copy(update={"error_sink": "pubsub", "pubsub_topic": topic_name})
    yield pubsub_settings, subscriber, subscription
    subscriber.close()



class FunctionServer:
    """A real functions-framework app for one entry point of main.py, served on a loopback port."""

    def __init__(self, target: str):
        import functions_framework
        from werkzeug.serving import make_server

        app = functions_framework.create_app(target=target, source=str(ROOT / "main.py"))
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self._thread = __import__("threading").Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def post(self, body=None, raw: bytes | None = None):
        import requests

        if raw is not None:
            return requests.post(self.url, data=raw, headers={"Content-Type": "application/json"}, timeout=600)
        return requests.post(self.url, json=body or {}, timeout=600)

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture
def runtime(settings, warehouse, monkeypatch):
    """The process-wide runtime the entry points use, pointed at this test's warehouse and settings."""
    import utils.runtime

    rt = utils.runtime.Runtime.around(settings, warehouse)
    monkeypatch.setattr(utils.runtime, "_runtime", rt)
    return rt


@pytest.fixture
def function_server():
    """Starts functions-framework apps by target name; stops them after the test."""
    servers = []

    def start(target: str) -> FunctionServer:
        server = FunctionServer(target)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
