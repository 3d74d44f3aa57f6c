"""An RFC 822 message (Gmail `format=raw`, or an mbox entry) -> gmail_messages and gmail_participants rows.

Pure, standard library `email` only. Messy mail never raises: unknown or missing charsets fall back
to UTF-8 then Latin-1, encoded-words are decoded, groups and undisclosed-recipients give their members
(or nothing), a missing Date falls back to internalDate, bodies are cut at a size cap with a flag. A
message with no usable date at all, or no id, is a rejected record.
"""
from __future__ import annotations

import base64
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from utils.email_normalizer import parse_address_list
from utils.sync_runner import RejectedRecord
from utils.values import to_datetime

ROLES = (("from", "From"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc"), ("reply_to", "Reply-To"), ("sender", "Sender"))


def decode_raw(raw_b64url: str) -> bytes:
    """The bytes of Gmail's base64url `raw` field (padding restored)."""
    return base64.urlsafe_b64decode(raw_b64url + "=" * (-len(raw_b64url) % 4))


def header_text(message: Message, name: str) -> str | None:
    """A header's value with RFC 2047 encoded-words decoded; None when absent."""
    value = message.get(name)
    if value is None:
        return None
    try:
        text = str(make_header(decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError, TypeError):
        text = str(value)
    return " ".join(text.split()) or None


def part_text(part: Message) -> str:
    """A text part's content, whatever its declared charset."""
    payload = part.get_payload(decode=True) or b""
    for charset in (part.get_content_charset(), "utf-8"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _sent_at(message: Message, internal: Any) -> Any:
    date = message.get("Date")
    if date:
        try:
            parsed = parsedate_to_datetime(str(date))
            if parsed is not None:
                return to_datetime(parsed)
        except (TypeError, ValueError, IndexError):
            pass
    try:
        return to_datetime(internal)
    except ValueError:
        return None


def message_rows(resource: dict[str, Any], mailbox: str, body_max_chars: int,
                 ingest_source: str = "api") -> dict[str, list[dict[str, Any]]]:
    """Rows of one message resource (`id`, `threadId`, `labelIds`, `internalDate`, `raw`, ...)."""
    message_id = resource.get("id")
    if not message_id:
        raise RejectedRecord("message without an id")
    raw = resource.get("raw_bytes")
    if raw is None:
        if not resource.get("raw"):
            raise RejectedRecord("message without raw content")
        raw = decode_raw(resource["raw"])
    message = message_from_bytes(raw, policy=policy.compat32)
    sent_at = _sent_at(message, resource.get("internalDate"))
    if sent_at is None:
        raise RejectedRecord("no Date header and no internalDate")
    text, html, attachments = [], [], []
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        disposition = (part.get("Content-Disposition") or "").lower()
        if filename or "attachment" in disposition:
            attachments.append({"filename": filename,
                                "mime_type": part.get_content_type(),
                                "size_bytes": len(part.get_payload(decode=True) or b"")})
        elif part.get_content_type() == "text/plain":
            text.append(part_text(part))
        elif part.get_content_type() == "text/html":
            html.append(part_text(part))
    body_text, body_html = "\n".join(text) or None, "\n".join(html) or None
    truncated = any(b is not None and len(b) > body_max_chars for b in (body_text, body_html))
    participants, seen = [], set()
    for role, header in ROLES:
        for address in parse_address_list(_raw_header(message, header)):
            if (role, address.email) in seen:
                continue
            seen.add((role, address.email))
            participants.append({"mailbox": mailbox, "message_id": message_id, "role": role, "email": address.email,
                                 "display_name": address.display_name, "raw_address": address.raw,
                                 "domain": address.domain, "sent_at": sent_at})
    rfc_id = header_text(message, "Message-ID")
    row = {
        "mailbox": mailbox, "message_id": message_id, "thread_id": resource.get("threadId"),
        "rfc822_message_id": rfc_id.strip().strip("<>") if rfc_id else None,
        "subject": header_text(message, "Subject"),
        "from_email": next((p["email"] for p in participants if p["role"] == "from"), None),
        "sent_at": sent_at, "internal_date": _lenient_datetime(resource.get("internalDate")),
        "label_ids": list(resource.get("labelIds") or []), "snippet": resource.get("snippet"),
        "body_text": body_text[:body_max_chars] if body_text else None,
        "body_html": body_html[:body_max_chars] if body_html else None,
        "body_truncated": truncated, "attachments": attachments,
        "size_bytes": int(resource.get("sizeEstimate") or len(raw)), "history_id": resource.get("historyId"),
        "is_deleted": False, "ingest_source": ingest_source,
    }
    return {"gmail_messages": [row], "gmail_participants": participants}


def _raw_header(message: Message, name: str) -> str | None:
    # Address lists are split before decoding, so a display name holding an encoded comma stays whole.
    values = message.get_all(name)
    return ", ".join(str(v) for v in values) if values else None


def _lenient_datetime(value: Any) -> Any:
    try:
        return to_datetime(value)
    except ValueError:
        return None
