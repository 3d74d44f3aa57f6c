"""HubSpot sync end to end: functions-framework HTTP entry -> hubspot-api-client / requests -> loopback HubSpot."""
from __future__ import annotations

import json
import random

import pytest

from cloud_functions.hubspot_sync.records import enrollment_rows, sequence_row
from pipeline.runner import RejectedRecord
from sandbox.hubspot import NOT_ENROLLED_FORMS, HubSpotSandbox
from tests.helpers import (
    ABSURD_DATES,
    SMALL_ROW_BYTES,
    TEXT_POISONS,
    matches,
    point_at,
    poison_reason_pattern,
    poisoned_text,
    pull_messages,
)

DS = "sales_intelligence"


def rows(warehouse, table, key):
    return warehouse.query(f"SELECT * EXCEPT (ingested_at) FROM {DS}.{table} ORDER BY {key}")


class TestSync:
    def test_full_incremental_and_repeat_over_http(self, runtime, monkeypatch, function_server):
        """Every sequence and enrollment once; incremental reads only touched contacts; a repeat changes nothing."""
        with HubSpotSandbox(40) as sandbox:
            point_at(runtime, sandbox, monkeypatch, hubspot_lookback_seconds=0)
            server = function_server("hubspot_sync")
            response = server.post({"sync_type": "full"})
            assert response.status_code == 200, response.text
            sequences = rows(runtime.warehouse, "hubspot_sequences", "sequence_id")
            assert sorted(r["sequence_id"] for r in sequences) == sorted(s["id"] for s in sandbox.state.sequences)
            enrollments = rows(runtime.warehouse, "hubspot_sequence_enrollments", "enrollment_id")
            assert sorted(r["contact_id"] for r in enrollments) == sorted(sandbox.state.enrollments, key=str)
            truth = {c["id"]: c["email"] for c in sandbox.state.contacts}
            assert all(r["email"] == truth[r["contact_id"]] for r in enrollments)  # messy toEmail normalised
            touched = sandbox.state.touch(3)
            sandbox.server.requests.reset()
            response = server.post({})
            assert response.status_code == 200, response.text
            runs = {r["stream"]: r for r in response.json()["runs"]}
            # The touched contacts, plus the one at the inclusive bound (the stored lastmodifieddate).
            assert runs["enrollments"]["rows_fetched"] == len(touched) + 1
            assert sandbox.server.requests.by_route["enrollment"] == len(touched) + 1
            assert rows(runtime.warehouse, "hubspot_sequence_enrollments", "enrollment_id") == enrollments
            assert rows(runtime.warehouse, "hubspot_sequences", "sequence_id") == sequences

    def test_limits_are_never_exceeded_and_429s_are_retried(self, runtime, monkeypatch):
        """At most 100 requests in any 10 s and 5 searches in any second; injected 429s are retried."""
        from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, run_hubspot_sync

        with HubSpotSandbox(110) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            sandbox.server.faults.fail_next(2, status=429, path_pattern="/enrollments/contact/",
                                            headers={"Retry-After": "1"})
            result = run_hubspot_sync(HubSpotSyncRequest(sync_type="full"), runtime)
            assert result["status"] == "success" and result["api_calls"] > 100
            assert sandbox.state.rate_limited == 0 and sandbox.server.requests.statuses[429] == 2
            assert sandbox.server.requests.max_in_window(10.0) <= 100
            assert runtime.warehouse.table_counts()["hubspot_sequence_enrollments"] == len(sandbox.state.enrollments)

    def test_two_queue_workers_share_the_private_app_limit(self, runtime, monkeypatch):
        """In queue mode the two hubspot_worker instances' clients (one per stream) each spend half the app's limit:
        both calling flat out, HubSpot sees at most the limit in any 10 s and answers no 429."""
        import threading

        from cloud_functions.hubspot_sync.client import HubSpotClient

        with HubSpotSandbox(5, limit_per_10s=8) as sandbox:
            point_at(runtime, sandbox, monkeypatch, dispatch="queue", hubspot_requests_per_10s=8)
            clients = [HubSpotClient(sandbox.state.token, runtime.settings) for _ in range(2)]

            def flat_out(client):
                for _ in range(6):  # past its half (4): the rest waits for the window
                    client.owner_user_ids()

            threads = [threading.Thread(target=flat_out, args=(client,)) for client in clients]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert [client.api_calls for client in clients] == [6, 6]
            assert sandbox.server.requests.statuses[429] == sandbox.state.rate_limited == 0
            assert sandbox.server.requests.max_in_window(10.0) <= 8

    def test_search_cap_of_10000_is_read_through(self, runtime, monkeypatch):
        """12,000 modified contacts are all read although one search stops at 10,000."""
        from cloud_functions.hubspot_sync.client import HubSpotClient

        with HubSpotSandbox(12_000, enrolled_share=0.0) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            client = HubSpotClient(sandbox.state.token, runtime.settings)
            seen = [c["id"] for page in client.modified_contacts(0) for c in page]
            assert len(seen) == len(set(seen)) == 12_000
            assert sandbox.server.requests.statuses[400] == 0
            assert sandbox.server.requests.max_in_window(1.0) <= 5

    @pytest.mark.emulator
    def test_bad_token_fails_fast_publishes_and_marks_failed(self, runtime, monkeypatch, pubsub_subscription,
                                                             function_server):
        """A rejected token: HTTP 500, one Pub/Sub message, etl_runs failed, the token nowhere."""
        settings, subscriber, subscription = pubsub_subscription
        runtime.publisher = type(runtime.publisher)(settings)
        with HubSpotSandbox(10) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            monkeypatch.setenv("HUBSPOT_API_KEY", "pat-wrong-token-value")
            response = function_server("hubspot_sync").post({})
            assert response.status_code == 500
            assert sandbox.server.requests.statuses[401] == 1
        (message,) = pull_messages(subscriber, subscription)
        assert json.loads(message.data)["source"] == "hubspot"
        assert "pat-wrong-token-value" not in message.data.decode()
        (run,) = runtime.warehouse.query(f"SELECT status FROM {DS}.etl_runs")
        assert run["status"] == "failed"


class TestWhatHubSpotDocuments:
    def test_every_not_enrolled_answer_reads_as_not_enrolled(self, runtime, monkeypatch):
        """A contact not enrolled, answered 200 {}, 204 or 404 (HubSpot documents only the 200 of an enrollment), gives
        no row and fails nothing."""
        from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, run_hubspot_sync

        with HubSpotSandbox(40) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            assert set(sandbox.state.not_enrolled.values()) == set(NOT_ENROLLED_FORMS)
            result = run_hubspot_sync(HubSpotSyncRequest(sync_type="full"), runtime)
            assert result["status"] == "success", result
            enrollments = rows(runtime.warehouse, "hubspot_sequence_enrollments", "enrollment_id")
            assert sorted(r["contact_id"] for r in enrollments) == sorted(sandbox.state.enrollments, key=str)

    def test_sequences_are_asked_for_people_only(self, runtime, monkeypatch):
        """Owners of type QUEUE own no sequences: only PERSON owners' users are asked, each once, a queue with a
        userId included."""
        from cloud_functions.hubspot_sync.client import HubSpotClient

        with HubSpotSandbox(5) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            people = {str(o["userId"]) for o in sandbox.state.owners if o["type"] == "PERSON"}
            assert any(o["type"] == "QUEUE" and o.get("userId") for o in sandbox.state.owners)
            client = HubSpotClient(sandbox.state.token, runtime.settings)
            assert sorted(client.owner_user_ids()) == sorted(people)

    def test_a_429_without_retry_after_waits_the_rate_limit_window(self, runtime, monkeypatch, caplog):
        """HubSpot's 429 carries X-HubSpot-RateLimit-* headers and no Retry-After: each retry waits the spent
        interval (1,000 ms here), the SDK's calls and plain HTTP alike, and the sync completes."""
        from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, run_hubspot_sync

        with HubSpotSandbox(8, limit_per_10s=4, limit_window_seconds=1.0, retry_after_share=0.0) as sandbox:
            point_at(runtime, sandbox, monkeypatch, hubspot_requests_per_10s=1000)
            with caplog.at_level("WARNING", logger="api_clients.retry"):
                result = run_hubspot_sync(HubSpotSyncRequest(sync_type="full"), runtime)
            assert result["status"] == "success", result
            assert sandbox.state.rate_limited > 0 and sandbox.server.requests.statuses[429] == sandbox.state.rate_limited
            waits = [r.json_fields["wait_seconds"] for r in caplog.records if r.getMessage() == "transient error, retrying"]
            assert len(waits) == sandbox.state.rate_limited and set(waits) == {1.0}

    def test_retry_after_is_honoured_for_the_sdks_calls(self, runtime, monkeypatch, caplog):
        """A 429 with Retry-After: 2 on the owners list and on a search (both through hubspot-api-client, whose
        ApiException keeps headers in .headers) is retried after 2 s, not after the backoff."""
        from cloud_functions.hubspot_sync.client import HubSpotClient

        with HubSpotSandbox(5) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            for path in ("/crm/v3/owners", "/crm/v3/objects/contacts/search"):
                sandbox.server.faults.fail_next(1, status=429, path_pattern=path, headers={"Retry-After": "2"})
            client = HubSpotClient(sandbox.state.token, runtime.settings)
            with caplog.at_level("WARNING", logger="api_clients.retry"):
                client.owner_user_ids()
                next(client.modified_contacts(0))
            waits = [r.json_fields["wait_seconds"] for r in caplog.records if r.getMessage() == "transient error, retrying"]
            assert waits == [2.0, 2.0] and sandbox.server.requests.statuses[429] == 2

    def test_every_attempt_is_counted_and_retried_by_the_one_policy(self, runtime, monkeypatch):
        """A throttled owners GET is retried by the client's policy (counted, rate limited), not silently by urllib3
        under the SDK."""
        from cloud_functions.hubspot_sync.client import HubSpotClient

        with HubSpotSandbox(5) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            sandbox.server.faults.fail_next(1, status=429, path_pattern="/crm/v3/owners", headers={"Retry-After": "0"})
            client = HubSpotClient(sandbox.state.token, runtime.settings)
            client.owner_user_ids()
            assert sandbox.server.requests.by_route["owners"] == 2 and client.api_calls == 2


# The enrollment fields stored as they come (a poison there reaches a row), and its dates.
STORED_TEXT_FIELDS = ("id", "sequenceId", "sequenceName", "toEmail", "enrolledBy")
DATE_FIELDS = ("enrolledAt", "updatedAt")


class TestPoison:
    @pytest.mark.parametrize("seed", range(2))
    @pytest.mark.parametrize("kind", TEXT_POISONS + ("absurd date",))
    def test_a_poison_enrollment_is_rejected_and_the_next_run_starts_past_it(self, runtime, monkeypatch, kind, seed):
        """A lone surrogate, NUL, oversized text or absurd date at a random field of one enrollment (valid JSON on
        the wire): that record is rejected with the reason, the others merge, the run succeeds, and the next run
        does not read it again."""
        from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, run_hubspot_sync

        monkeypatch.setattr("transform.values.MAX_ROW_BYTES", SMALL_ROW_BYTES)
        rng = random.Random(f"{kind} {seed}")
        with HubSpotSandbox(40) as sandbox:
            point_at(runtime, sandbox, monkeypatch, hubspot_lookback_seconds=0)
            run_hubspot_sync(HubSpotSyncRequest(sync_type="full"), runtime)
            at_bound = max(sandbox.state.contacts, key=lambda c: c["modified"])["id"]  # read again at the inclusive bound
            poisoned, later = rng.sample(sorted(set(sandbox.state.enrollments) - {at_bound}), 2)
            field = rng.choice(DATE_FIELDS if kind == "absurd date" else STORED_TEXT_FIELDS)
            value = rng.choice(ABSURD_DATES) if kind == "absurd date" else \
                poisoned_text(sandbox.state.enrollments[poisoned][field], kind, rng)
            sandbox.state.modify(poisoned, **{field: value})
            sandbox.state.modify(later, sequenceName="Renamed")
            before = rows(runtime.warehouse, "hubspot_sequence_enrollments", "enrollment_id")
            run = run_hubspot_sync(HubSpotSyncRequest(), runtime)["runs"][1]
            # The contact at the inclusive bound, the poisoned one, the later one.
            assert (run["status"], run["rows_fetched"], run["rows_rejected"]) == ("success", 3, 1), (kind, field)
            (rejected,) = runtime.warehouse.query(f"SELECT record_key, reason FROM {DS}.rejected_records")
            reason = f"ValueError: impossible date: {value!r}" if kind == "absurd date" else None
            assert rejected["record_key"] == poisoned
            assert rejected["reason"] == reason if reason else matches(poison_reason_pattern(kind), rejected["reason"])
            after = {r["contact_id"]: r for r in rows(runtime.warehouse, "hubspot_sequence_enrollments", "enrollment_id")}
            assert after[later]["sequence_name"] == "Renamed"
            assert after[poisoned] == next(r for r in before if r["contact_id"] == poisoned)  # as it was
            again = run_hubspot_sync(HubSpotSyncRequest(), runtime)["runs"][1]
            assert (again["status"], again["rows_fetched"], again["rows_rejected"]) == ("success", 1, 0)


class TestRows:
    def test_sequence_row(self):
        """A v4 sequence becomes a hubspot_sequences row."""
        row = sequence_row({"id": "9001", "name": "Intro", "userId": "7001", "folderId": "300",
                            "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-02T00:00:00.000Z"})
        assert (row["sequence_id"], row["user_id"], row["updated_at"].day) == ("9001", "7001", 2)

    @pytest.mark.parametrize("enrollment, expected", [
        (None, []),
        ({"id": "5", "enrolledAt": "2026-01-01T00:00:00Z", "toEmail": " Ann.Lee@Example.COM "},
         [("5", "ann.lee@example.com", "example.com")]),
        ({"id": "6", "enrolledAt": "2026-01-01T00:00:00Z", "toEmail": "not an email"}, [("6", None, None)]),
    ])
    def test_enrollment_rows(self, enrollment, expected):
        """Enrolled addresses are normalised; a contact without enrollment gives no row."""
        got = enrollment_rows({"contact": {"id": "1"}, "enrollment": enrollment})
        assert [(r["enrollment_id"], r["email"], r["domain"]) for r in got] == expected

    @pytest.mark.parametrize("record", [{"id": None}, {"id": "1"}])
    def test_sequences_without_id_or_dates_are_rejected(self, record):
        """A sequence with no id or no dates is rejected with the reason."""
        with pytest.raises(RejectedRecord):
            sequence_row(record)
