"""The sandboxes push like the services: HubSpot's signed events and Dialpad's JWT call events reach the real
receivers, become work, and the worker's run merges what changed; the setup helper registers Dialpad's webhook."""
from __future__ import annotations

import time

import pytest

import push.receivers
from cloud_functions.dialpad_sync.sync import DialpadSyncRequest, run_dialpad_sync
from cloud_functions.hubspot_sync.sync import HubSpotSyncRequest, run_hubspot_sync
from push.receivers import DIALPAD_STATES, Receiver
from push.work import run_message
from sandbox.dialpad import DialpadSandbox
from sandbox.hubspot import HubSpotSandbox
from scripts.setup_push import main as setup_push
from tests.helpers import point_at

pytestmark = pytest.mark.emulator
DS = "sales_intelligence"
HUBSPOT_SECRET = "hubspot-app-secret-" + "h" * 48
DIALPAD_SECRET = "dialpad-webhook-secret-" + "d" * 48


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the wait"
        time.sleep(0.05)


class TestHubSpotPush:
    def test_enrollment_posted_signed_then_merged(self, work_topics, runtime, function_server, monkeypatch):
        """An enrollment in the sandbox is posted signed to hubspot_webhook (200), published as enrollment work
        naming the contact, and the worker's run merges the new enrollment."""
        settings, topics = work_topics
        monkeypatch.setenv("HUBSPOT_APP_SECRET", HUBSPOT_SECRET)
        with HubSpotSandbox(contacts=40) as sandbox:
            point_at(runtime, sandbox, monkeypatch, work_topic_prefix=settings.work_topic_prefix)
            run_hubspot_sync(HubSpotSyncRequest(), runtime)
            server = function_server("hubspot_webhook")
            receiver = Receiver.from_settings(runtime.settings.model_copy(
                update={"hubspot_webhook_url": server.url}))
            monkeypatch.setattr(push.receivers, "_receiver", receiver)
            sandbox.state.configure_webhooks(server.url, HUBSPOT_SECRET)
            contact = next(c for c in sandbox.state.contacts if c["id"] not in sandbox.state.enrollments)
            sandbox.state.enroll(contact["id"], sequence_index=1)
            wait_for(lambda: sandbox.state.deliveries)
            assert sandbox.state.deliveries == [200]
            (message,) = topics.pull("hubspot", 1)
            assert message.hint == {"contact_ids": [contact["id"]]}
            assert run_message(message, runtime)["status"] == "success"
            rows = runtime.warehouse.query(f"SELECT sequence_id FROM {DS}.hubspot_sequence_enrollments "
                                           f"WHERE contact_id = @c", {"c": contact["id"]})
            assert [r["sequence_id"] for r in rows] == [sandbox.state.enrollments[contact["id"]]["sequenceId"]]

    def test_wrong_app_secret_is_refused_and_not_retried(self, work_topics, runtime, function_server, monkeypatch):
        """Events signed with another secret are answered 401 (HubSpot does not retry a 4xx) and publish nothing."""
        settings, topics = work_topics
        monkeypatch.setenv("HUBSPOT_APP_SECRET", HUBSPOT_SECRET)
        with HubSpotSandbox(contacts=10) as sandbox:
            server = function_server("hubspot_webhook")
            monkeypatch.setattr(push.receivers, "_receiver", Receiver.from_settings(settings.model_copy(
                update={"hubspot_webhook_url": server.url})))
            sandbox.state.configure_webhooks(server.url, "not-the-app-secret-" + "x" * 40)
            sandbox.state.modify(sandbox.state.contacts[0]["id"])
            wait_for(lambda: sandbox.state.deliveries)
            time.sleep(0.5)
            assert sandbox.state.deliveries == [401]


class TestDialpadPush:
    def test_setup_then_ended_call_merged_with_transcript(self, work_topics, runtime, function_server, monkeypatch):
        """setup_push dialpad subscribes the receiver to call states; a call that ends posts hangup (and
        call_transcription) events, verified and published as calls work; the worker's run merges the call and
        its transcript once, however many events named it."""
        settings, topics = work_topics
        monkeypatch.setenv("DIALPAD_WEBHOOK_SECRET", DIALPAD_SECRET)
        with DialpadSandbox(calls=30, transcript_share=1.0) as sandbox:
            point_at(runtime, sandbox, monkeypatch, work_topic_prefix=settings.work_topic_prefix)
            import pipeline.runtime

            monkeypatch.setattr(pipeline.runtime, "_runtime", runtime)
            run_dialpad_sync(DialpadSyncRequest(sync_type="full", days=2), runtime)
            server = function_server("dialpad_webhook")
            monkeypatch.setattr(push.receivers, "_receiver", Receiver.from_settings(runtime.settings))
            assert setup_push(["dialpad", "--hook-url", server.url]) == 0
            (subscription,) = sandbox.state.call_subscriptions
            assert set(subscription["call_states"]) == DIALPAD_STATES
            call = sandbox.state.end_call()
            transcribed = str(call["call_id"]) in sandbox.state.transcripts
            events = 2 if transcribed else 1
            wait_for(lambda: len(sandbox.state.deliveries) >= events)
            assert [status for _state, status in sandbox.state.deliveries] == [200] * events
            work = topics.pull("dialpad", events)
            assert {m.hint["call_id"] for m in work} == {str(call["call_id"])}
            results = [run_message(message, runtime) for message in work]
            assert results[0]["status"] == "success" and results[1:] == [None] * (events - 1)
            calls = runtime.warehouse.query(f"SELECT call_id FROM {DS}.dialpad_calls WHERE call_id = @c",
                                            {"c": str(call["call_id"])})
            assert len(calls) == 1
            if transcribed:
                transcripts = runtime.warehouse.query(
                    f"SELECT call_id FROM {DS}.dialpad_transcripts WHERE call_id = @c", {"c": str(call["call_id"])})
                assert len(transcripts) == 1
