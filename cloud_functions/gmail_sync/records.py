"""An RFC 822 message (Gmail `format=raw`, or an mbox entry) -> gmail_messages and gmail_participants rows.

Pure, standard library `email` only, with its modern policy. Headers are read as RFC 6532 allows
(raw UTF-8, as well as encoded-words); messy mail never raises: unknown or missing charsets fall back to
UTF-8 then Latin-1, groups and undisclosed-recipients give their members (or nothing), a missing or
impossible Date (year 0001, year 9999 past UTC) falls back to internalDate, bodies are cut at a size cap
with a flag. An address that cannot be read is a rejected part of the message (its text and reason in
rejected_records); the rest of the message is kept. A message with no usable date at all, or no id, is
a rejected record.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from pipeline.runner import REJECTED_PARTS, Reject, RejectedRecord
from transform.email_normalizer import parse_address_list
from transform.values import to_datetime

# Gmail's system labels of what is no mail for these tables: unsent drafts (a new message at every save) and
# spam and trash (a message moved there later is flagged is_deleted). CHAT transcripts are kept, labelled CHAT.
NOT_MAIL_LABELS = frozenset({"DRAFT", "SPAM", "TRASH"})
ROLES = (("from", "From"), ("to", "To"), ("cc", "Cc"), ("bcc", "Bcc"), ("reply_to", "Reply-To"), ("sender", "Sender"))


def decode_raw(raw_b64url: str) -> bytes:
    """The bytes of Gmail's base64url `raw` field (padding restored)."""
    return base64.urlsafe_b64decode(raw_b64url + "=" * (-len(raw_b64url) % 4))


_FOLD = re.compile(r"\r?\n(?=[ \t])")
_DATE_YEAR = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d+)\b", re.IGNORECASE)


def header_values(message: Message, name: str) -> list[str]:
    """Every value of a header as text: unfolded, raw UTF-8 (RFC 6532) decoded, an invalid byte as U+FFFD."""
    values = []
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            raw = value if isinstance(value, str) else str(value)
            # The parser keeps 8-bit header bytes as surrogate escapes; they are UTF-8 under RFC 6532.
            text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            values.append(_FOLD.sub("", text))
    return values


def header_text(message: Message, name: str) -> str | None:
    """A header's value with encoded-words decoded (the modern policy's unstructured header); None when absent."""
    values = header_values(message, name)
    if not values:
        return None
    try:
        text = str(policy.default.header_factory("x-unstructured", values[0]))
    except (UnicodeError, LookupError, ValueError, TypeError, IndexError):
        text = values[0]
    return " ".join(text.split()) or None


def part_text(part: Message) -> str:
    """A text part's content, whatever its declared charset."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        payload = b""
    for charset in (part.get_content_charset(), "utf-8"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _date_header(text: str) -> Any:
    """The moment of a Date header, or None when it has none that is possible."""
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    written = _DATE_YEAR.search(text)
    if parsed is None or (written and len(written[1]) > 2 and int(written[1]) != parsed.year):
        return None  # "0001" read as 2001: two-digit-year rules applied to a four-digit year
    try:
        return to_datetime(parsed)
    except ValueError:
        return None


def _sent_at(message: Message, internal: Any) -> Any:
    dates = header_values(message, "Date")
    if dates:
        moment = _date_header(dates[0])
        if moment is not None:
            return moment
    try:
        return to_datetime(internal)
    except ValueError:
        return None


def message_rows(resource: dict[str, Any], mailbox: str, body_max_chars: int,
                 ingest_source: str = "api") -> dict[str, list[Any]]:
    """Rows of one message resource (`id`, `threadId`, `labelIds`, `internalDate`, `raw`, ...)."""
    message_id = resource.get("id")
    if not message_id:
        raise RejectedRecord("message without an id")
    raw = _raw_bytes(resource)
    message = message_from_bytes(raw, policy=policy.default)
    sent_at = _sent_at(message, resource.get("internalDate"))
    if sent_at is None:
        raise RejectedRecord("no Date header and no internalDate")
    body_text, body_html, attachments = _bodies(message)
    participants, rejected = _participants(message, mailbox, message_id, sent_at)
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
        "body_truncated": any(b is not None and len(b) > body_max_chars for b in (body_text, body_html)),
        "attachments": attachments,
        "size_bytes": int(resource.get("sizeEstimate") or len(raw)), "history_id": resource.get("historyId"),
        "is_deleted": False, "ingest_source": ingest_source,
    }
    return {"gmail_messages": [row], "gmail_participants": participants, REJECTED_PARTS: rejected}


def is_mail(labels: Any) -> bool:
    """False for a draft, spam or trash (by its Gmail label ids), which stay out of the mail tables."""
    return not NOT_MAIL_LABELS & set(labels or ())


def _raw_bytes(resource: dict[str, Any]) -> bytes:
    """The RFC 822 bytes of a resource: read from an mbox (raw_bytes), or the API's base64url `raw`."""
    raw = resource.get("raw_bytes")
    if raw is not None:
        return raw
    if not resource.get("raw"):
        raise RejectedRecord("message without raw content")
    return decode_raw(resource["raw"])


def _bodies(message: Any) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    """The text and HTML bodies (parts joined) and the attachments (name, type, size) of a message."""
    text, html, attachments = [], [], []
    for part in message.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        disposition = (part.get("Content-Disposition") or "").lower()
        if filename or "attachment" in disposition:
            attachments.append({"filename": filename, "mime_type": part.get_content_type(),
                                "size_bytes": len(part.get_payload(decode=True) or b"")})
        elif part.get_content_type() == "text/plain":
            text.append(part_text(part))
        elif part.get_content_type() == "text/html":
            html.append(part_text(part))
    return "\n".join(text) or None, "\n".join(html) or None, attachments


def _participants(message: Any, mailbox: str, message_id: str,
                  sent_at: Any) -> tuple[list[dict[str, Any]], list[Reject]]:
    """One row per role and address (each once), and every address that could not be read, with its reason."""
    participants, seen, rejected = [], set(), []
    for role, header in ROLES:
        # Address lists are split before decoding, so a display name holding an encoded comma stays whole.
        addresses, rejected_addresses = parse_address_list(", ".join(header_values(message, header)))
        unreadable: list[Any] = list(rejected_addresses)
        for address in addresses:
            if "\ufffd" in address.email:
                unreadable.append(address)
                continue
            if (role, address.email) in seen:
                continue
            seen.add((role, address.email))
            participants.append({"mailbox": mailbox, "message_id": message_id, "role": role, "email": address.email,
                                 "display_name": address.display_name, "raw_address": address.raw,
                                 "domain": address.domain, "sent_at": sent_at})
        for number, bad in enumerate(unreadable):
            reason = getattr(bad, "reason", "invalid UTF-8 in the address")
            rejected.append(Reject(
                raw={"mailbox": mailbox, "message_id": message_id, "header": header, "address": bad.raw},
                reason=f"{header} address: {reason}", key=f"{message_id}:{role}:{number}"))
    return participants, rejected


def _lenient_datetime(value: Any) -> Any:
    try:
        return to_datetime(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class MessageStateChange:
    """A stored message whose labels or deletion changed: only those columns of its row are written."""

    message_id: str
    sent_at: datetime
    is_deleted: bool
    label_ids: tuple[str, ...] | None = None  # None: its labels stay as stored


def message_state_rows(change: MessageStateChange, mailbox: str) -> dict[str, list[dict[str, Any]]]:
    """The gmail_messages row of a state change: key, sent_at (its partition), is_deleted, and labels if changed."""
    row: dict[str, Any] = {"mailbox": mailbox, "message_id": change.message_id, "sent_at": change.sent_at,
                           "is_deleted": change.is_deleted}
    if change.label_ids is not None:
        row["label_ids"] = list(change.label_ids)
    return {"gmail_messages": [row]}


def moved_out_of_mail(resource: dict[str, Any]) -> MessageStateChange:
    """The state change of a message fetched whole that is no mail now (moved into spam or trash): flagged deleted,
    its labels, and the sent_at its full row has (so the merge finds the stored row in its partition); its body is
    not stored."""
    message = message_from_bytes(_raw_bytes(resource), policy=policy.default)
    sent_at = _sent_at(message, resource.get("internalDate"))
    if sent_at is None:
        raise RejectedRecord("no Date header and no internalDate")
    return MessageStateChange(resource["id"], sent_at, True, tuple(sorted(resource.get("labelIds") or [])))
