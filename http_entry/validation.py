"""Request models for the HTTP entry points, and the one place a request body becomes one of them.

Unknown fields, wrong types (strictly: "7" is not a number, true is not a number, "yes" is not a
boolean), out-of-range values, malformed JSON of any kind (nesting too deep, integers too long, bad
UTF-8), bodies that are not a JSON object and bodies over MAX_BODY_BYTES are refused with BadRequest,
whose message says what is wrong (HTTP 400).
"""
from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_BODY_BYTES = 64 * 1024
M = TypeVar("M", bound="RequestModel")


class BadRequest(ValueError):
    """A request the entry point refuses; the message is safe to return to the caller."""


class RequestModel(BaseModel):
    """What every entry point's body shares: no unknown fields, and who triggered the run."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    trigger: Literal["scheduler", "http", "local"] = "http"


class SyncRequest(RequestModel):
    """Body of a source sync."""

    sync_type: Literal["incremental", "full"] = "incremental"
    # True: no sync; the source's connection check instead (api_clients.connection_check), answered as JSON.
    check: bool = False


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: 'field: what is wrong'."""
    problems = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "body"
        if item["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown field")
        else:
            problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


def parse_body(raw: bytes | None, model: type[M]) -> M:
    """The request body validated into model; BadRequest saying what is wrong otherwise."""
    raw = raw or b""
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    data: Any = {}
    if raw.strip():
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as error:
            # JSONDecodeError and UnicodeDecodeError are ValueErrors, as is an integer of more digits than
            # Python converts; RecursionError is nesting deeper than the parser goes.
            reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:200]
            raise BadRequest(f"request body is not valid JSON: {reason}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"request body must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadRequest(describe_validation_error(error)) from None
