"""Fixtures of the push tests: work topics on the Pub/Sub emulator, and the receivers pointed at them."""
from __future__ import annotations

import uuid
from typing import Any, Callable

import pytest

from pipeline.work_queue import WorkMessage

SOURCES = ("gmail", "salesforce", "dialpad", "hubspot")


class WorkTopics:
    """A work topic and ordered pull subscription per source on the emulator, under a prefix of this test's own."""

    def __init__(self, project: str, prefix: str):
        from google.cloud import pubsub_v1

        self.project, self.prefix = project, prefix
        self.publisher, self.subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        self.subscriptions: dict[str, str] = {}
        for source in (*SOURCES, "gmail-push"):
            topic = self.publisher.create_topic(name=f"projects/{project}/topics/{prefix}{source}").name
            self.subscriptions[source] = self.subscriber.create_subscription(request={
                "name": f"projects/{project}/subscriptions/{prefix}{source}-sub", "topic": topic,
                "enable_message_ordering": True}).name

    def pull(self, source: str, expected: int, decode: Callable[[bytes], Any] = WorkMessage.decode,
             attempts: int = 20) -> list[Any]:
        """Pulls and acknowledges until `expected` messages came (or attempts ran out); returns them decoded."""
        found: list[Any] = []
        for _ in range(attempts):
            response = self.subscriber.pull(request={"subscription": self.subscriptions[source], "max_messages": 100},
                                            timeout=10)
            if response.received_messages:
                self.subscriber.acknowledge(request={"subscription": self.subscriptions[source],
                                                     "ack_ids": [m.ack_id for m in response.received_messages]})
                found += [decode(m.message.data) for m in response.received_messages]
            if len(found) >= expected:
                break
        return found

    def close(self) -> None:
        self.subscriber.close()


@pytest.fixture
def work_topics(pubsub_emulator, settings, monkeypatch):
    """(settings publishing work and Gmail notifications to topics of this test's own, the topics)."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    topics = WorkTopics(settings.gcp_project, prefix)
    yield settings.model_copy(update={"work_topic_prefix": prefix, "gmail_push_topic": f"{prefix}gmail-push"}), topics
    topics.close()


@pytest.fixture(autouse=True)
def forget_run_starts(monkeypatch):
    """Each test starts with no run starts remembered by push.coalesce (they are process-wide)."""
    import push.coalesce

    monkeypatch.setattr(push.coalesce, "_starts", {})
