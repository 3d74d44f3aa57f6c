"""Turns a run function into a Cloud Functions HTTP handler: validate, run, answer JSON.

Only POST starts a run (405 otherwise). 200 with the run's summary, whose `status` may be `skipped`
when another run holds the stream; 400 with the validation message (or a BadRequest the run raises
before starting, e.g. a mailbox that is not configured); 500 with the error type, its (redacted) text
and the run id when the run failed. A failure before any run started (a missing or malformed secret,
an unreachable warehouse) is recorded too: a failed etl_runs row and the error published. With DISPATCH=queue a
source's trigger runs nothing itself: it publishes one work message per stream it names (pipeline.worker.enqueue)
and answers 200 with `"status": "queued"` and the streams.
"""
from __future__ import annotations

import contextlib
import json
from typing import Any, Callable, TypeVar, cast

from api_clients.connection_check import Check, summary
from config.settings import get_settings
from http_entry.validation import BadRequest, RequestModel, SyncRequest, parse_body
from observability.logger import get_logger, redact
from observability.monitoring import ErrorPublisher
from pipeline.etl_runs import record_failed_invocation
from pipeline.runtime import Runtime, get_runtime
from pipeline.worker import WORK_SOURCES, enqueue

log = get_logger(__name__)
M = TypeVar("M", bound=RequestModel)
JSON_HEADERS = {"Content-Type": "application/json"}


def _answer(status: int, body: dict[str, Any]) -> tuple[str, int, dict[str, str]]:
    return redact(json.dumps(body, default=str)), status, JSON_HEADERS


def _record(source: str, parsed: RequestModel, error: Exception) -> str | None:
    """The run id of the failed run: the run's own, or one recorded now for a failure before it started."""
    try:
        runtime = get_runtime()
        return record_failed_invocation(
            runtime.warehouse, runtime.publisher, source=source, error=error,
            stream=getattr(parsed, "object_type", None) or getattr(parsed, "mailbox_email", None),
            sync_type=getattr(parsed, "sync_type", None), trigger=parsed.trigger)
    except Exception:  # no warehouse to record in (another process holds the DuckDB file, ...): the error sink
        log.exception("could not record the failed invocation")
        with contextlib.suppress(Exception):
            ErrorPublisher(get_settings()).publish(source=source, run_id=None, error=error,
                                                   context={"stage": "before the run started"})
        return None


def handle_request(request: Any, model: type[M], run: Callable[[M, Runtime], dict[str, Any]], *,
                   source: str, check: Callable[[Runtime], list[Check]] | None = None) -> tuple[str, int, dict[str, str]]:
    """Validates the Flask request into model, calls run(parsed, runtime) and answers JSON; with `"check": true`
    in the body, the source's connection check instead (200, its status `ok` or `failed`, each check with its fix)."""
    if request.method != "POST":
        return _answer(405, {"error": f"method {request.method} not allowed; use POST"})
    try:
        parsed = parse_body(request.get_data(cache=False), model)
    except BadRequest as error:
        return _answer(400, {"error": str(error)})
    if getattr(parsed, "check", False):
        if check is None:
            return _answer(400, {"error": f"check: {source} reads no API, so it has no connection check"})
        try:
            return _answer(200, {"source": source, **summary(check(get_runtime()))})
        except Exception as error:  # the runtime itself (settings, warehouse) could not be had
            log.exception("connection check failed")
            return _answer(500, {"error": str(error), "error_type": type(error).__name__})
    try:
        runtime = get_runtime()
        if runtime.settings.dispatch == "queue" and source in WORK_SOURCES:  # the source's workers run its streams
            return _answer(200, enqueue(source, cast(SyncRequest, parsed), runtime))
        return _answer(200, run(parsed, runtime))
    except BadRequest as error:  # refused on what the body asks for in this deployment (e.g. an unknown mailbox)
        return _answer(400, {"error": str(error)})
    except Exception as error:  # recorded and published (by the run, or here); the caller gets a 500
        log.exception("run failed")
        return _answer(500, {"error": str(error), "error_type": type(error).__name__,
                             "run_id": _record(source, parsed, error)})
