"""Turns a run function into a Cloud Functions HTTP handler: validate, run, answer JSON.

200 with the run's summary; 400 with the validation message (or a BadRequest the run raises before
starting, e.g. a mailbox that is not configured); 500 with the error type and its
(redacted) text when the run failed, after the run itself has recorded and published the error.
"""
from __future__ import annotations

import json
from typing import Any, Callable, TypeVar

from utils.logger import get_logger, redact
from utils.validation import BadRequest, RequestModel, parse_body

log = get_logger(__name__)
M = TypeVar("M", bound=RequestModel)
JSON_HEADERS = {"Content-Type": "application/json"}


def _answer(status: int, body: dict[str, Any]) -> tuple[str, int, dict[str, str]]:
    return redact(json.dumps(body, default=str)), status, JSON_HEADERS


def handle_request(request: Any, model: type[M], run: Callable[[M], dict[str, Any]]) -> tuple[str, int, dict[str, str]]:
    """Validates the Flask request into model, calls run(parsed) and answers JSON."""
    if request.method not in ("POST", "GET"):
        return _answer(405, {"error": f"method {request.method} not allowed; use POST"})
    try:
        parsed = parse_body(request.get_data(cache=False), model)
    except BadRequest as error:
        return _answer(400, {"error": str(error)})
    try:
        return _answer(200, run(parsed))
    except BadRequest as error:  # refused on what the body asks for in this deployment (e.g. an unknown mailbox)
        return _answer(400, {"error": str(error)})
    except Exception as error:  # the run has recorded and published it; the caller gets a 500
        log.exception("run failed")
        return _answer(500, {"error": str(error), "error_type": type(error).__name__,
                             "run_id": getattr(error, "run_id", None)})
