"""Run errors published as structured JSON: to Pub/Sub in the cloud, to a local JSONL file on a laptop.

Body: {source, run_id, error_type, message, context, severity, published_at}; attributes: source and
severity, so a subscription can filter without decoding. Every text goes through observability.logger.redact,
so no secret reaches the topic.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any, Mapping

from config.settings import Settings
from observability.logger import get_logger, redact

log = get_logger(__name__)

MAX_MESSAGE_CHARS = 4000


def error_body(*, source: str, run_id: str | None, error: BaseException, context: Mapping[str, Any] | None,
               severity: str) -> dict[str, Any]:
    """The JSON body of an error message, secrets redacted."""
    body = {
        "source": source,
        "run_id": run_id,
        "error_type": type(error).__name__,
        "message": str(error)[:MAX_MESSAGE_CHARS],
        "context": dict(context or {}),
        "severity": severity,
        "published_at": datetime.now(timezone.utc).isoformat(),
    }
    return json.loads(redact(json.dumps(body, default=str)))


class ErrorPublisher:
    """Publishes run errors to the configured sink."""

    def __init__(self, settings: Settings, publisher: Any = None):
        self._settings = settings
        self._publisher = publisher
        self._lock = threading.Lock()

    @property
    def topic_path(self) -> str:
        return f"projects/{self._settings.gcp_project}/topics/{self._settings.pubsub_topic}"

    def publish(self, *, source: str, run_id: str | None, error: BaseException,
                context: Mapping[str, Any] | None = None, severity: str = "ERROR") -> str | None:
        """Publishes one error; returns the Pub/Sub message id (None for the file sink)."""
        body = error_body(source=source, run_id=run_id, error=error, context=context, severity=severity)
        data = json.dumps(body).encode("utf-8")
        if self._settings.error_sink == "file":
            path = self._settings.errors_file
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, path.open("ab") as handle:
                handle.write(data + b"\n")
            return None
        with self._lock:
            if self._publisher is None:
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                self._publisher = pubsub_v1.PublisherClient()
        future = self._publisher.publish(self.topic_path, data, source=source, severity=severity)
        message_id = future.result(timeout=60)
        log.info("error published", extra={"json_fields": {"pubsub_message_id": message_id}})
        return message_id
