"""Secrets: where they come from, how a missing one is reported, and that no log line carries one."""
from __future__ import annotations

import json
import logging

import pytest

from config.secrets import SecretNotFoundError, SecretStore
from observability.logger import JsonFormatter, get_logger, log_context
from observability.monitoring import ErrorPublisher
from pipeline.runner import run_sync
from tests.helpers import ListSource

TOKEN = "sk-live-4f9a2c7e1b8d"  # a made-up value the tests hunt for


class StandInSecretManager:
    """Secret Manager's client surface, answering from a dict and counting calls."""

    def __init__(self, values):
        self.values, self.calls = values, 0

    def access_secret_version(self, request):
        from google.api_core import exceptions

        self.calls += 1
        name = request["name"].split("/")[3]
        if name not in self.values:
            raise exceptions.NotFound(f"Secret [{request['name']}] not found")

        class Payload:
            data = self.values[name].encode()

        class Response:
            payload = Payload()

        return Response()


class TestSecretStore:
    def test_environment_variable_first(self, settings, monkeypatch):
        """dialpad-api-key is read from DIALPAD_API_KEY."""
        monkeypatch.setenv("DIALPAD_API_KEY", TOKEN)
        assert SecretStore(settings).get("dialpad-api-key") == TOKEN

    def test_local_file_second(self, settings, monkeypatch):
        """Without the variable, the ignored local JSON file answers."""
        monkeypatch.delenv("HUBSPOT_API_KEY", raising=False)
        settings.local_secrets_file.write_text(json.dumps({"hubspot-api-key": TOKEN}))
        assert SecretStore(settings).get("hubspot-api-key") == TOKEN

    def test_missing_secret_names_it(self, settings, monkeypatch):
        """A missing secret is an error naming the secret and where to put it."""
        monkeypatch.delenv("SALESFORCE_PASSWORD", raising=False)
        with pytest.raises(SecretNotFoundError, match="'salesforce-password'.*SALESFORCE_PASSWORD"):
            SecretStore(settings).get("salesforce-password")

    def test_broken_local_file_does_not_echo_its_content(self, settings, monkeypatch):
        """A malformed secrets file is reported by position, never by content."""
        monkeypatch.delenv("HUBSPOT_API_KEY", raising=False)
        settings.local_secrets_file.write_text('{"hubspot-api-key": "' + TOKEN + '",,}')
        with pytest.raises(SecretNotFoundError) as error:
            SecretStore(settings).get("hubspot-api-key")
        assert TOKEN not in str(error.value)

    def test_secret_manager_is_called_once_per_secret(self, settings):
        """In the cloud each secret is read once from Secret Manager and then cached."""
        client = StandInSecretManager({"dialpad-api-key": TOKEN})
        store = SecretStore(settings.model_copy(update={"secrets_backend": "secret_manager"}), lambda: client)
        assert store.get("dialpad-api-key") == store.get("dialpad-api-key") == TOKEN
        assert client.calls == 1
        with pytest.raises(SecretNotFoundError, match="'hubspot-api-key'.*test-project"):
            store.get("hubspot-api-key")


class TestNoSecretInLogs:
    def test_a_failing_run_that_used_a_secret_logs_none_of_it(self, warehouse, settings, monkeypatch, caplog):
        """Every log line, the etl_runs row and the published error of a run that leaks its token are clean."""
        monkeypatch.setenv("HUBSPOT_API_KEY", TOKEN)
        token = SecretStore(settings).get("hubspot-api-key")
        log = get_logger("tests.leaky_client")
        source = ListSource(10, page_size=5)
        inner = source.pages

        def leaky_pages(watermark):
            log.info(f"GET /crm/v3/objects?hapikey={token}", extra={"json_fields": {"authorization": f"Bearer {token}"}})
            yield from inner(watermark)
            raise PermissionError(f"401 Unauthorized for token {token}")

        job = source.job()
        job.fetch_pages = leaky_pages
        caplog.set_level(logging.DEBUG)
        with pytest.raises(PermissionError):
            run_sync(job, warehouse=warehouse, publisher=ErrorPublisher(settings), settings=settings)
        formatter = JsonFormatter()
        lines = [formatter.format(record) for record in caplog.records]
        assert any("[REDACTED]" in line for line in lines)
        assert not [line for line in lines if TOKEN in line]
        assert TOKEN not in settings.errors_file.read_text()
        (run,) = warehouse.query("SELECT error_message FROM sales_intelligence.etl_runs")
        assert TOKEN not in run["error_message"] and "[REDACTED]" in run["error_message"]

    def test_lines_carry_severity_message_and_run_context(self):
        """Each JSON line has severity, message and the run's context."""
        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
        with log_context(run_id="r1", source="gmail", stream="inbox"):
            line = json.loads(JsonFormatter().format(record))
        assert line["severity"] == "WARNING" and line["message"] == "hello world"
        assert (line["run_id"], line["source"], line["stream"]) == ("r1", "gmail", "inbox")
