"""The shapes Salesforce sends beside the usual ones (issue #22), each against the sandbox through simple-salesforce:
Bulk jobs that fail or abort, concurrency limits, Z datetimes, malformed CSV rows, non-scalar and oversized values,
numbers written with the org's own international prefix."""
from __future__ import annotations

import json

import pytest

from cloud_functions.salesforce_sync.records import OBJECTS
from cloud_functions.salesforce_sync.sync import SalesforceSyncRequest, run_salesforce_sync
from sandbox.company import CompanySize
from sandbox.salesforce import SalesforceSandbox
from sandbox.salesforce_variety import Variety
from tests.cloud_functions.test_salesforce_sync import point_at, sandbox_state, table_state

SIZE = CompanySize(accounts=20, contacts=300, leads=100)


def contact_sync(runtime, sync_type="full"):
    return run_salesforce_sync(SalesforceSyncRequest(object_type="Contact", sync_type=sync_type), runtime)


def rejected(runtime):
    return runtime.warehouse.query("SELECT record_key, reason, raw_record FROM sales_intelligence.rejected_records")


def contact_ids(runtime):
    return {r["id"] for r in runtime.warehouse.query("SELECT id FROM sales_intelligence.sf_contacts")}


class TestBulkJobsThatEnd:
    @pytest.mark.parametrize("ends", [["Failed"], ["Aborted"]])
    def test_a_job_that_fails_once_is_started_again(self, runtime, monkeypatch, ends):
        """A Bulk job that ends Failed or Aborted is retried once with a new job; the run loads everything."""
        with SalesforceSandbox(SIZE) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            sandbox.state.variety.bulk_ends.extend(ends)
            (run,) = contact_sync(runtime)["runs"]
            assert (run["status"], run["details"]["api"], run["rows_loaded"]) == ("success", "bulk2", 300)
            assert [j["state"] for j in run["details"]["bulk_jobs_ended"]] == ends
            assert sandbox.server.requests.by_route["bulk_create"] == 2

    def test_a_job_that_fails_every_time_falls_back_to_rest_for_the_run(self, runtime, monkeypatch):
        """Failed, then Aborted again: the object is read by REST queryAll in the same run, recorded in its details;
        the run succeeds and every record, deleted ones too, is loaded."""
        with SalesforceSandbox(SIZE) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            sandbox.state.delete("Contact", 5)
            sandbox.state.variety.bulk_ends.extend(["Failed", "Aborted"])
            (run,) = contact_sync(runtime)["runs"]
            assert (run["status"], run["details"]["api"]) == ("success", "rest")
            assert "REST queryAll" in run["details"]["bulk_fallback"]
            assert [j["state"] for j in run["details"]["bulk_jobs_ended"]] == ["Failed", "Aborted"]
            assert "Query timeout" in run["details"]["bulk_jobs_ended"][0]["error"]
            assert table_state(runtime.warehouse, "sf_contacts") == sandbox_state(sandbox, "sf_contacts")
            (stored,) = runtime.warehouse.query("SELECT details FROM sales_intelligence.etl_runs")
            assert stored["details"]["api"] == "rest" and len(stored["details"]["bulk_jobs_ended"]) == 2

    def test_a_resumed_job_found_ended_counts_toward_the_fallback(self, runtime, monkeypatch):
        """A run stopped at its budget keeps its Bulk job; when a later run resumes it and finds it ended a second
        time (a query timeout after the first run's time share), the object is read by REST in that run: no new
        Bulk job every run, the object never stuck."""
        from cloud_functions.salesforce_sync.sync import client_for
        from pipeline.sync_state import SyncStateStore

        with SalesforceSandbox(SIZE) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            sandbox.state.variety.bulk_ends.append("Failed")
            job = client_for(runtime).start_bulk_query(OBJECTS["Contact"].soql(ordered=False))  # the job of the run before
            stored = {"mode": "bulk2", "job": job, "locator": "", "newest": None, "previous": None, "ended": 1}
            SyncStateStore(runtime.warehouse).write("salesforce", "Contact", json.dumps(stored), "the-run-before")
            (run,) = contact_sync(runtime, sync_type="incremental")["runs"]
            assert (run["status"], run["details"]["api"]) == ("success", "rest"), run["details"]
            assert "REST queryAll" in run["details"]["bulk_fallback"]
            assert sandbox.server.requests.by_route["bulk_create"] == 1  # the run before's job only
            assert table_state(runtime.warehouse, "sf_contacts") == sandbox_state(sandbox, "sf_contacts")

    def test_results_asked_for_before_the_job_completes_answer_412(self):
        """The sandbox answers a results request for a job still in progress with 412, as Salesforce does."""
        from cloud_functions.salesforce_sync.auth import LoginHostSession, SalesforceCredentials, connect
        from config.settings import Settings

        with SalesforceSandbox(SIZE) as sandbox:
            sandbox.state.bulk_in_progress_polls = 10
            settings = Settings(_env_file=None, salesforce_login_url=sandbox.url,
                                salesforce_ca_bundle=sandbox.server.cert_path)
            creds = SalesforceCredentials(method="password", username="sync@sandbox.example", password="sandbox-password",
                                          security_token="sandbox-token")
            sf = connect(creds, settings, LoginHostSession(sandbox.url, str(sandbox.server.cert_path)))
            job = sf.session.post(f"{sf.bulk2_url}query", headers=sf.headers,
                                  json={"operation": "query", "query": "SELECT Id FROM Contact"}).json()
            response = sf.session.get(f"{sf.bulk2_url}query/{job['id']}/results", headers=sf.headers)
            assert response.status_code == 412
            assert response.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"


class TestConcurrencyLimits:
    def test_a_concurrency_limit_is_waited_out_not_read_as_the_daily_budget(self, runtime, monkeypatch):
        """403 REQUEST_LIMIT_EXCEEDED for ConcurrentPerOrgLongTxn / ConcurrentRequests is retried with backoff: the
        run succeeds and the objects after it run too."""
        with SalesforceSandbox(SIZE) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            run_salesforce_sync(SalesforceSyncRequest(object_type="Account", sync_type="full"), runtime)
            sandbox.state.variety.concurrency_next = 2
            result = run_salesforce_sync(SalesforceSyncRequest(sync_type="incremental"), runtime)
            assert result["status"] == "success", result
            assert all(r["status"] == "success" for r in result["runs"])
            assert sandbox.state.variety.concurrency_next == 0

    def test_a_concurrency_limit_that_outlasts_the_retries_ends_only_that_object(self, runtime, monkeypatch):
        """A concurrency limit still held when the retry policy gives up ends that object's run partial, named as a
        concurrency limit, and the objects after it still run."""
        with SalesforceSandbox(SIZE) as sandbox:
            point_at(runtime, sandbox, monkeypatch, retry_max_seconds=1)
            run_salesforce_sync(SalesforceSyncRequest(object_type="Account", sync_type="full"), runtime)
            sandbox.state.variety.concurrency_next = 100_000
            held = run_salesforce_sync(SalesforceSyncRequest(sync_type="incremental"), runtime)["runs"]
            assert [r["stream"] for r in held] == list(OBJECTS)  # (the daily limit stops at the first)
            assert all(r["status"] == "partial" and "concurrency limit" in r["stop_reason"] for r in held)
            sandbox.state.variety.concurrency_next = 0
            result = run_salesforce_sync(SalesforceSyncRequest(sync_type="incremental"), runtime)
            assert [r["status"] for r in result["runs"]] == ["success"] * len(OBJECTS)

    def test_the_daily_limit_still_ends_the_invocation(self, runtime, monkeypatch):
        """TotalRequests (the daily limit) ends the run partial and the objects after it wait for the next one."""
        with SalesforceSandbox(SIZE) as sandbox:
            point_at(runtime, sandbox, monkeypatch, salesforce_bulk_threshold=10_000)
            sandbox.state.daily_limit = 1  # Account's count, then its query is refused
            result = run_salesforce_sync(SalesforceSyncRequest(sync_type="full"), runtime)
            assert result["status"] == "partial"
            assert "daily request limit" in result["runs"][0]["stop_reason"]
            assert len(result["runs"]) == 1

    def test_the_seeded_rate_gives_both_messages(self):
        """At a rate, the sandbox's concurrency 403s come from the seed and carry both documented messages."""
        first, second = Variety(seed=3, concurrency_rate=0.5), Variety(seed=3, concurrency_rate=0.5)
        drawn = [first.concurrency_limit() for _ in range(40)]
        assert drawn == [second.concurrency_limit() for _ in range(40)]
        assert {m for m in drawn if m} == {"ConcurrentPerOrgLongTxn Limit exceeded.",
                                           "ConcurrentRequests (Concurrent API Requests) Limit exceeded."}


class TestBulkCsvShapes:
    def test_z_datetimes_are_read_like_offset_ones(self, runtime, monkeypatch):
        """Bulk CSV datetimes written ...Z beside ...+0000 load as the same instants."""
        with SalesforceSandbox(SIZE, variety=Variety(z_datetime_rate=0.5)) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            (run,) = contact_sync(runtime)["runs"]
            assert (run["status"], run["details"]["api"], run["rows_rejected"]) == ("success", "bulk2", 0)
            assert table_state(runtime.warehouse, "sf_contacts") == sandbox_state(sandbox, "sf_contacts")

    def test_a_row_with_too_few_cells_is_rejected_alone_with_its_text(self, runtime, monkeypatch):
        """A Bulk CSV row with fewer cells than the header goes to rejected_records with its raw text; the rest of
        its page is merged and the run succeeds (and so does the next one)."""
        with SalesforceSandbox(SIZE, variety=Variety(malformed_row_rate=0.02)) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            bad = [r["Id"] for r in sandbox.state.current("Contact")
                   if sandbox.state.variety.rare("malformed", r["Id"], 0.02)]
            assert bad
            (run,) = contact_sync(runtime)["runs"]
            assert (run["status"], run["details"]["api"]) == ("success", "bulk2")
            assert (run["rows_rejected"], run["rows_loaded"]) == (len(bad), 300 - len(bad))
            rows = rejected(runtime)
            assert all("malformed CSV row" in r["reason"] for r in rows)
            assert sorted(b for b in bad if any(b in r["raw_record"] for r in rows)) == sorted(bad)
            assert not contact_ids(runtime) & set(bad)
            assert contact_sync(runtime)["runs"][0]["status"] == "success"

    # Arrow reports the text it could not decode for the row handler as an unraisable exception, then stops.
    @pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
    def test_malformed_row_that_is_not_utf8_either(self):
        """A row both short and not UTF-8 is rejected alone too (Arrow cannot hand its text over)."""
        from transform import columns

        page = columns.read_csv(b'"Id","LastName","Email"\n"1","A","a@x.io"\n"2","M\xfcller"\n"3","C","c@x.io"\n')
        assert page.column("Id").to_pylist() == ["1", "3", None]
        reasons = page.column(columns.UNSTORABLE).to_pylist()
        assert reasons[:2] == [None, None] and "malformed CSV row" in reasons[2]
        assert "M\\xfcller" in page.column(columns.MALFORMED_ROW).to_pylist()[2]

    def test_text_beyond_salesforces_field_limit_is_rejected(self, runtime, monkeypatch):
        """A 10 MB name (longer than the 131,072 characters any Salesforce text field holds) rejects its record
        with the reason, in Bulk CSV and REST JSON alike; nothing is stored whole."""
        variety = Variety(oversized_rate=0.01)
        with SalesforceSandbox(SIZE, variety=variety) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            bad = {r["Id"] for r in sandbox.state.current("Contact") if variety.rare("oversized", r["Id"], 0.01)}
            assert bad
            for bulk_threshold in (100, 100_000):
                runtime.settings = runtime.settings.model_copy(update={"salesforce_bulk_threshold": bulk_threshold})
                (run,) = contact_sync(runtime)["runs"]
                assert (run["status"], run["rows_rejected"], run["rows_loaded"]) == ("success", len(bad), 300 - len(bad))
            reasons = {r["reason"] for r in rejected(runtime)}
            assert reasons == {"LastName holds 10,485,760 characters, more than the 131,072 of any Salesforce text field"}
            assert not contact_ids(runtime) & bad


class TestRestShapes:
    def test_a_json_object_or_list_in_a_text_field_is_rejected_not_stringified(self, runtime, monkeypatch):
        """A REST record whose LastName is a JSON object or a list is rejected with the reason; nothing like
        "OrderedDict(" or "['" reaches the table."""
        variety = Variety(non_scalar_rate=0.03)
        with SalesforceSandbox(SIZE, variety=variety) as sandbox:
            point_at(runtime, sandbox, monkeypatch, salesforce_bulk_threshold=100_000)
            bad = {r["Id"] for r in sandbox.state.current("Contact") if variety.rare("non_scalar", r["Id"], 0.03)}
            assert len(bad) > 1
            (run,) = contact_sync(runtime)["runs"]
            assert (run["status"], run["rows_rejected"], run["rows_loaded"]) == ("success", len(bad), 300 - len(bad))
            reasons = {r["reason"] for r in rejected(runtime)}
            assert reasons <= {"a JSON object in LastName, not a value", "a JSON array in LastName, not a value"}
            assert len(reasons) == 2
            assert not runtime.warehouse.query(
                "SELECT id FROM sales_intelligence.sf_contacts WHERE last_name LIKE '%OrderedDict%' OR last_name LIKE '[%'")
            assert all(json.loads(r["raw_record"]).get("Id") in bad for r in rejected(runtime))


class TestPhonesWrittenFromTheOrg:
    def test_a_number_dialled_with_the_orgs_prefix_gets_its_e164(self, runtime, monkeypatch):
        """A UK contact's `011 44 20 7686 5244` (the US org's own international prefix) is invalid read in GB and
        right read in the org's region: its E.164 is +442076865244, in Bulk and REST alike."""
        with SalesforceSandbox(SIZE) as sandbox:
            point_at(runtime, sandbox, monkeypatch, default_phone_region="US")
            uk = sandbox.state.edit("Contact", 11, Phone="011 44 20 7686 5244", MailingCountry="United Kingdom")
            for bulk_threshold in (100, 100_000):
                runtime.settings = runtime.settings.model_copy(update={"salesforce_bulk_threshold": bulk_threshold})
                contact_sync(runtime)
                assert runtime.warehouse.query(
                    "SELECT phone_e164 FROM sales_intelligence.sf_contacts WHERE id = @id",
                    {"id": uk["Id"]}) == [{"phone_e164": "+442076865244"}]
                runtime.warehouse.execute("DELETE FROM sales_intelligence.sf_contacts")
