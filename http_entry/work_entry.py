"""The worker's and the merger's HTTP entry points (queue mode).

`<source>_worker` takes a Pub/Sub push delivery of its source's work topic, {"message": {"data": base64, ...},
"subscription": ..., "deliveryAttempt": n}, and answers 2xx to acknowledge it, anything else to have it delivered
again (Pub/Sub backs off between attempts). A message that can never run (not a work message, another source's,
an unknown stream) and a run that failed on its last allowed attempt (WORK_MAX_ATTEMPTS) are published to the
dead-letter topic and acknowledged; Pub/Sub's own dead-letter policy, at the same count, catches a worker killed
on every attempt. The run itself is recorded in etl_runs like any other (trigger `queue-<reason>`).
"""
from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any

from http_entry.handler import _answer
from observability.logger import get_logger
from pipeline.runtime import Runtime, get_runtime
from pipeline.work_queue import PoisonMessage, WorkMessage, topic_path
from pipeline.worker import dead_letter_body, run_work
from warehouse.landing import LandingWarehouse

log = get_logger(__name__)
MAX_ENVELOPE_BYTES = 64 * 1024
_lock = threading.Lock()
_landing: dict[int, Runtime] = {}


def worker_runtime() -> Runtime:
    """The process runtime with its warehouse landing rows instead of writing them (one per process runtime); with
    DISPATCH=inline (a message left queued after switching back, a push) the process runtime itself: the run merges
    its own rows under its lease, as an HTTP trigger's would, since no merger runs then."""
    base = get_runtime()
    if base.settings.dispatch != "queue":
        return base
    with _lock:
        if id(base) not in _landing:
            _landing.clear()
            _landing[id(base)] = Runtime(base.settings, LandingWarehouse(base.warehouse, base.settings),
                                         base.publisher, base.secrets)
        return _landing[id(base)]


def push_delivery(raw: bytes) -> tuple[bytes, int, str]:
    """The message data, its delivery attempt (1 when Pub/Sub does not count: no dead-letter policy) and id."""
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise ValueError(f"push body is {len(raw)} bytes; the limit is {MAX_ENVELOPE_BYTES}")
    envelope = json.loads(raw)
    message = envelope["message"]
    try:
        data = base64.b64decode(message.get("data", ""), validate=True)
    except binascii.Error as error:
        raise ValueError(f"message data is not base64: {error}") from None
    attempt = envelope.get("deliveryAttempt") or 1
    if not isinstance(attempt, int):
        raise ValueError("deliveryAttempt is not a number")
    return data, attempt, str(message.get("messageId") or message.get("message_id") or "")


def handle_work(request: Any, source: str) -> tuple[str, int, dict[str, str]]:
    """One push delivery of source's work topic: run it, or say why not (see the module's docstring)."""
    if request.method != "POST":
        return _answer(405, {"error": f"method {request.method} not allowed; use POST"})
    try:
        data, attempt, message_id = push_delivery(request.get_data(cache=False))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return _answer(400, {"error": f"not a Pub/Sub push delivery: {error}"})
    runtime = worker_runtime()
    return deliver(data, attempt, message_id, source, runtime)


def deliver(data: bytes, attempt: int, message_id: str, source: str, runtime: Runtime,
            publisher: Any = None) -> tuple[str, int, dict[str, str]]:
    """Runs one delivered work message; 200 when done or dead-lettered, 500 to have it delivered again."""
    try:
        message = WorkMessage.decode(data)
        if message.source != source:
            raise PoisonMessage(f"a {message.source} work message reached the {source} worker")
        return _answer(200, run_work(message, runtime))
    except Exception as error:
        poison = isinstance(error, PoisonMessage)
        if poison or attempt >= runtime.settings.work_max_attempts:
            dead_letter(runtime, data, error, attempt, message_id, publisher)
            return _answer(200, {"status": "dead_lettered", "error": str(error), "attempts": attempt})
        log.warning("work failed; Pub/Sub will deliver it again",
                    extra={"json_fields": {"attempt": attempt, "error_type": type(error).__name__}})
        return _answer(500, {"error": str(error), "error_type": type(error).__name__, "attempt": attempt,
                             "run_id": getattr(error, "run_id", None)})


def dead_letter(runtime: Runtime, data: bytes, error: BaseException, attempt: int, message_id: str,
                publisher: Any = None) -> str:
    """Publishes the given-up message, with why, to WORK_DEAD_LETTER_TOPIC; returns the new message's id."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    settings = runtime.settings
    client = publisher or pubsub_v1.PublisherClient()
    topic = topic_path(settings, settings.work_dead_letter_topic)
    log.error("work message dead-lettered", extra={"json_fields": {"attempts": attempt, "message_id": message_id,
                                                                   "error_type": type(error).__name__}})
    return str(client.publish(topic, dead_letter_body(data, error, attempt, message_id)).result(timeout=60))

