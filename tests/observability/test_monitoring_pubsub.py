"""Run errors reach the real Pub/Sub emulator with the documented body and attributes."""
from __future__ import annotations

import json

import pytest

from observability.monitoring import ErrorPublisher
from pipeline.runner import run_sync
from tests.helpers import ListSource, pull_messages

pytestmark = pytest.mark.emulator


def test_failed_run_publishes_and_is_marked_failed(pubsub_subscription, warehouse):
    """A failing run publishes one structured message and its etl_runs row says failed with the error text."""
    settings, subscriber, subscription = pubsub_subscription
    source = ListSource(20, page_size=5)
    source.fail_at_page = 1
    with pytest.raises(ConnectionAbortedError) as failure:
        run_sync(source.job(), warehouse=warehouse, publisher=ErrorPublisher(settings), settings=settings)
    (message,) = pull_messages(subscriber, subscription, expected=1)
    body = json.loads(message.data)
    assert dict(message.attributes) == {"source": "testsource", "severity": "ERROR"}
    assert body["source"] == "testsource" and body["run_id"] == failure.value.run_id
    assert body["error_type"] == "ConnectionAbortedError"
    assert body["message"] == "injected failure at page 1"
    assert body["context"]["stream"] == "Account" and body["context"]["rows_loaded"] == 5
    (run,) = warehouse.query("SELECT run_id, status, error_message FROM sales_intelligence.etl_runs")
    assert run == {"run_id": failure.value.run_id, "status": "failed", "error_message": "injected failure at page 1"}


def test_publish_returns_the_message_id(pubsub_subscription):
    """publish() hands back the id Pub/Sub gave the message."""
    settings, subscriber, subscription = pubsub_subscription
    message_id = ErrorPublisher(settings).publish(source="gmail", run_id="r1", error=ValueError("boom"),
                                                  context={"mailbox": "a@b.com"}, severity="WARNING")
    (message,) = pull_messages(subscriber, subscription, expected=1)
    assert message.message_id == message_id
    assert message.attributes["severity"] == "WARNING"
    assert json.loads(message.data)["context"] == {"mailbox": "a@b.com"}
