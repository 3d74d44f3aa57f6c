"""The Salesforce sandbox against what Salesforce and simple-salesforce publish (references/salesforce, SOURCE.md):
each response the pipeline reads has the published shape, and the published examples go through the real records
code."""
from __future__ import annotations

import ast
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cloud_functions.salesforce_sync.auth import LoginHostSession, SalesforceCredentials, connect
from cloud_functions.salesforce_sync.records import OBJECTS
from config.settings import Settings
from sandbox.company import CompanySize
from sandbox.salesforce import DEFAULT_CREDENTIALS, SAMPLE_FIELD_TYPES, SalesforceSandbox, add_sample_fields
from sandbox.salesforce_variety import Variety
from transform import columns

REFERENCES = Path(__file__).parent / "references" / "salesforce"
SIZE = CompanySize(accounts=20, contacts=300, leads=10)
# Salesforce's JSON datetime, as every documented example writes it (job createdDate, record fields).
DOCUMENTED_DATETIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000"


def reference(name: str) -> Any:
    return json.loads((REFERENCES / name).read_text())


def fixture_module(name: str) -> dict[str, Any]:
    """The constants of a copied simple-salesforce test module (plain assignments and f-strings of them)."""
    namespace: dict[str, Any] = {}
    exec(compile((REFERENCES / name).read_text(), name, "exec"), namespace)  # constants only: no imports, no calls
    return namespace


def fixture_bodies(name: str) -> list[dict[str, Any]]:
    """The JSON bodies simple-salesforce's test_bulk2 fixture passes to to_body({...}), its enums read as Salesforce
    writes them."""
    text = (REFERENCES / name).read_text()
    words = {"JobState.upload_complete": "'UploadComplete'", "JobState.in_progress": "'InProgress'",
             "JobState.job_complete": "'JobComplete'", "operation": "'query'"}
    bodies = re.findall(r"to_body\(\s*(\{.*?\})\s*\)", text, re.S)
    names = "|".join(rf'(?<!"){re.escape(w)}(?!")' for w in words)
    return [ast.literal_eval(re.sub(names, lambda m: words[m[0]], b)) for b in bodies]


def json_kind(value: Any) -> str:
    kinds = ((type(None), "null"), (bool, "boolean"), ((int, float), "number"), (str, "string"), (list, "array"),
             (dict, "object"))
    return next((kind for types, kind in kinds if isinstance(value, types)), type(value).__name__)


def differences(got: Any, published: Any, path: str = "$") -> list[str]:
    """Where `got` departs from a published example's shape: a key it lacks, or a value of another JSON kind
    (the first item of an array stands for all)."""
    if json_kind(got) != json_kind(published):
        return [f"{path}: {json_kind(got)} where the reference has {json_kind(published)}"]
    if isinstance(published, dict):
        return [d for key, value in published.items() for d in (
            differences(got[key], value, f"{path}.{key}") if key in got else [f"{path}.{key} missing"])]
    if isinstance(published, list) and published and got:
        return differences(got[0], published[0], f"{path}[0]")
    return []


@pytest.fixture(scope="module")
def sandbox():
    with SalesforceSandbox(SIZE) as sb:
        add_sample_fields(sb.state, "Account", len(SAMPLE_FIELD_TYPES))
        yield sb


@pytest.fixture(scope="module")
def sf(sandbox):
    """simple-salesforce logged in to the sandbox by password, each raw response kept in sf.responses."""
    session = LoginHostSession(sandbox.url, str(sandbox.server.cert_path))
    responses: list = []
    session.hooks["response"].append(lambda response, *args, **kwargs: responses.append(response))
    settings = Settings(_env_file=None, salesforce_login_url=sandbox.url, salesforce_ca_bundle=sandbox.server.cert_path)
    client = connect(SalesforceCredentials(method="password", username=DEFAULT_CREDENTIALS["username"],
                                           password=DEFAULT_CREDENTIALS["password"],
                                           security_token=DEFAULT_CREDENTIALS["security_token"]), settings, session)
    client.responses = responses
    return client


def bulk(sf, method: str, path: str, **kwargs):
    return sf.session.request(method, f"{sf.bulk2_url}{path}", headers=sf.headers, **kwargs)


def completed_job(sf, soql: str) -> dict[str, Any]:
    job = bulk(sf, "POST", "query", json={"operation": "queryAll", "query": soql}).json()
    while job["state"] not in ("JobComplete", "Failed", "Aborted"):
        job = bulk(sf, "GET", f"query/{job['id']}").json()
    return job


class TestLogin:
    def test_soap_login_answers_what_simple_salesforces_fixture_holds(self, sf):
        """The SOAP loginResponse holds the fixture's sessionId and serverUrl (what simple-salesforce reads) and no
        element the fixture's result lacks."""
        fixture = fixture_module("simple_salesforce_tests_init.py.txt")["LOGIN_RESPONSE_SUCCESS"]
        login = next(r for r in sf.responses if "/services/Soap/u/" in r.url)

        def result_tags(xml: str) -> set[str]:
            result = next(e for e in ET.fromstring(xml.strip()).iter() if e.tag.endswith("}result"))
            return {child.tag.split("}")[1] for child in result}
        assert {"sessionId", "serverUrl"} <= result_tags(login.text) <= result_tags(fixture)

    def test_oauth_token_answers_every_key_of_the_fixture(self, sandbox):
        """The OAuth refresh answer carries every key of simple-salesforce's TOKEN_LOGIN_RESPONSE_SUCCESS."""
        fixture = json.loads(fixture_module("simple_salesforce_tests_init.py.txt")["TOKEN_LOGIN_RESPONSE_SUCCESS"])
        session = LoginHostSession(sandbox.url, str(sandbox.server.cert_path))
        creds = DEFAULT_CREDENTIALS
        token = session.post(f"{sandbox.url}/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": creds["client_id"], "client_secret": creds["client_secret"],
            "refresh_token": creds["refresh_token"]}).json()
        assert differences(token, fixture) == []


class TestRestQuery:
    def test_query_pages_have_the_documented_shape(self, sf):
        """A queryAll page with more to come and the last page conform to the REST API's examples and to
        simple-salesforce's fixture; records carry attributes, Id and Salesforce's datetime form."""
        first = sf.query("SELECT Id, LastName, SystemModstamp FROM Contact", include_deleted=True,
                         headers={"Sforce-Query-Options": "batchSize=200"})
        assert differences(first, reference("rest_query_response.json") | {"records": [
            {k: v for k, v in reference("rest_query_response.json")["records"][0].items() if k != "Name"}]}) == []
        assert first["nextRecordsUrl"].startswith(f"/services/data/v{sf.sf_version}/queryAll/")  # relative, as documented
        last = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, include_deleted=True)
        assert differences(last, reference("rest_query_last_page.json") | {"records": []}) == []
        assert last["done"] is True and "nextRecordsUrl" not in last
        assert len(first["records"]) + len(last["records"]) == first["totalSize"] == 300
        assert all(re.fullmatch(DOCUMENTED_DATETIME, r["SystemModstamp"]) for r in first["records"] + last["records"])

    def test_simple_salesforce_fixture_pages_have_the_sandbox_keys(self, sf):
        """simple-salesforce's recorded pages and the sandbox's share their keys: totalSize, done, records (and
        nextRecordsUrl while not done)."""
        bodies = [json.loads(ast.literal_eval(f"({b})")) for b in re.findall(
            r"body=((?:'[^']*'\s*)+)", (REFERENCES / "simple_salesforce_test_api_query_pages.py.txt").read_text())]
        first = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"})
        assert set(bodies[0]) == set(first) and bodies[0]["done"] is False
        assert set(bodies[1]) == set(sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)) - {"nextRecordsUrl"}

    def test_the_documented_records_go_through_the_records_code(self):
        """The REST API's example records are rejected for the cursor they lack; with a documented SystemModstamp
        they become rows."""
        records = [*reference("rest_query_response.json")["records"], *reference("rest_query_last_page.json")["records"]]
        rows, rejected = OBJECTS["Account"].transform(records, "US")
        # The query example selects Id and Name; the "Execute a SOQL Query" one only Name.
        assert rows.num_rows == 0 and [reason for _, reason in rejected] == [
            "missing SystemModstamp", "missing Id", "missing Id"]
        stamped = [{**r, "Id": r.get("Id") or r["attributes"]["url"].rsplit("/", 1)[1],
                    "SystemModstamp": reference("bulk2_query_job_info.json")["systemModstamp"]} for r in records]
        rows, rejected = OBJECTS["Account"].transform(stamped, "US")
        assert rejected == [] and rows.column("name").to_pylist() == ["John Smith", "Test 1", "Test 2"]
        assert {str(v) for v in rows.column("system_modstamp").to_pylist()} == {"2018-12-10 17:51:27+00:00"}


class TestDescribeAndLimits:
    def test_describe_fields_have_the_documented_properties(self, sf):
        """Every field of a describe (standard and each custom type) carries the properties the pipeline reads, of
        the documented kinds, its type one of the documented field types."""
        properties = reference("describe_field.json")
        kinds = {"string": "string", "boolean": "boolean", "integer": "number", "null": "null"}
        for field in sf.Account.describe()["fields"]:
            for name, spec in properties.items():
                allowed = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
                assert json_kind(field.get(name, KeyError)) in {kinds[a] for a in allowed}, (field["name"], name)
            assert field["type"] in properties["type"]["enum"], field

    def test_limits_and_the_limit_header(self, sf):
        """/limits has DailyApiRequests as simple-salesforce's fixture does; every data answer carries
        Sforce-Limit-Info, which the client reads as (used, limit)."""
        fixture = fixture_module("simple_salesforce_tests_init.py.txt")["ORGANIZATION_LIMITS_RESPONSE"]
        limits = sf.limits()
        assert differences(limits, {"DailyApiRequests": fixture["DailyApiRequests"]}) == []
        data = [r for r in sf.responses if "/services/data/" in r.url]
        assert data and all(re.fullmatch(r"api-usage=\d+/\d+", r.headers["Sforce-Limit-Info"]) for r in data)

    def test_the_per_app_limit_header_of_the_fixture_is_read(self, sf):
        """Sforce-Limit-Info with a per-app part (simple-salesforce's fixture) still gives the org's daily usage."""
        from cloud_functions.salesforce_sync.client import SalesforceClient

        header = re.search(r'pau = "([^"]+)"', (REFERENCES / "simple_salesforce_test_api_usage.py.txt").read_text())[1]
        client = SalesforceClient.__new__(SalesforceClient)
        client._sf = sf
        sf.api_usage = sf.parse_api_usage(header)
        assert client.api_usage() == (25, 5000)


class TestBulkQuery:
    def test_job_create_and_info_have_the_documented_shape(self, sf):
        """The create answer and the job's info carry every key of Salesforce's examples and of
        simple-salesforce's recorded ones, datetimes in the documented form."""
        created = bulk(sf, "POST", "query", json={"operation": "queryAll", "query": "SELECT Id FROM Contact"}).json()
        assert differences(created, reference("bulk2_query_job_create.json")) == []
        info = completed_job(sf, "SELECT Id FROM Contact")
        assert differences(info, reference("bulk2_query_job_info.json")) == []
        for body in fixture_bodies("simple_salesforce_test_bulk2_query.py.txt"):
            assert differences(info if body["state"] != "UploadComplete" else created, body) == []
        assert re.fullmatch(DOCUMENTED_DATETIME, info["createdDate"])
        assert re.fullmatch(DOCUMENTED_DATETIME, info["systemModstamp"])

    def test_results_pages_carry_the_documented_headers(self, sf):
        """Each results page says Sforce-NumberOfRecords (its rows) and Sforce-Locator (the string "null" after
        the last); its CSV quotes like the documented example."""
        job = completed_job(sf, "SELECT Id, LastName FROM Contact")
        headers = reference("bulk2_query_results_headers.json")
        locator, pages = "", []
        while locator != "null":
            response = bulk(sf, "GET", f"query/{job['id']}/results", params={
                "maxRecords": 200, **({"locator": locator} if locator else {})})
            assert set(headers["required"]) <= set(response.headers)
            pages.append(response)
            locator = response.headers["Sforce-Locator"]
        assert [int(p.headers["Sforce-NumberOfRecords"]) for p in pages] == [200, 100]
        assert pages[0].text.splitlines()[0] == '"Id","LastName"'
        assert locator == headers["Sforce-Locator when there are no more results"]

    def test_results_asked_for_too_early_answer_the_documented_412(self, sandbox, sf):
        """Results of a job still in progress: 412 with JOB_NOT_COMPLETE and Salesforce's message."""
        sandbox.state.bulk_in_progress_polls = 5
        try:
            job = bulk(sf, "POST", "query", json={"operation": "query", "query": "SELECT Id FROM Contact"}).json()
            bulk(sf, "GET", f"query/{job['id']}")
            response = bulk(sf, "GET", f"query/{job['id']}/results")
        finally:
            sandbox.state.bulk_in_progress_polls = 1
        published = reference("bulk2_query_results_not_complete.json")
        assert (response.status_code, response.json()) == (published["status"], published["body"])

    def test_the_documented_csv_examples_go_through_the_records_code(self):
        """Salesforce's results example and simple-salesforce's recorded page read to their cells; as Contacts they
        are rejected for the cursor they lack, each with the reason."""
        docs = columns.read_csv((REFERENCES / "bulk2_query_results.csv").read_bytes())
        assert docs.to_pylist()[0] == {"Id": "005R0000000UyrWIAS", "Name": "Jane Dunn"} and docs.num_rows == 3
        text = (REFERENCES / "simple_salesforce_test_bulk2_query.py.txt").read_text()
        page = textwrap.dedent(re.search(r'textwrap\.dedent\(\s*"""(.*?)"""', text, re.S)[1]).lstrip("\n")
        cells = columns.read_csv(page.encode())
        assert cells.num_rows == 4 and cells.column("LastName").to_pylist() == ["x", "y", "x", "y"]
        rows, rejected = OBJECTS["Contact"].transform(cells, "US")
        assert rows.num_rows == 0 and {reason for _, reason in rejected} == {"missing SystemModstamp"}

    def test_bulk_csv_datetimes_in_both_forms_read_as_one_instant(self):
        """The sandbox writes Bulk CSV datetimes `...000+0000`, and `...000Z` when its variety says so; both read to
        the same instants."""
        stamps = {}
        for rate in (0.0, 1.0):
            with SalesforceSandbox(SIZE, variety=Variety(z_datetime_rate=rate)) as sandbox:
                session = LoginHostSession(sandbox.url, str(sandbox.server.cert_path))
                settings = Settings(_env_file=None, salesforce_login_url=sandbox.url,
                                    salesforce_ca_bundle=sandbox.server.cert_path)
                client = connect(SalesforceCredentials(method="password", username=DEFAULT_CREDENTIALS["username"],
                                                       password=DEFAULT_CREDENTIALS["password"],
                                                       security_token=DEFAULT_CREDENTIALS["security_token"]),
                                 settings, session)
                job = completed_job(client, "SELECT Id, SystemModstamp FROM Contact")
                page = columns.read_csv(bulk(client, "GET", f"query/{job['id']}/results").content)
                written = page.column("SystemModstamp").to_pylist()
                assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}" + ("Z" if rate else r"\+0000"), w)
                           for w in written)
                read, errors = columns.timestamp(page.column("SystemModstamp").combine_chunks())
                assert errors is None
                stamps[rate] = dict(zip(page.column("Id").to_pylist(), read.to_pylist()))
        assert stamps[0.0] == stamps[1.0] and len(stamps[0.0]) == 300


class TestErrors:
    def test_request_limit_answers_carry_the_documented_messages(self, sandbox, sf):
        """The daily limit answers 403 TotalRequests; a concurrency limit answers 403 with the Concurrent... messages."""
        published = reference("request_limit_exceeded.json")
        sandbox.state.variety.concurrency_next = 2
        concurrency = [sf.session.get(f"{sf.base_url}limits/", headers=sf.headers) for _ in range(2)]
        assert [r.status_code for r in concurrency] == [published["status"]] * 2
        assert sorted(r.json()[0]["message"] for r in concurrency) == sorted(m["message"] for m in published["concurrency"])
        used, limit = sandbox.state.api_used, sandbox.state.daily_limit
        sandbox.state.daily_limit = used
        try:
            daily = sf.session.get(f"{sf.base_url}limits/", headers=sf.headers)
        finally:
            sandbox.state.daily_limit = limit
        assert (daily.status_code, daily.json()) == (published["status"], published["daily"])

    def test_a_failed_job_says_why_in_the_documented_field(self, sandbox, sf):
        """A job that ends Failed has a documented state and an errorMessage string."""
        sandbox.state.variety.bulk_ends.append("Failed")
        job = completed_job(sf, "SELECT Id FROM Contact")
        assert job["state"] == "Failed" and isinstance(job["errorMessage"], str)
        assert differences(job, reference("bulk2_query_job_info.json")) == []


def test_sample_pages_are_arrow_text():
    """read_csv of the documented example gives string columns (what the records code takes)."""
    assert columns.read_csv((REFERENCES / "bulk2_query_results.csv").read_bytes()).schema == pa.schema(
        [("Id", pa.string()), ("Name", pa.string())])
