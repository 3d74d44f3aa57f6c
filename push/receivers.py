"""The webhook receivers: verify, then publish work, then answer; never a sync inline, never the warehouse.

Order, for every request: POST only; a body over WEBHOOK_MAX_BODY_BYTES refused before it is read; the signature
verified over the raw bytes before anything is parsed; a replay refused; then the events parsed, one work message
published for the stream they name (HubSpot: the enrollments of the contacts named; Dialpad: the calls stream,
naming the call), and 200. Every refusal is 401 with the same body, whatever failed; the log line says
which check failed and nothing of the payload or the secret. A receiver opens no warehouse: it answers within
HubSpot's and Dialpad's 5 s timeouts whatever the warehouse does, and a refused request cannot leave anything in it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from config.secrets import SecretStore
from config.settings import Settings
from http_entry.handler import _answer
from observability.logger import get_logger
from pipeline.work_queue import WorkMessage, WorkQueue
from push.replay import ReplayGuard
from push.signatures import HUBSPOT_MAX_AGE_SECONDS, Refused, digest, json_body, verify_dialpad, verify_hubspot

log = get_logger(__name__)
HUBSPOT_SECRET = "hubspot-app-secret"
DIALPAD_SECRET = "dialpad-webhook-secret"
# Dialpad call states whose call is worth merging at once: the call ended, or what it left behind is ready.
DIALPAD_STATES = frozenset({"hangup", "call_transcription", "recording", "voicemail", "missed", "postcall"})
Answer = tuple[str, int, dict[str, str]]


REFUSED = _answer(401, {"error": "unauthorized"})


@dataclass
class Receiver:
    """What one receiver keeps across requests in its instance: the settings, secrets, queue and replay guard."""

    settings: Settings
    secrets: SecretStore
    queue: WorkQueue
    guard: ReplayGuard = field(default_factory=lambda: ReplayGuard(2 * HUBSPOT_MAX_AGE_SECONDS))

    @classmethod
    def from_settings(cls, settings: Settings) -> "Receiver":
        return cls(settings, SecretStore(settings), WorkQueue(settings))


def _body(request: Any, limit: int) -> bytes:
    """The raw body, at most limit bytes; Refused when it is larger (declared or sent)."""
    if request.content_length is not None and request.content_length > limit:
        raise Refused("body over WEBHOOK_MAX_BODY_BYTES")
    data = request.stream.read(limit + 1)
    if len(data) > limit:
        raise Refused("body over WEBHOOK_MAX_BODY_BYTES")
    return data


def receive(request: Any, receiver: Receiver, source: str,
            accept: Callable[[Any, bytes, Receiver], tuple[list[str], list[WorkMessage]]]) -> Answer:
    """One webhook request: accept(request, body, receiver) verifies and reads it into (replay keys, messages)."""
    if request.method != "POST":
        return _answer(405, {"error": "use POST"})
    try:
        keys, messages = accept(request, _body(request, receiver.settings.webhook_max_body_bytes), receiver)
    except Refused as refusal:
        log.warning("webhook refused", extra={"json_fields": {"source": source, "reason": str(refusal)}})
        return REFUSED
    if messages:
        receiver.queue.publish(messages)
    receiver.guard.remember(keys)  # after the publish: a request that failed before it may be retried
    log.info("webhook accepted", extra={"json_fields": {"source": source, "messages": len(messages)}})
    return _answer(200, {"accepted": True, "work_messages": len(messages)})


def accept_hubspot(request: Any, body: bytes, receiver: Receiver) -> tuple[list[str], list[WorkMessage]]:
    """HubSpot's batch of events, verified (signature v3 over the configured URL, 5 minutes), into one message:
    the enrollments stream, hinted with the contacts the events name."""
    url = receiver.settings.hubspot_webhook_url
    if not url:
        raise Refused("HUBSPOT_WEBHOOK_URL is not set: no request can be verified")
    query = request.query_string.decode("latin-1")
    uri = f"{url}?{query}" if query else url
    signature = request.headers.get("X-HubSpot-Signature-v3")
    verify_hubspot(receiver.secrets.get(HUBSPOT_SECRET), request.method, uri, body, signature,
                   request.headers.get("X-HubSpot-Request-Timestamp"))
    signature_key = "hubspot-signature:" + digest(signature or "")
    if receiver.guard.seen(signature_key):
        raise Refused("replayed request")
    events = json_body(body)
    if not isinstance(events, list) or not all(isinstance(e, dict) and isinstance(e.get("eventId"), int)
                                               for e in events):
        raise Refused("malformed: not a list of events with eventId")
    event_keys = [f"hubspot-event:{e['eventId']}" for e in events]
    if receiver.guard.all_seen(event_keys):
        raise Refused("replayed events")
    contacts = sorted({str(e["objectId"]) for e in events
                       if str(e.get("subscriptionType", "")).startswith("contact.") and e.get("objectId") is not None})
    messages = [WorkMessage("hubspot", "enrollments", reason="push", hint={"contact_ids": contacts})] if contacts else []
    return [signature_key, *event_keys], messages


def accept_dialpad(request: Any, body: bytes, receiver: Receiver) -> tuple[list[str], list[WorkMessage]]:
    """Dialpad's call event, verified (a JWT signed HS256 with the webhook secret), into one message for the calls
    stream naming the call, when its state is one worth merging. The worker's incremental run reads that call
    (and its transcript) from the API and merges it on call_id, idempotently; the queue carries no call body."""
    event = verify_dialpad(receiver.secrets.get(DIALPAD_SECRET), body)
    token_key = "dialpad-token:" + digest(body.strip())
    if receiver.guard.seen(token_key):
        raise Refused("replayed request")
    if event.get("call_id") is None:
        raise Refused("malformed: a call event without call_id")
    if event.get("state") not in DIALPAD_STATES:
        return [token_key], []  # ringing, connected, ...: the call is not over; nothing to merge yet
    hint = {"call_id": str(event["call_id"]), "state": str(event["state"])}
    return [token_key], [WorkMessage("dialpad", "calls", reason="push", hint=hint)]


_receiver: Receiver | None = None


def process_receiver() -> Receiver:
    """The process's receiver (settings, secrets, queue, replay guard), made on first use; no warehouse."""
    global _receiver
    if _receiver is None:
        from config.settings import get_settings

        _receiver = Receiver.from_settings(get_settings())
    return _receiver
