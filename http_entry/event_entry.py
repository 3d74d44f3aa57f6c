"""Turns a run function into a CloudEvent handler (Eventarc): run it on the event's data, log the answer.

A CloudEvent function has no answer body: success is returning, and an exception makes Eventarc deliver the
event again (with retries on, for up to 24 hours with backoff). So a run that is not finished raises, and so
does a failure; a failure before any run started is recorded first, as the HTTP handler records it: a failed
etl_runs row with the reason, and the error published.
"""
from __future__ import annotations

from typing import Any, Callable

from observability.logger import get_logger
from pipeline.etl_runs import record_failed_invocation
from pipeline.runtime import Runtime, get_runtime

log = get_logger(__name__)


def handle_event(cloud_event: Any, run: Callable[[dict[str, Any], Runtime], dict[str, Any]], *, source: str,
                 not_finished: type[Exception] | None = None) -> None:
    """Calls run(event data, runtime); logs its summary; re-raises what it raises, recorded."""
    data = dict(cloud_event.data or {})
    runtime = get_runtime()
    try:
        summary = run(data, runtime)
    except Exception as error:
        if not_finished is not None and isinstance(error, not_finished):
            log.warning("event not finished; Eventarc retries it", extra={"json_fields": {"reason": str(error)}})
            raise
        run_id = record_failed_invocation(runtime.warehouse, runtime.publisher, source=source, error=error,
                                          stream=data.get("name"), trigger="eventarc")
        log.exception("event failed", extra={"json_fields": {"run_id": run_id, "event_id": cloud_event["id"]}})
        raise
    log.info("event handled", extra={"json_fields": {
        "event_id": cloud_event["id"], "run_id": summary.get("run_id"), "status": summary.get("status"),
        "drop_status": summary.get("drop_status"), "rows_loaded": summary.get("rows_loaded")}})
