"""Fixtures shared by the whole suite: isolated settings, a DuckDB warehouse, the Pub/Sub and BigQuery emulators."""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from config.settings import Settings
from scripts.emulators import free_port, pubsub_command, running
from warehouse import BigQueryWarehouse, DuckDBWarehouse

ROOT = Path(__file__).resolve().parent.parent


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


def _missing(message: str) -> None:
    """Skips a test whose emulator is not installed; under CI=true fails it instead (these tests must run)."""
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: these tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """host:port of a Pub/Sub emulator started for this session (gcloud + Java)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        _missing("the Pub/Sub emulator needs the Google Cloud SDK: install gcloud and its "
                 "'pubsub-emulator' component (plus a Java runtime)")
    port = free_port()
    with running("Pub/Sub emulator", pubsub_command(gcloud, port), port):
        yield f"127.0.0.1:{port}"


BIGQUERY_EMULATOR_PYTHON = ROOT / ".venv-bqemulator" / "bin" / "python"
EMULATOR_PROJECT = "test-project"


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[str]:
    """http://127.0.0.1:PORT of a BigQuery emulator (bqemulator, in its own venv) started for this session."""
    if not BIGQUERY_EMULATOR_PYTHON.exists():
        _missing("the BigQuery emulator is not installed: `make test` creates .venv-bqemulator from "
                 "requirements-bqemulator.txt")
    rest, grpc = free_port(), free_port()
    command = [str(BIGQUERY_EMULATOR_PYTHON), str(ROOT / "tests" / "bigquery_emulator" / "launch.py"),
               "--rest-host", "127.0.0.1", "--rest-port", str(rest), "--grpc-host", "127.0.0.1",
               "--grpc-port", str(grpc), "--project", EMULATOR_PROJECT, "--ephemeral", "--log-level", "warning"]
    with running("BigQuery emulator", command, rest):
        yield f"http://127.0.0.1:{rest}"


@pytest.fixture
def bigquery_settings(bigquery_emulator: str, settings: Settings) -> Settings:
    """Settings of a BigQuery warehouse on the emulator, in a dataset of this test's own."""
    dataset = f"t_{uuid.uuid4().hex[:10]}"
    return settings.model_copy(update={"warehouse": "bigquery", "bigquery_api_endpoint": bigquery_emulator,
                                       "gcp_project": EMULATOR_PROJECT, "dataset": dataset})


@pytest.fixture
def bigquery_warehouse(bigquery_settings: Settings) -> Iterator["BigQueryWarehouse"]:
    """A BigQuery warehouse on the emulator with every table created; its datasets deleted afterwards."""
    from warehouse import BigQueryWarehouse

    wh = BigQueryWarehouse(bigquery_settings)
    # Without the fresh tier (17 tables and views: seconds a test on the emulator); a test that needs it calls
    # wh.ensure_fresh_tier(), and the merger makes a table's own when it first appends to it.
    wh.ensure_schema(fresh_tier=False)
    yield wh
    for dataset in (wh.dataset, wh.work_dataset):
        wh.client.delete_dataset(f"{wh.project}.{dataset}", delete_contents=True, not_found_ok=True)


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
    import pipeline.runtime

    rt = pipeline.runtime.Runtime.around(settings, warehouse)
    monkeypatch.setattr(pipeline.runtime, "_runtime", rt)
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
