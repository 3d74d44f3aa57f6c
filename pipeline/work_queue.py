"""The work queue: one message per stream to run, on its source's own Pub/Sub topic.

A scheduled or manual trigger of a source (DISPATCH=queue) publishes one WorkMessage per stream (each mailbox,
each Salesforce object, ...) on `<WORK_TOPIC_PREFIX><source>`; the source's worker (Pub/Sub-triggered) runs that
one stream. A run that ends partial publishes its own continuation; push receivers (Gmail notifications,
webhooks) publish a message for the stream they name. The stream is the message's ordering key, so one stream's
messages are delivered one at a time, in order; a duplicate or reordered delivery is harmless because a run
only lands rows that merge idempotently.
"""
from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Sequence

from config.settings import Settings

Reason = Literal["schedule", "manual", "continuation", "push", "retry"]
REASONS = ("schedule", "manual", "continuation", "push", "retry")
SYNC_TYPES = ("incremental", "full")


class PoisonMessage(ValueError):
    """A work message that can never run (not JSON, a field missing or of the wrong type): acknowledged and
    recorded, never retried."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass(frozen=True)
class WorkMessage:
    """One stream of one source to run.

    resume: the watermark to continue from (a continuation names where its run stopped; None: the stored one).
    hint: what a push named (e.g. {"history_id": "123"} or {"contact_ids": [...]}), for the source to use or not.
    """

    source: str
    stream: str
    sync_type: str = "incremental"
    reason: str = "schedule"
    resume: str | None = None
    hint: dict[str, Any] = field(default_factory=dict)
    published_at: str = field(default_factory=_now)
    chain: int = 0  # continuations so far in this chain (a backfill's position; bounded by WORK_MAX_CHAIN)

    @property
    def ordering_key(self) -> str:
        return f"{self.source}/{self.stream}"

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> "WorkMessage":
        """The message a worker received; PoisonMessage when it is not one."""
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise PoisonMessage(f"work message is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise PoisonMessage("work message is not a JSON object")
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise PoisonMessage(f"work message has unknown fields: {sorted(unknown)}")
        for name in ("source", "stream"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise PoisonMessage(f"work message lacks {name!r}")
        if body.get("sync_type", "incremental") not in SYNC_TYPES:
            raise PoisonMessage(f"work message sync_type must be one of {SYNC_TYPES}")
        if body.get("reason", "schedule") not in REASONS:
            raise PoisonMessage(f"work message reason must be one of {REASONS}")
        if not isinstance(body.get("hint", {}), dict) or not isinstance(body.get("chain", 0), int):
            raise PoisonMessage("work message hint must be an object and chain an integer")
        if body.get("resume") is not None and not isinstance(body["resume"], str):
            raise PoisonMessage("work message resume must be a string")
        return cls(**body)

    def continuation(self, resume: str | None) -> "WorkMessage":
        """The message that continues this stream where its run stopped: incremental from its watermark, as the next
        scheduled run continues a partial one inline (a full sync of a windowed source would start over)."""
        return WorkMessage(self.source, self.stream, "incremental", "continuation", resume, {}, _now(), self.chain + 1)


def topic_path(settings: Settings, name: str) -> str:
    """A Pub/Sub topic of the project: the one place its path is spelt."""
    return f"projects/{settings.gcp_project}/topics/{name}"


def subscription_path(settings: Settings, name: str) -> str:
    return f"projects/{settings.gcp_project}/subscriptions/{name}"


def work_topic(settings: Settings, source: str) -> str:
    return topic_path(settings, f"{settings.work_topic_prefix}{source}")


class WorkQueue:
    """Publishes work messages to their source's topic (the Pub/Sub emulator when PUBSUB_EMULATOR_HOST is set),
    each with its stream as ordering key; publish() returns once Pub/Sub has stored every message."""

    def __init__(self, settings: Settings, publisher: Any = None):
        self._settings = settings
        self._publisher = publisher
        self._lock = threading.Lock()

    def _client(self) -> Any:
        with self._lock:
            if self._publisher is None:
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                self._publisher = pubsub_v1.PublisherClient(
                    publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
            return self._publisher

    def publish(self, messages: Sequence[WorkMessage]) -> list[str]:
        """Publishes every message and waits until each is stored; returns their message ids."""
        client = self._client()
        published = [(m, client.publish(work_topic(self._settings, m.source), m.encode(), ordering_key=m.ordering_key,
                                         source=m.source, stream=m.stream, reason=m.reason)) for m in messages]
        ids = []
        for message, future in published:
            try:
                ids.append(future.result(timeout=60))
            except Exception:  # a failed publish pauses its ordering key in the client until resumed
                client.resume_publish(work_topic(self._settings, message.source), message.ordering_key)
                raise
        return ids
