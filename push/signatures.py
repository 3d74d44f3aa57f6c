"""Verifying what a webhook claims before anything of it is parsed: HubSpot's signature v3 and Dialpad's JWT.

Every refusal is a Refused whose reason names the check that failed, never a secret or the payload; the
receivers answer it 401 whatever the reason, so a caller learns nothing about which check it failed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import unquote

import jwt

HUBSPOT_MAX_AGE_SECONDS = 300  # HubSpot: reject a request whose timestamp is older than 5 minutes
# HubSpot signs the URI with these characters decoded ("Validate the v3 request signature"); others stay encoded.
HUBSPOT_DECODED = ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A", "%2C", "%3B")
DIALPAD_ALGORITHM = "HS256"


class Refused(Exception):
    """A request that is not what it claims (forged, stale, replayed, unsigned, malformed): answered 401."""


def hubspot_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the characters HubSpot lists decoded, case-insensitively, nothing else."""
    for encoded in HUBSPOT_DECODED:
        uri = uri.replace(encoded, unquote(encoded)).replace(encoded.lower(), unquote(encoded))
    return uri


def hubspot_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(app secret, method + URI + body + timestamp)): what HubSpot sends in X-HubSpot-Signature-v3."""
    message = method.encode() + hubspot_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify_hubspot(secret: str, method: str, uri: str, body: bytes, signature: str | None, timestamp: str | None,
                   now: float | None = None) -> None:
    """Returns when the request is HubSpot's and at most 5 minutes old; Refused otherwise."""
    if not signature or not timestamp:
        raise Refused("unsigned: X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp missing")
    if not timestamp.isdigit():
        raise Refused("malformed timestamp")
    age = (now if now is not None else time.time()) - int(timestamp) / 1000
    if age > HUBSPOT_MAX_AGE_SECONDS or age < -HUBSPOT_MAX_AGE_SECONDS:
        raise Refused("stale timestamp")
    expected = hubspot_signature(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Refused("signature mismatch")


def verify_dialpad(secret: str, body: bytes) -> dict[str, Any]:
    """The event a Dialpad webhook body carries: the body is a JWT signed HS256 with the webhook secret. Refused
    when it is not a JWT, is signed otherwise (another secret, `alg: none`, any other algorithm) or its payload is
    not a JSON object."""
    token = body.strip()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Refused("not a JWT") from None
    if header.get("alg") != DIALPAD_ALGORITHM:
        raise Refused("JWT algorithm refused")  # alg none and every other algorithm: only HS256 is Dialpad's
    try:
        # exp is verified when present (a Dialpad event may carry none); nothing else is required of the claims.
        claims = jwt.decode(token, secret, algorithms=[DIALPAD_ALGORITHM], options={"verify_aud": False})
    except jwt.PyJWTError:
        raise Refused("JWT signature or claims invalid") from None
    if not isinstance(claims, dict):
        raise Refused("JWT payload is not an object")
    return claims


def dialpad_token(secret: str, event: dict[str, Any]) -> bytes:
    """A Dialpad webhook body for event (what the sandbox and the tests send)."""
    return jwt.encode(event, secret, algorithm=DIALPAD_ALGORITHM).encode()


def digest(data: bytes | str) -> str:
    """A replay-store key for a signature or token: its SHA-256, so the store holds no signed material."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def json_body(body: bytes) -> Any:
    """The verified body parsed; Refused when it is not JSON (after the signature held: a malformed request)."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Refused("body is not JSON") from None
