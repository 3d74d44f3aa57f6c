"""Zoom webhook requests: the x-zm-signature check and the endpoint URL validation answer. Pure: no I/O.

Zoom signs each event: x-zm-signature = "v0=" + hex(HMAC-SHA256(secret token, "v0:" + x-zm-request-timestamp +
":" + raw body)). Before sending events to a URL it posts an `endpoint.url_validation` event with a plainToken;
the answer must be {"plainToken": ..., "encryptedToken": hex(HMAC-SHA256(secret token, plainToken))}. For the push
path (a receiver that starts a run when `recording.transcript_completed` arrives); the sandbox sends both.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Mapping

MAX_AGE_SECONDS = 300  # a signed request older than this is refused (a replay)


def signature(secret_token: str, timestamp: str, body: bytes) -> str:
    """The x-zm-signature of a request body sent at `timestamp` (seconds since the epoch, as text)."""
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret_token.encode(), message, hashlib.sha256).hexdigest()


def verified(secret_token: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """True when the request carries a valid signature made within MAX_AGE_SECONDS of now."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp, given = lowered.get("x-zm-request-timestamp", ""), lowered.get("x-zm-signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(signature(secret_token, timestamp, body), given)


def url_validation_answer(secret_token: str, event: dict[str, Any]) -> dict[str, str]:
    """The answer to an endpoint.url_validation event."""
    plain = str(event["payload"]["plainToken"])
    return {"plainToken": plain,
            "encryptedToken": hmac.new(secret_token.encode(), plain.encode(), hashlib.sha256).hexdigest()}


def transcript_completed(body: bytes) -> dict[str, Any] | None:
    """The meeting (uuid, host_id, start_time) of a recording.transcript_completed event, else None."""
    event = json.loads(body or b"{}")
    if event.get("event") != "recording.transcript_completed":
        return None
    meeting = (event.get("payload") or {}).get("object") or {}
    return {key: meeting.get(key) for key in ("uuid", "id", "host_id", "start_time")}
