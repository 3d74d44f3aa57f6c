"""Secrets saved with whitespace around them, or quoted, escaped and encoded by an error, leak nowhere."""
from __future__ import annotations

import base64
import json
import logging
import urllib.parse

import pytest
import requests

from config.secrets import SecretStore
from observability.logger import JsonFormatter, redact, register_secret
from sandbox.company import CompanySize
from sandbox.dialpad import DialpadSandbox
from sandbox.gmail import GmailSandbox
from sandbox.hubspot import HubSpotSandbox
from sandbox.salesforce import SalesforceSandbox
from tests.helpers import point_at
from warehouse.schemas import load_table_specs

# Made-up values with what breaks naive redaction: a trailing newline, quotes, a backslash, non-ASCII.
PLANTED = ["tok-9f2c41e7d3a8b6\n", 'pa"ss\'wörd-\\-7Qx2Lm9Rt4\n', "  sk_live_ünï¢ødé_5c0ffee5c0ffee\r\n"]


def leaked(secret: str, text: str) -> bool:
    """Whether text carries the secret's core in any readable form."""
    core = secret.strip()
    once = (core, repr(core)[1:-1], json.dumps(core)[1:-1], urllib.parse.quote(core, safe=""))
    return any(form in text for form in (*once, *(json.dumps(form)[1:-1] for form in once)))


def quoted_by_requests(secret: str) -> str:
    """The text requests' own InvalidHeader carries for a header holding the raw secret."""
    with pytest.raises(requests.exceptions.InvalidHeader) as error:
        requests.Request("GET", "http://127.0.0.1:9/", headers={"Authorization": f"Bearer {secret}"}).prepare()
    return str(error.value)


class TestRedaction:
    @pytest.mark.parametrize("secret", PLANTED)
    def test_every_written_form_of_a_secret_is_hidden(self, secret):
        """The raw value, the trimmed one, repr, JSON, URL encoding and a Basic header's base64 are all redacted."""
        register_secret(secret)
        core = secret.strip()
        texts = {
            "requests InvalidHeader": quoted_by_requests(secret),
            "repr": f"got {secret!r}", "json": json.dumps({"token": secret}),
            "json, unicode kept": json.dumps({"token": secret}, ensure_ascii=False),
            "url": "https://x/?apikey=" + urllib.parse.quote(core, safe=""),
            "url, plus": "q=" + urllib.parse.quote_plus(core),
            "a repr inside JSON": json.dumps({"error": f"header value {secret!r} refused"}),
        }
        for prefix in ("u:", "us:", "use:"):
            basic = base64.b64encode(f"{prefix}{core}".encode()).decode()
            texts[f"basic {prefix}"] = f"Authorization: Basic {basic}"
        for name, text in texts.items():
            cleaned = redact(text)
            assert "[REDACTED]" in cleaned, name
            assert not leaked(secret, cleaned), name
        for prefix in ("u:", "us:", "use:"):
            assert base64.b64encode(f"{prefix}{core}".encode()).decode()[8:-4] not in redact(texts[f"basic {prefix}"])

    def test_each_line_of_a_multi_line_secret_is_hidden(self):
        """A PEM key's lines are hidden one by one, as an error may quote just one of them."""
        line = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
        register_secret(f"-----BEGIN PRIVATE KEY-----\n{line}\nAnotherLineOfKeyMaterial0123456789\n")
        assert line not in redact(f"could not read key near {line[:40]}... {line}")

    def test_a_short_ordinary_word_is_not_a_secret(self):
        """Values too short to be a credential are not registered (they would redact ordinary text)."""
        register_secret("ab\n")
        assert redact("ab cd") == "ab cd"


class TestSecretStoreTrims:
    def test_whitespace_around_a_secret_is_trimmed_and_named(self, settings, monkeypatch, caplog):
        """A secret saved with echo is used without its newline; the warning names the secret, not its value."""
        monkeypatch.setenv("DIALPAD_API_KEY", PLANTED[1])
        caplog.set_level(logging.WARNING)
        assert SecretStore(settings).get("dialpad-api-key") == PLANTED[1].strip()
        (warning,) = [r for r in caplog.records if "dialpad-api-key" in r.getMessage()]
        assert "whitespace" in warning.getMessage() and not leaked(PLANTED[1], JsonFormatter().format(warning))


def _sandboxes():
    small = CompanySize(accounts=5, contacts=40, leads=10)
    return {
        "dialpad_sync": (lambda: DialpadSandbox(20), {}),
        "hubspot_sync": (lambda: HubSpotSandbox(20), {}),
        "salesforce_sync": (lambda: SalesforceSandbox(small), {"object_type": "Account"}),
        "gmail_sync": (lambda: GmailSandbox(messages_per_mailbox=5), {}),
    }


def everything_written(runtime, caplog, response) -> str:
    """The answer, every table's rows, the published errors and every log line, as one text."""
    rows = [runtime.warehouse.query(f"SELECT * FROM sales_intelligence.{table}") for table in load_table_specs()]
    errors = runtime.settings.errors_file.read_text() if runtime.settings.errors_file.exists() else ""
    logs = [JsonFormatter().format(record) for record in caplog.records]
    return "\n".join([response.text, json.dumps(rows, default=str, ensure_ascii=False), errors, *logs])


class TestNoLeakEndToEnd:
    @pytest.mark.parametrize("target", sorted(_sandboxes()))
    def test_secrets_saved_with_a_newline_work_and_appear_nowhere(self, target, runtime, monkeypatch, caplog,
                                                                  function_server):
        """Every secret of a source saved with a trailing newline: the run succeeds and no copy is anywhere."""
        make, body = _sandboxes()[target]
        caplog.set_level(logging.DEBUG)
        with make() as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            secrets = {variable: value + "\n" for variable, value in sandbox.client_environment().items()
                       if variable.upper() not in {n.upper() for n in type(runtime.settings).model_fields}}
            for variable, value in secrets.items():
                monkeypatch.setenv(variable, value)
            response = function_server(target).post(body)
        assert response.status_code == 200, response.status_code
        written = everything_written(runtime, caplog, response)
        assert not [variable for variable, value in secrets.items() if leaked(value, written)]

    @pytest.mark.parametrize("target", ["dialpad_sync", "hubspot_sync", "salesforce_sync"])
    @pytest.mark.parametrize("planted", PLANTED)
    def test_a_rejected_secret_with_quotes_and_unicode_appears_nowhere(self, target, planted, runtime, monkeypatch,
                                                                       caplog, function_server):
        """A wrong secret in every slot fails the run, and neither its answer, rows, error nor logs carry it."""
        make, body = _sandboxes()[target]
        caplog.set_level(logging.DEBUG)
        with make() as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            names = {n.upper() for n in type(runtime.settings).model_fields}
            secrets = [variable for variable in sandbox.client_environment() if variable.upper() not in names]
            for variable in secrets:
                monkeypatch.setenv(variable, planted)
            response = function_server(target).post(body)
        assert response.status_code == 500, response.status_code
        assert not leaked(planted, everything_written(runtime, caplog, response))
