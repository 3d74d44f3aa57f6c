"""Push runs on the BigQuery emulator: a warm process's push run sends no SELECT (its watermark is read with
tabledata.list), and stores the same rows a scheduled run would (README "Push freshness", "What a push run reads")."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from types import ModuleType
from typing import Any

import pytest

from pipeline.run_origin import push_run
from pipeline.runner import RunSummary, run_sync
from pipeline.runtime import Runtime
from pipeline.stored_transcripts import KnownTranscripts
from tests.helpers import point_at
from warehouse.job_ledger import statement_kind, statement_target

MAILBOX = "alex@ourcompany.example"


class Selects:
    """Every SELECT a BigQuery warehouse's client sends (a query job: billed, 10 MB at least)."""

    def __init__(self, warehouse: Any, monkeypatch: pytest.MonkeyPatch):
        self.sent: list[str] = []
        real = warehouse.client.query

        def query(sql: str, *args: Any, **kwargs: Any) -> Any:
            self.sent.append(sql)
            return real(sql, *args, **kwargs)

        monkeypatch.setattr(warehouse.client, "query", query)

    def taken(self) -> list[str]:
        """The tables of the SELECTs sent since the last call."""
        tables = [statement_target(sql) for sql in self.sent if statement_kind(sql) in ("select", "with")]
        self.sent.clear()
        return tables


def new_process(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> tuple[Runtime, Selects]:
    """A worker process of its own on the same dataset (its memory empty: cold), its SELECTs counted."""
    from warehouse import BigQueryWarehouse

    warehouse = BigQueryWarehouse(runtime.settings)
    return Runtime(runtime.settings, warehouse, runtime.publisher, runtime.secrets), Selects(warehouse, monkeypatch)


def pushed(module: ModuleType, stream: str, runtime: Runtime) -> RunSummary:
    """A push run of the stream as a queue-mode worker runs it (run_sync without lease or sweep)."""
    with push_run():
        job = module.stream_job(stream, "incremental", runtime, time.monotonic() + 60)
        summary = run_sync(job, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=runtime.settings,
                           trigger="queue-push", sweep_abandoned=False, leased=False)
    assert summary.status == "success", summary
    return summary


@pytest.fixture
def bq_runtime(bigquery_warehouse, bigquery_settings, monkeypatch):
    """A runtime on the emulator: the scheduled runs' process."""
    import pipeline.runtime

    runtime = Runtime.around(bigquery_settings, bigquery_warehouse)
    monkeypatch.setattr(pipeline.runtime, "_runtime", runtime)
    return runtime


def message_state(warehouse: Any, message_id: str) -> list[dict[str, Any]]:
    return warehouse.query(f"SELECT sent_at, label_ids, is_deleted, body_text IS NOT NULL AS whole "
                           f"FROM `{warehouse.dataset}.gmail_messages` WHERE message_id = @id", {"id": message_id})


@pytest.mark.emulator
class TestGmail:
    def test_push_runs_read_nothing_and_flag_moves_in_their_partitions(self, bq_runtime, monkeypatch):
        """New mail, mail moved to trash and spam, and mail moved back: push runs (cold and warm) send no SELECT
        and no daily-units read; a trashed message is one row, flagged deleted with its labels in the partition
        it was stored in (body kept), a message moved back is mail again with its labels; a draft saved again
        (its previous message deleted) asks nothing, nor does a deletion of mail the process stored. A deletion of
        mail another process stored is the one look-up left."""
        from cloud_functions.gmail_sync import sync as gmail
        from sandbox.gmail import GmailSandbox

        with GmailSandbox([MAILBOX], messages_per_mailbox=12, variety=False) as sandbox:
            point_at(bq_runtime, sandbox, monkeypatch, gmail_list_page_size=20)
            gmail.run_gmail_sync(gmail.GmailSyncRequest(sync_type="full"), bq_runtime)
            worker, selects = new_process(bq_runtime, monkeypatch)
            state = sandbox.state
            inbox = [m for m in state.mailboxes[MAILBOX].messages.values() if m.labels == ["INBOX"]]
            trashed, spammed = inbox[0], inbox[1]
            before = message_state(bq_runtime.warehouse, trashed.id)

            new = state.add_message(MAILBOX, labels=["INBOX"])
            state.relabel(MAILBOX, trashed.id, add=("TRASH",), remove=("INBOX",))
            state.relabel(MAILBOX, spammed.id, add=("SPAM",), remove=("INBOX",))
            first = pushed(gmail, MAILBOX, worker)
            assert selects.taken() == [] and first.details["label_changes"] == 2
            assert message_state(bq_runtime.warehouse, trashed.id) == [
                {**before[0], "label_ids": ["TRASH"], "is_deleted": True}]
            assert message_state(bq_runtime.warehouse, new.id)[0]["whole"]

            state.relabel(MAILBOX, spammed.id, add=("INBOX",), remove=("SPAM",))
            pushed(gmail, MAILBOX, worker)
            assert selects.taken() == []
            (back,) = message_state(bq_runtime.warehouse, spammed.id)
            assert (back["label_ids"], back["is_deleted"], back["whole"]) == (["INBOX"], False, True)

            draft = state.save_draft(MAILBOX)
            pushed(gmail, MAILBOX, worker)
            state.save_draft(MAILBOX, replacing=draft.id)  # Gmail deletes the previous draft message at every save
            saved = pushed(gmail, MAILBOX, worker)
            assert selects.taken() == [] and saved.rows_loaded == 0

            stored_new = message_state(bq_runtime.warehouse, new.id)
            state.delete_message(MAILBOX, new.id)  # stored by this process: its sent_at is known
            pushed(gmail, MAILBOX, worker)
            assert selects.taken() == []
            assert message_state(bq_runtime.warehouse, new.id) == [{**stored_new[0], "is_deleted": True}]

            state.delete_message(MAILBOX, inbox[2].id)  # stored by another process: its stored sent_at is asked
            pushed(gmail, MAILBOX, worker)
            assert selects.taken() == ["gmail_messages"]
            assert message_state(bq_runtime.warehouse, inbox[2].id)[0]["is_deleted"]


@pytest.mark.emulator
class TestSalesforce:
    def test_a_push_run_queries_no_registry_and_no_formula_check(self, bq_runtime, monkeypatch):
        """With custom and formula fields configured, push runs (cold and warm) send no SELECT: the field registry
        is read with tabledata.list, etl_runs not at all (the formula refresh is the schedule's); they stay
        incremental and store the edit with its custom field."""
        from cloud_functions.salesforce_sync import sync as salesforce
        from sandbox.company import CompanySize
        from sandbox.salesforce import SalesforceSandbox
        from tests.cloud_functions.test_salesforce_sync import point_at as aim

        with SalesforceSandbox(CompanySize(accounts=5, contacts=30, leads=5)) as sandbox:
            sandbox.state.add_field("Contact", "Nickname__c", "string", lambda i: f"nick{i}")
            sandbox.state.add_field("Contact", "Health_Score__c", "double", lambda i: 1.0, formula=True)
            aim(bq_runtime, sandbox, monkeypatch, salesforce_custom_fields={"Contact": ["Nickname__c"]},
                salesforce_formula_fields={"Contact": ["Health_Score__c"]}, salesforce_formula_refresh_hours=0.001)
            salesforce.run_salesforce_sync(salesforce.SalesforceSyncRequest(object_type="Contact", sync_type="full"),
                                           bq_runtime)
            worker, selects = new_process(bq_runtime, monkeypatch)
            cold = pushed(salesforce, "Contact", worker)
            assert selects.taken() == [] and cold.sync_type == "incremental"

            edited = sandbox.state.edit("Contact", 3, Title="pushed title")
            warm = pushed(salesforce, "Contact", worker)
            assert selects.taken() == [] and warm.sync_type == "incremental" and warm.rows_fetched >= 1
            (row,) = bq_runtime.warehouse.query(f"SELECT title, nickname__c FROM `{bq_runtime.warehouse.dataset}.sf_contacts` "
                                            "WHERE id = @id", {"id": edited["Id"]})
            assert row == {"title": "pushed title", "nickname__c": "nick3"}


@pytest.mark.emulator
class TestDialpad:
    def test_a_warm_push_run_looks_up_no_transcript_and_fetches_none_twice(self, bq_runtime, monkeypatch):
        """A cold push run looks its window's stored transcripts up once; warm ones send no SELECT, fetch a new
        call's transcript, and never fetch a transcript again that the process stored or found stored."""
        from cloud_functions.dialpad_sync import sync as dialpad
        from cloud_functions.dialpad_sync.client import DialpadClient
        from sandbox.dialpad import DialpadSandbox

        asked: list[str] = []
        real = DialpadClient.transcripts
        monkeypatch.setattr(DialpadClient, "transcripts", lambda client, ids: asked.extend(ids) or real(client, ids))
        with DialpadSandbox(20) as sandbox:
            point_at(bq_runtime, sandbox, monkeypatch, dialpad_lookback_hours=1)
            dialpad.run_dialpad_sync(dialpad.DialpadSyncRequest(sync_type="full", days=5), bq_runtime)
            stored_before = set(sandbox.state.transcripts)
            worker, selects = new_process(bq_runtime, monkeypatch)

            def transcribed_call() -> str:
                while True:
                    call = sandbox.state.end_call()
                    if str(call["call_id"]) in sandbox.state.transcripts:
                        return str(call["call_id"])

            first_call = transcribed_call()
            asked.clear()
            pushed(dialpad, dialpad.STREAM, worker)
            assert selects.taken() == ["dialpad_transcripts"]
            assert first_call in asked and not set(asked) & stored_before

            second_call = transcribed_call()
            asked.clear()
            pushed(dialpad, dialpad.STREAM, worker)
            assert selects.taken() == []
            assert second_call in asked and not set(asked) & (stored_before | {first_call})
            stored = bq_runtime.warehouse.query(
                f"SELECT call_id FROM `{bq_runtime.warehouse.dataset}.dialpad_transcripts` WHERE call_id IN UNNEST(@ids)",
                {"ids": [first_call, second_call]})
            assert sorted(r["call_id"] for r in stored) == sorted([first_call, second_call])


@pytest.mark.emulator
class TestHubSpot:
    def test_a_push_run_sends_no_select(self, bq_runtime, monkeypatch):
        """The enrollments stream's push run sends no SELECT (its watermark is read free), and stores the enrollment."""
        from cloud_functions.hubspot_sync import sync as hubspot
        from sandbox.hubspot import HubSpotSandbox

        with HubSpotSandbox(10) as sandbox:
            point_at(bq_runtime, sandbox, monkeypatch)
            hubspot.run_hubspot_sync(hubspot.HubSpotSyncRequest(sync_type="full"), bq_runtime)
            worker, selects = new_process(bq_runtime, monkeypatch)
            contact = sandbox.state.contacts[0]
            sandbox.state.enroll(contact["id"], 1)
            pushed(hubspot, "enrollments", worker)
            assert selects.taken() == []
            stored = bq_runtime.warehouse.query(
                f"SELECT enrollment_id FROM `{bq_runtime.warehouse.dataset}.hubspot_sequence_enrollments` "
                "WHERE enrollment_id = @id", {"id": sandbox.state.enrollments[contact["id"]]["id"]})
            assert len(stored) == 1


T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)


class TestKnownTranscripts:
    @pytest.mark.parametrize("spans, low, high, covered", [
        ([], 0, 1, False),
        ([(0, None)], 2, 9, True),
        ([(0, 4)], 1, 4, True),
        ([(0, 4)], 1, 5, False),
        ([(0, 4), (4, None)], 1, 9, True),
        ([(0, 3), (4, None)], 1, 9, False),  # a gap: calls started then were never looked up
        ([(2, None)], 1, 9, False),
    ])
    def test_a_window_is_covered_only_by_spans_without_a_gap(self, spans, low, high, covered):
        """A window is known when looked-up spans reach from its start to its end; an open span reaches on."""
        def at(hours: int | None) -> datetime | None:
            return None if hours is None else T0 + timedelta(hours=hours)

        known = KnownTranscripts()
        for start, end in spans:
            known.looked_up(T0 + timedelta(hours=start), at(end))
        assert known.covers(T0 + timedelta(hours=low), T0 + timedelta(hours=high)) is covered

    def test_stored_answers_only_known_ids(self):
        """stored() gives the ids among those asked that were found or stored."""
        known = KnownTranscripts()
        known.add(["1", "2"])
        assert known.stored(["2", "3"]) == {"2"}


class TestGmailNeverStored:
    def test_spam_moved_to_trash_then_back_to_mail_is_stored_whole(self, runtime, monkeypatch):
        """Spam never stored moved to trash: a push run writes a bodiless row flagged deleted; moved back to the
        inbox, a scheduled run takes it as not stored and stores it whole (a full sync and an incremental one)."""
        from cloud_functions.gmail_sync import sync as gmail
        from sandbox.gmail import GmailSandbox

        with GmailSandbox([MAILBOX], messages_per_mailbox=8, variety=False) as sandbox:
            point_at(runtime, sandbox, monkeypatch, gmail_list_page_size=20)
            gmail.run_gmail_sync(gmail.GmailSyncRequest(sync_type="full"), runtime)
            state = sandbox.state
            spam = [state.add_message(MAILBOX, labels=["SPAM"]) for _ in range(2)]
            for message in spam:
                state.relabel(MAILBOX, message.id, add=("TRASH",), remove=("SPAM",))
            pushed(gmail, MAILBOX, runtime)
            assert [message_state(runtime.warehouse, m.id)[0]["whole"] for m in spam] == [False, False]
            assert all(message_state(runtime.warehouse, m.id)[0]["is_deleted"] for m in spam)

            for message in spam:
                state.relabel(MAILBOX, message.id, add=("INBOX",), remove=("TRASH",))
            gmail.run_gmail_sync(gmail.GmailSyncRequest(sync_type="incremental"), runtime)
            (row,) = message_state(runtime.warehouse, spam[0].id)
            assert (row["whole"], row["is_deleted"], row["label_ids"]) == (True, False, ["INBOX"])

            runtime.warehouse.execute(f"UPDATE {runtime.warehouse.dataset}.gmail_messages SET body_text = NULL, "
                                      "size_bytes = NULL, is_deleted = TRUE WHERE message_id = @id", {"id": spam[1].id})
            gmail.run_gmail_sync(gmail.GmailSyncRequest(sync_type="full"), runtime)
            (row,) = message_state(runtime.warehouse, spam[1].id)
            assert (row["whole"], row["is_deleted"]) == (True, False)


class TestSalesforceRegistry:
    def test_push_runs_record_a_field_change_once(self, runtime, monkeypatch):
        """Push runs read the registry as they wrote it: a field added is recorded once (not rewritten by the next
        run), a field removed is reported once."""
        from cloud_functions.salesforce_sync import sync as salesforce
        from sandbox.company import CompanySize
        from sandbox.salesforce import SalesforceSandbox
        from tests.cloud_functions.test_salesforce_sync import point_at as aim

        def registered(field: str) -> list[dict[str, Any]]:
            return runtime.warehouse.query(f"SELECT changed_at, removed_at FROM {runtime.warehouse.dataset}."
                                           "sf_custom_fields WHERE field_name = @f", {"f": field})

        with SalesforceSandbox(CompanySize(accounts=5, contacts=20, leads=5)) as sandbox:
            sandbox.state.add_field("Contact", "Nickname__c", "string", lambda i: f"nick{i}")
            aim(runtime, sandbox, monkeypatch, salesforce_custom_fields={"Contact": ["*"]})
            salesforce.run_salesforce_sync(salesforce.SalesforceSyncRequest(object_type="Contact", sync_type="full"),
                                           runtime)
            pushed(salesforce, "Contact", runtime)
            sandbox.state.add_field("Contact", "Tier__c", "string", lambda i: "gold")
            added = pushed(salesforce, "Contact", runtime)
            assert added.details["schema"]["columns_added"] == ["tier__c"]
            first = registered("Tier__c")
            pushed(salesforce, "Contact", runtime)
            assert registered("Tier__c") == first and first[0]["removed_at"] is None

            sandbox.state.remove_field("Contact", "Nickname__c")
            gone = pushed(salesforce, "Contact", runtime)
            assert gone.details["schema"]["fields_removed"] == ["Nickname__c"]
            assert "fields_removed" not in pushed(salesforce, "Contact", runtime).details.get("schema", {})
