"""Salesforce sync end to end: functions-framework HTTP entry -> simple-salesforce -> TLS sandbox -> DuckDB."""
from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from cloud_functions.salesforce_sync.records import OBJECTS
from sandbox.company import CompanySize
from sandbox.salesforce import SalesforceSandbox
from tests.helpers import pull_messages

SIZE = CompanySize(accounts=20, contacts=300, leads=100)
TABLE_OBJECTS = {"sf_accounts": ["Account"], "sf_contacts": ["Contact"], "sf_leads": ["Lead"],
                 "sf_opportunities": ["Opportunity"], "sf_activities": ["Task", "Event", "EmailMessage"],
                 "sf_opportunity_history": ["OpportunityHistory"],
                 "sf_opportunity_field_history": ["OpportunityFieldHistory"]}
CURSOR_COLUMNS = {"SystemModstamp": "system_modstamp", "CreatedDate": "created_date"}


@pytest.fixture
def sandbox():
    with SalesforceSandbox(SIZE) as sb:
        yield sb


def point_at(runtime, sandbox, monkeypatch, **overrides):
    """Settings and secrets of the runtime aimed at the sandbox (password login)."""
    for key, value in sandbox.client_environment().items():
        if not key.startswith("SALESFORCE_LOGIN") and not key.endswith("CA_BUNDLE"):
            monkeypatch.setenv(key, value)
    runtime.settings = runtime.settings.model_copy(update={
        "salesforce_login_url": sandbox.url, "salesforce_ca_bundle": sandbox.server.cert_path,
        "salesforce_bulk_threshold": 100, "salesforce_query_batch_size": 200, "salesforce_lookback_seconds": 0,
        "salesforce_api_reserve": 0, **overrides})
    return runtime


def table_state(warehouse, table: str) -> dict[str, tuple]:
    cursor = CURSOR_COLUMNS[OBJECTS[TABLE_OBJECTS[table][0]].cursor]
    rows = warehouse.query(f"SELECT id, {cursor} AS cursor, is_deleted FROM sales_intelligence.{table}")
    assert len(rows) == len({r["id"] for r in rows}), f"duplicate ids in {table}"
    return {r["id"]: (r["cursor"], r["is_deleted"]) for r in rows}


def sandbox_state(sandbox, table: str) -> dict[str, tuple]:
    return {r["Id"]: (r[OBJECTS[name].cursor], bool(r.get("IsDeleted")))
            for name in TABLE_OBJECTS[table] for r in sandbox.state.current(name)}


def assert_tables_equal_sandbox(warehouse, sandbox):
    for table in TABLE_OBJECTS:
        assert table_state(warehouse, table) == sandbox_state(sandbox, table), table


class TestFullAndIncremental:
    def test_full_then_incremental_over_http(self, runtime, sandbox, monkeypatch, function_server):
        """Full fills all seven tables with the sandbox's counts; incremental after edits reads only what changed."""
        point_at(runtime, sandbox, monkeypatch)
        server = function_server("salesforce_sync")
        response = server.post({"sync_type": "full"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "success" and [r["stream"] for r in body["runs"]] == list(OBJECTS)
        apis = {r["stream"]: r["details"]["api"] for r in body["runs"]}
        assert apis["Contact"] == "bulk2" and apis["Account"] == "rest"
        assert_tables_equal_sandbox(runtime.warehouse, sandbox)
        assert runtime.warehouse.table_counts()["sf_contacts"] == 300

        edited = [sandbox.state.edit("Contact", i, LastName="Renamed") for i in (3, 150)]
        edited.append(sandbox.state.edit("Account", 7, Website="https://www.new-domain.io/"))
        new_lead = sandbox.state.create("Lead", LastName="Newcomer")
        sandbox.server.requests.reset()
        response = server.post({"sync_type": "incremental"})
        assert response.status_code == 200, response.text
        runs = {r["stream"]: r for r in response.json()["runs"]}
        # One queryAll per object, no paging: each reads its changes plus the one row at the inclusive bound.
        assert sandbox.server.requests.by_route["queryAll"] == len(OBJECTS)
        assert sandbox.server.requests.by_route["query_more"] == 0
        assert sandbox.server.requests.by_route["bulk_create"] == 0
        assert {name: r["rows_fetched"] for name, r in runs.items()} == {
            "Account": 2, "Contact": 3, "Lead": 2, "Opportunity": 1, "Task": 1, "Event": 1, "EmailMessage": 1,
            "OpportunityHistory": 1, "OpportunityFieldHistory": 1}
        assert_tables_equal_sandbox(runtime.warehouse, sandbox)
        got = runtime.warehouse.query("SELECT id, last_name FROM sales_intelligence.sf_contacts WHERE last_name = 'Renamed'")
        assert sorted(r["id"] for r in got) == sorted(r["Id"] for r in edited[:2])
        (account,) = runtime.warehouse.query("SELECT domain FROM sales_intelligence.sf_accounts WHERE id = @id",
                                             {"id": edited[2]["Id"]})
        assert account["domain"] == "new-domain.io"
        assert runtime.warehouse.query("SELECT last_name FROM sales_intelligence.sf_leads WHERE id = @id",
                                       {"id": new_lead["Id"]}) == [{"last_name": "Newcomer"}]

    def test_second_identical_run_changes_nothing_and_deletions_are_flagged(self, runtime, sandbox, monkeypatch):
        """Re-running changes no row; a record deleted in Salesforce ends as is_deleted, not removed."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch)
        run_salesforce_sync(SalesforceSyncRequest(sync_type="full"), runtime)
        snapshot = {t: runtime.warehouse.query(f"SELECT * EXCEPT (ingested_at) FROM sales_intelligence.{t} ORDER BY id")
                    for t in TABLE_OBJECTS}
        run_salesforce_sync(SalesforceSyncRequest(sync_type="full"), runtime)
        run_salesforce_sync(SalesforceSyncRequest(), runtime)
        for table, rows in snapshot.items():
            assert runtime.warehouse.query(
                f"SELECT * EXCEPT (ingested_at) FROM sales_intelligence.{table} ORDER BY id") == rows, table
        deleted = sandbox.state.delete("Contact", 42)
        run_salesforce_sync(SalesforceSyncRequest(object_type="Contact"), runtime)
        assert runtime.warehouse.query("SELECT is_deleted FROM sales_intelligence.sf_contacts WHERE id = @id",
                                       {"id": deleted["Id"]}) == [{"is_deleted": True}]
        assert runtime.warehouse.table_counts()["sf_contacts"] == 300

    @pytest.mark.parametrize("api, bulk_threshold", [("bulk2", 100), ("rest", 100_000)])
    def test_a_record_the_pipeline_cannot_read_is_rejected_not_lost(self, runtime, sandbox, monkeypatch, api,
                                                                     bulk_threshold):
        """A bad value (in a Bulk CSV page or a REST JSON page) puts its record in rejected_records with the
        reason; every other record is loaded."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch, salesforce_bulk_threshold=bulk_threshold)
        bad = sandbox.state.edit("Contact", 7, IsDeleted="sometimes")
        result = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact", sync_type="full"), runtime)
        assert result["runs"][0]["details"]["api"] == api
        assert result["runs"][0]["rows_rejected"] == 1 and result["rows_loaded"] == 299
        (rejected,) = runtime.warehouse.query("SELECT record_key, reason, raw_record FROM sales_intelligence.rejected_records")
        assert rejected["record_key"] == bad["Id"] and rejected["reason"] == "ValueError: not a boolean: 'sometimes'"
        assert "sometimes" in rejected["raw_record"]
        assert bad["Id"] not in {r["id"] for r in runtime.warehouse.query("SELECT id FROM sales_intelligence.sf_contacts")}

    @pytest.mark.parametrize("api, bulk_threshold, poison, reason", [
        ("bulk2", 100, "M\udcfcller", "invalid UTF-8 in LastName at byte 1: b'M\\xfcller'"),
        ("rest", 100_000, "M\ud800ller", "not Unicode text: lone surrogate '\\ud800' at offset 1 in LastName"),
        ("bulk2", 100, "Mu\x00ller", "NUL character in LastName"),
        ("rest", 100_000, "Mu\x00ller", "NUL character in LastName"),
    ])
    def test_a_poison_value_rejects_its_record_and_the_watermark_moves_on(self, runtime, sandbox, monkeypatch, api,
                                                                          bulk_threshold, poison, reason):
        """Invalid UTF-8 in a Bulk CSV cell, a lone surrogate in REST JSON, a NUL: that record is rejected with
        the reason, the rest merged, the run a success; the next run starts past it."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch, salesforce_bulk_threshold=bulk_threshold, salesforce_lookback_seconds=0)
        bad = sandbox.state.edit("Contact", 7, LastName=poison)
        time.sleep(1.05)  # incremental reads start at a whole second: the next edit in a later one
        sandbox.state.edit("Contact", 8, LastName="Later")
        result = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact", sync_type="full"), runtime)
        (run,) = result["runs"]
        assert (run["details"]["api"], run["status"], run["rows_rejected"], run["rows_loaded"]) == (api, "success", 1, 299)
        (rejected,) = runtime.warehouse.query("SELECT record_key, reason FROM sales_intelligence.rejected_records")
        assert rejected == {"record_key": bad["Id"], "reason": reason}
        again = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact"), runtime)["runs"][0]
        assert (again["status"], again["rows_rejected"], again["rows_fetched"]) == ("success", 0, 1)

    def test_bulk_unavailable_falls_back_to_rest(self, runtime, sandbox, monkeypatch):
        """When the org has no Bulk API 2.0, a large full sync pages with REST instead."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch)
        sandbox.state.bulk_enabled = False
        result = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact", sync_type="full"), runtime)
        assert result["runs"][0]["details"]["api"] == "rest" and result["rows_loaded"] == 300


class TestTimeBudget:
    def test_a_big_object_under_a_small_budget_starves_nothing_and_never_restarts(self, runtime, monkeypatch):
        """With a budget that allows one page per object per run, a full run then incremental ones: every
        object has its turn in every run until all nine are loaded; the big Contact load continues its one
        Bulk job page after page (no record read twice), and the tables end equal to the org."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        with SalesforceSandbox(CompanySize(accounts=20, contacts=2000, leads=100)) as sandbox:
            point_at(runtime, sandbox, monkeypatch, run_time_budget_seconds=0.000001, salesforce_bulk_page_records=500)
            results = []
            while not results or results[-1]["status"] != "success":
                assert len(results) < 10, [r["status"] for r in results]
                sync_type = "incremental" if results else "full"  # the scheduled runs after the weekly full one
                results.append(run_salesforce_sync(SalesforceSyncRequest(object_type="all", sync_type=sync_type),
                                                   runtime))
            assert all(len(r["runs"]) == len(OBJECTS) for r in results)  # every object had its turn in every run
            contact_runs = [run for r in results for run in r["runs"] if run["stream"] == "Contact"]
            assert len({run["details"]["bulk_job"] for run in contact_runs}) == 1  # one job, never restarted
            assert sum(run["rows_fetched"] for run in contact_runs) == 2000  # nothing read twice
            assert [run["status"] for run in contact_runs][-1] == "success"
            assert all(run["status"] == "partial" and run["stop_reason"] == "time budget reached"
                       for run in contact_runs[:-1])
            assert_tables_equal_sandbox(runtime.warehouse, sandbox)

    def test_a_stored_bulk_job_that_is_gone_is_started_again(self, runtime, sandbox, monkeypatch):
        """When Salesforce no longer has the stored job, the next run starts a new one and loads everything."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch, run_time_budget_seconds=0.000001, salesforce_bulk_page_records=100)
        first = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact", sync_type="full"), runtime)
        assert first["status"] == "partial"
        sandbox.state.jobs.pop(first["runs"][0]["details"]["bulk_job"])
        point_at(runtime, sandbox, monkeypatch, run_time_budget_seconds=60)
        second = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact"), runtime)
        assert second["status"] == "success"
        assert second["runs"][0]["details"]["bulk_job_restarted"] == first["runs"][0]["details"]["bulk_job"]
        assert table_state(runtime.warehouse, "sf_contacts") == sandbox_state(sandbox, "sf_contacts")

    def test_polling_a_slow_job_stops_at_the_budget_and_the_next_run_picks_it_up(self, runtime, sandbox, monkeypatch):
        """A job still in progress at the budget ends the run partial with the job kept, not a blocked run."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch, run_time_budget_seconds=0.000001)
        sandbox.state.bulk_in_progress_polls = 3
        first = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact", sync_type="full"), runtime)
        assert first["status"] == "partial" and first["runs"][0]["details"]["bulk_job_waiting"]
        assert runtime.warehouse.table_counts()["sf_contacts"] == 0
        point_at(runtime, sandbox, monkeypatch, run_time_budget_seconds=60)
        second = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact"), runtime)
        assert second["status"] == "success"
        assert second["runs"][0]["details"]["bulk_job"] == first["runs"][0]["details"]["bulk_job"]
        assert len(sandbox.state.jobs) == 1
        assert table_state(runtime.warehouse, "sf_contacts") == sandbox_state(sandbox, "sf_contacts")


class TestFailures:
    def test_interrupted_run_then_rerun_has_every_record_once(self, runtime, sandbox, monkeypatch, function_server):
        """A run failing after page 1 keeps what it merged; the rerun ends with every record exactly once."""
        point_at(runtime, sandbox, monkeypatch, salesforce_bulk_threshold=10_000)
        server = function_server("salesforce_sync")
        sandbox.server.faults.fail_next(1, status=400, path_pattern=r"/queryAll/01g",
                                        body=[{"errorCode": "INJECTED", "message": "injected failure"}])
        response = server.post({"object_type": "Contact", "sync_type": "full"})
        assert response.status_code == 500 and response.json()["error_type"] == "SalesforceMalformedRequest"
        assert runtime.warehouse.table_counts()["sf_contacts"] == 200
        response = server.post({"object_type": "Contact", "sync_type": "incremental"})
        assert response.status_code == 200
        assert table_state(runtime.warehouse, "sf_contacts") == sandbox_state(sandbox, "sf_contacts")
        statuses = Counter(r["status"] for r in runtime.warehouse.query("SELECT status FROM sales_intelligence.etl_runs"))
        assert statuses == {"failed": 1, "success": 1}

    def test_injected_429_and_503_are_retried(self, runtime, sandbox, monkeypatch):
        """Throttling and server errors are retried and the run succeeds."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch)
        sandbox.server.faults.fail_next(1, status=429, path_pattern=r"/queryAll")
        sandbox.server.faults.fail_next(2, status=503, path_pattern=r"/jobs/query")
        result = run_salesforce_sync(SalesforceSyncRequest(object_type="all", sync_type="full"), runtime)
        assert result["status"] == "success"
        assert sandbox.server.requests.statuses[429] == 1 and sandbox.server.requests.statuses[503] == 2
        assert_tables_equal_sandbox(runtime.warehouse, sandbox)

    def test_bodies_cut_short_by_the_network_are_retried(self, runtime, sandbox, monkeypatch):
        """A login answer, a query page, a Bulk results page cut off mid-body (the connection drops) are asked
        for again, and the run succeeds with every record once."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch)
        faults = sandbox.server.faults
        faults.truncate_next(1, r"/services/Soap/")
        faults.truncate_next(1, r"/jobs/query/750\w+/results")
        result = run_salesforce_sync(SalesforceSyncRequest(object_type="all", sync_type="full"), runtime)
        assert result["status"] == "success"
        point_at(runtime, sandbox, monkeypatch, salesforce_bulk_threshold=10_000)  # REST pages this time
        faults.truncate_next(1, r"/queryAll/01g")
        result = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact", sync_type="full"), runtime)
        assert result["status"] == "success"
        assert not faults._truncated, "every injected cut was reached"
        assert_tables_equal_sandbox(runtime.warehouse, sandbox)

    def test_exhausted_budget_ends_partial_and_the_next_run_resumes(self, runtime, sandbox, monkeypatch):
        """Under the API reserve the run stops partial with its data; with budget again it completes."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch, salesforce_bulk_threshold=10_000, salesforce_api_reserve=50)
        sandbox.state.daily_limit = 51  # login is free; count and first page leave 49 < 50: stop before page 2
        first = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact"), runtime)
        assert first["status"] == "partial"
        assert "API budget low" in first["runs"][0]["stop_reason"]
        loaded = runtime.warehouse.table_counts()["sf_contacts"]
        assert 0 < loaded < 300
        (run,) = runtime.warehouse.query("SELECT status, details FROM sales_intelligence.etl_runs")
        assert run["status"] == "partial" and run["details"]["api_usage"]["limit"] == 51
        sandbox.state.daily_limit = 10_000
        second = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact"), runtime)
        assert second["status"] == "success"
        assert table_state(runtime.warehouse, "sf_contacts") == sandbox_state(sandbox, "sf_contacts")

    def test_request_limit_exceeded_ends_partial(self, runtime, sandbox, monkeypatch):
        """REQUEST_LIMIT_EXCEEDED from Salesforce stops the run cleanly instead of failing it."""
        from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync

        point_at(runtime, sandbox, monkeypatch, salesforce_bulk_threshold=10_000)
        sandbox.state.daily_limit = 2
        result = run_salesforce_sync(SalesforceSyncRequest(object_type="Contact"), runtime)
        assert result["status"] == "partial"
        assert "REQUEST_LIMIT_EXCEEDED" in result["runs"][0]["stop_reason"]

    @pytest.mark.emulator
    def test_401_fails_fast_publishes_and_marks_failed(self, runtime, sandbox, monkeypatch, pubsub_subscription,
                                                       function_server):
        """A rejected session is not retried: the run fails, Pub/Sub gets the error, etl_runs says failed."""
        settings, subscriber, subscription = pubsub_subscription
        runtime.publisher = type(runtime.publisher)(settings)
        point_at(runtime, sandbox, monkeypatch, salesforce_instance_url=sandbox.url)
        for key in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
            monkeypatch.delenv(key)
        monkeypatch.setenv("SALESFORCE_SESSION_ID", "00D!not-a-valid-session")
        response = function_server("salesforce_sync").post({"object_type": "Account"})
        assert response.status_code == 500 and response.json()["error_type"] == "SalesforceExpiredSession"
        assert sandbox.server.requests.statuses[401] == 1
        (message,) = pull_messages(subscriber, subscription)
        body = json.loads(message.data)
        assert body["source"] == "salesforce" and body["error_type"] == "SalesforceExpiredSession"
        assert "not-a-valid-session" not in message.data.decode()
        (run,) = runtime.warehouse.query("SELECT status, error_type FROM sales_intelligence.etl_runs")
        assert run == {"status": "failed", "error_type": "SalesforceExpiredSession"}


class TestAuthentication:
    @pytest.mark.parametrize("method", ["password", "refresh_token", "session"])
    def test_each_login_method_reads_data(self, runtime, sandbox, monkeypatch, method):
        """Username+password+token, OAuth refresh token, and session id + instance URL all work."""
        from cloud_functions.salesforce_sync.auth import SalesforceCredentials
        from cloud_functions.salesforce_sync.client import SalesforceClient

        point_at(runtime, sandbox, monkeypatch)
        creds = sandbox.state.credentials
        if method != "password":
            for key in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN"):
                monkeypatch.delenv(key)
        if method == "refresh_token":
            monkeypatch.setenv("SALESFORCE_REFRESH_TOKEN", creds["refresh_token"])
            monkeypatch.setenv("SALESFORCE_CLIENT_ID", creds["client_id"])
            monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", creds["client_secret"])
        if method == "session":
            sandbox.state.sessions.add("00D!preissued")
            monkeypatch.setenv("SALESFORCE_SESSION_ID", "00D!preissued")
            runtime.settings = runtime.settings.model_copy(update={"salesforce_instance_url": sandbox.url})
        from config.secrets import SecretStore

        credentials = SalesforceCredentials.from_secrets(SecretStore(runtime.settings), runtime.settings)
        assert credentials.method == method
        assert SalesforceClient(credentials, runtime.settings).count("Account") == 20

    def test_wrong_password_fails_with_a_clear_error(self, runtime, sandbox, monkeypatch):
        """A bad password is an authentication failure that does not echo the password."""
        from simple_salesforce.exceptions import SalesforceAuthenticationFailed

        from cloud_functions.salesforce_sync.auth import SalesforceCredentials
        from cloud_functions.salesforce_sync.client import SalesforceClient

        point_at(runtime, sandbox, monkeypatch)
        credentials = SalesforceCredentials("password", username="sync@sandbox.example", password="wrong-pass-123",
                                            security_token="tok")
        with pytest.raises(SalesforceAuthenticationFailed) as error:
            SalesforceClient(credentials, runtime.settings).count("Account")
        assert "INVALID_LOGIN" in str(error.value) and "wrong-pass-123" not in str(error.value)


class TestValidation:
    @pytest.mark.parametrize("body", [{"object_type": "Banana"}, {"sync_type": "weekly"}, {"objects": "all"}])
    def test_bad_request_is_400(self, runtime, function_server, body):
        """Unknown objects, sync types and fields are refused before any run starts."""
        response = function_server("salesforce_sync").post(body)
        assert response.status_code == 400 and response.json()["error"]
        assert runtime.warehouse.table_counts()["etl_runs"] == 0


class TestTransforms:
    @pytest.mark.parametrize("record, expected", [
        ({"Id": "00Q1", "SystemModstamp": "2024-05-01T10:00:00.000+0000", "IsDeleted": "false",
          "Email": ' "Ann Lee" <Ann.Lee@Example.COM> ', "Phone": "(415) 555-0123 x9", "MobilePhone": "anonymous",
          "IsConverted": "true", "ConvertedDate": "2024-05-02", "ConvertedContactId": "0031"},
         {"email": "ann.lee@example.com", "domain": "example.com", "phone_e164": "+14155550123",
          "phone_extension": "9", "mobile_phone_e164": None, "mobile_phone": "anonymous", "is_converted": True,
          "converted_contact_id": "0031"}),
        ({"Id": "00Q2", "SystemModstamp": "2024-05-01T10:00:00.000+0000", "IsDeleted": True, "Email": None,
          "Phone": "", "IsConverted": False},
         {"email": None, "email_raw": None, "phone": None, "phone_e164": None, "is_deleted": True}),
    ])
    def test_lead_rows_from_json_and_csv_values(self, record, expected):
        """JSON and CSV-shaped values give the same typed, normalised row."""
        row = OBJECTS["Lead"].to_row(record, "US")
        assert {k: row[k] for k in expected} == expected

    @pytest.mark.parametrize("record, reason", [
        ({"SystemModstamp": "2024-05-01T10:00:00.000+0000"}, "missing Id"),
        ({"Id": "003X"}, "missing SystemModstamp"),
    ])
    def test_records_without_key_or_cursor_are_rejected(self, record, reason):
        """A record missing its key or cursor is rejected with the reason."""
        from pipeline.runner import RejectedRecord

        with pytest.raises(RejectedRecord, match=reason):
            OBJECTS["Contact"].to_row(record, "US")

    def test_email_message_addresses(self):
        """EmailMessage To and Cc lists become one normalised list."""
        row = OBJECTS["EmailMessage"].to_row({
            "Id": "02s1", "SystemModstamp": "2024-05-01T10:00:00Z", "FromAddress": "Bob <BOB@x.com>",
            "ToAddress": "a@y.com; B@Y.com", "CcAddress": "a@y.com, c@z.org"}, "US")
        assert row["from_email"] == "bob@x.com" and row["to_emails"] == ["a@y.com", "b@y.com", "c@z.org"]
        assert row["activity_type"] == "EmailMessage"


class TestPages:
    def test_csv_and_json_pages_of_the_fake_company_give_the_same_true_rows(self):
        """A Bulk CSV page and a REST JSON page of the same contacts give the same rows, and the normalised
        emails and phones are the company's true ones."""
        import csv
        import io

        from sandbox.company import FakeCompany
        from sandbox.salesforce import _csv_value, _json_fields
        from transform.columns import read_csv

        company = FakeCompany(size=CompanySize(accounts=30, contacts=400))
        contact = OBJECTS["Contact"]
        # Account.BillingCountry as the sandbox serves it: a contact abroad without MailingCountry needs it.
        people = [{**p, "Account.BillingCountry": company.account(p["account_index"])["BillingCountry"]}
                  for p in map(company.contact, range(400))]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(contact.fields)
        writer.writerows([_csv_value(p.get(f)) for f in contact.fields] for p in people)
        from_csv, rejected_csv = contact.transform(read_csv(text.getvalue().encode()), "US")
        from_json, rejected_json = contact.transform([_json_fields(p, contact.fields, "59.0") for p in people], "US")
        assert rejected_csv == rejected_json == []
        assert from_csv.to_pylist() == from_json.to_pylist()
        rows = {r["id"]: r for r in from_csv.to_pylist()}
        for person in people:
            row = rows[person["Id"]]
            assert row["email"] == (person["true_email"] if person["Email"] else None), person["Email"]
            assert row["phone_e164"] == (person["true_phone_e164"] if person["Phone"] else None), person["Phone"]
            assert row["mobile_phone_e164"] == (person["true_mobile_e164"] if person["MobilePhone"] else None)
        assert from_csv.to_pylist()[0] == contact.to_row(people[0], "US")

    def test_bad_records_of_a_page_are_rejected_and_the_rest_kept(self):
        """Each unconvertible record comes back with its reason; the page's other rows are kept."""
        good = {"Id": "003A", "SystemModstamp": "2024-05-01T10:00:00.000+0000", "IsDeleted": "false"}
        page = [good, {**good, "Id": None}, {**good, "Id": "003B", "IsDeleted": "maybe"},
                {**good, "Id": "003C", "CreatedDate": "1800-01-01T00:00:00Z"}, {**good, "Id": "003D", "SystemModstamp": ""}]
        rows, rejected = OBJECTS["Contact"].transform(page, "US")
        assert [r["id"] for r in rows.to_pylist()] == ["003A"]
        reasons = {record.get("Id"): reason for record, reason in rejected}
        assert reasons == {None: "missing Id", "003B": "ValueError: not a boolean: 'maybe'",
                           "003C": "ValueError: impossible date: '1800-01-01T00:00:00Z'",
                           "003D": "missing SystemModstamp"}
