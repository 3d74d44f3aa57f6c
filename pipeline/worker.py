"""The worker: one work message, one stream, one run (DISPATCH=queue), and the trigger that enqueues them.

A trigger of a source (scheduler or person, over HTTP) publishes one WorkMessage per stream it names
(`enqueue`). The source's worker runs the message's stream with run_sync, exactly as the inline path does, but
with the worker's warehouse landing its rows (warehouse.landing) instead of merging them, and without a lease:
the work topic's ordering key hands one stream's messages out one at a time. A run that ends partial because of
its time budget publishes its own continuation (resuming from its watermark), so a backfill runs back to back; a
stop that holds for the whole source (its daily API budget) waits for the schedule. A run that fails raises: the
delivery is retried with backoff, and after WORK_MAX_ATTEMPTS it is dead-lettered (`dead_letter`).

Every source module (cloud_functions/<source>_sync/sync.py) supplies `requested_streams(request, runtime)` and
`stream_job(stream, sync_type, runtime, deadline)`.
"""
from __future__ import annotations

import importlib
import json
import time
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable

from config.sources import registered
from http_entry.validation import BadRequest, SyncRequest
from observability.logger import get_logger, redact
from pipeline.run_origin import push_run
from pipeline.runner import run_sync
from pipeline.runtime import Runtime
from pipeline.work_queue import PoisonMessage, WorkMessage, WorkQueue
from push.coalesce import note_run_started, superseded

log = get_logger(__name__)

# The registered sources with queue mode (config/sources.py), by the module holding their requested_streams and
# stream_job.
WORK_SOURCES = {name: f"cloud_functions.{source.entry_point}.{source.list_streams.rpartition('.')[0]}"
                for name, source in registered().items() if source.list_streams}


def source_module(source: str) -> ModuleType:
    if source not in WORK_SOURCES:
        raise PoisonMessage(f"no worker for source {source!r} (known: {', '.join(WORK_SOURCES)})")
    return importlib.import_module(WORK_SOURCES[source])


def enqueue(source: str, request: SyncRequest, runtime: Runtime, queue: WorkQueue | None = None) -> dict[str, Any]:
    """Publishes one work message per stream the request names; answers what was queued."""
    streams = source_module(source).requested_streams(request, runtime)
    reason = "schedule" if request.trigger == "scheduler" else "manual"
    messages = [WorkMessage(source, stream, request.sync_type, reason) for stream in streams]
    ids = (queue or WorkQueue(runtime.settings)).publish(messages)
    log.info("work enqueued", extra={"json_fields": {"source": source, "streams": len(streams)}})
    return {"source": source, "status": "queued", "streams": streams, "message_ids": ids}


def run_work(message: WorkMessage, runtime: Runtime, queue: WorkQueue | None = None,
             clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Runs the message's stream (runtime's warehouse: a LandingWarehouse in production); publishes the
    continuation of a run stopped by its time budget. PoisonMessage when the message names no stream that can
    run here (an unknown source or stream)."""
    module = source_module(message.source)
    if superseded(message, runtime.warehouse):  # a push whose stream ran since it was published (push/coalesce.py)
        log.info("push superseded by a later run", extra={"json_fields": {"stream": message.stream}})
        return {"source": message.source, "stream": message.stream, "status": "superseded", "continued": False}
    note_run_started(message.source, message.stream)
    deadline = clock() + runtime.settings.run_time_budget_seconds
    inline = runtime.settings.dispatch != "queue"  # no merger: the run writes its rows itself, under its lease
    # A push run bills nothing: its rows go to the fresh tier, its sources skip their per-run look-ups.
    with push_run(message.reason == "push" and not inline):
        try:
            job = module.stream_job(message.stream, message.sync_type, runtime, deadline)
        except BadRequest as error:
            raise PoisonMessage(str(error)) from None
        summary = run_sync(job, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=runtime.settings,
                           trigger=f"queue-{message.reason}", clock=clock, deadline=deadline,
                           sweep_abandoned=inline, resume=message.resume, leased=inline)
    answer = summary.to_dict()
    next_message = continuation(message, answer, runtime.settings.work_max_chain)
    if next_message is not None:
        (queue or WorkQueue(runtime.settings)).publish([next_message])
        log.info("continuation published", extra={"json_fields": {"chain": next_message.chain}})
    answer["continued"] = next_message is not None
    return answer


def continuation(message: WorkMessage, run: dict[str, Any], max_chain: int) -> WorkMessage | None:
    """The message that continues a run stopped partial by its time budget, if its watermark moved (None: the run is
    done, its stop holds for the whole source, its cursor did not move, or the chain is at WORK_MAX_CHAIN)."""
    if run["status"] != "partial" or run.get("ends_invocation") or message.chain >= max_chain:
        return None
    if run["watermark_after"] == run["watermark_before"]:  # nothing to continue from: the schedule retries
        return None
    return message.continuation(run["watermark_after"])


def dead_letter_body(message_data: bytes, error: BaseException, attempts: int, message_id: str) -> bytes:
    """What the dead-letter topic receives: the work message as delivered, and why it was given up."""
    try:
        work: Any = json.loads(message_data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        work = message_data.decode("utf-8", "replace")[:2000]
    return json.dumps({"work": work, "error_type": type(error).__name__, "error": redact(str(error))[:2000],
                       "attempts": attempts, "message_id": message_id,
                       "dead_lettered_at": datetime.now(timezone.utc).isoformat()}, default=str).encode("utf-8")
