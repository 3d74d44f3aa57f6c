"""Rows of the meeting tables every meeting source shares (meetings, meeting_participants, meeting_transcripts).
Pure: no I/O.

A source's records.py reads its API's shapes into the plain values these take; the rules every source keeps live
here once: addresses normalised as mail's are, a number kept only for a participant without an address (a dial-in:
entity resolution matches it by phone, and a row is never matched twice), a transcript's text a line per utterance.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.runner import RejectedRecord
from transform.email_normalizer import email_domain, normalize_email
from transform.phone_normalizer import parse_phone
from transform.values import to_datetime, to_str

NO_TRANSCRIPT, PROCESSING, COMPLETED = "none", "processing", "completed"


def meeting_key(record: dict[str, Any], id_field: str, start_field: str) -> tuple[str, datetime]:
    """A meeting's id and start, which key and partition every meeting table; RejectedRecord naming the field
    when either is missing or the start is no possible time."""
    meeting_id = to_str(record.get(id_field))
    if not meeting_id:
        raise RejectedRecord(f"missing {id_field}")
    try:
        started = to_datetime(record.get(start_field))
    except ValueError as error:
        raise RejectedRecord(f"impossible {start_field}: {error}") from None
    if started is None:
        raise RejectedRecord(f"missing {start_field}")
    return meeting_id, started


def participant_row(source: str, meeting_id: str, started_at: datetime, *, key: str | None, name: str | None,
                    email: str | None, phone: str | None, role: str, user_id: str | None, joined_at: datetime | None,
                    left_at: datetime | None, duration_seconds: int | None, region: str) -> dict[str, Any] | None:
    """The meeting_participants row of one person (None when nothing identifies them): keyed by the normalised
    address when there is one, else the source's key, else the name."""
    address = normalize_email(email)
    e164 = parse_phone(phone, region).e164 if phone and not address else None
    participant_key = address or key or name
    if not participant_key:
        return None
    return {"source": source, "meeting_id": meeting_id, "participant_key": participant_key, "started_at": started_at,
            "display_name": name, "email": address, "domain": email_domain(address), "phone_e164": e164,
            "role": role, "source_user_id": user_id, "joined_at": joined_at, "left_at": left_at,
            "duration_seconds": duration_seconds}


def transcript_row(source: str, meeting_id: str, started_at: datetime, transcript_id: str, transcript_format: str,
                   lines: list[dict[str, Any]], text: str | None = None,
                   language_code: str | None = None) -> dict[str, Any] | None:
    """The meeting_transcripts row of a transcript: its lines ({speaker, text, started_at, ended_at}) in time order
    and as text, or the text alone (a document); None when it holds nothing said."""
    ordered = sorted(lines, key=lambda line: (line["started_at"] is None, line["started_at"] or started_at))
    said = "\n".join(f"{line['speaker'] or '?'}: {line['text'] or ''}" for line in ordered) if ordered else text
    if not said or not said.strip():
        return None
    return {"source": source, "meeting_id": meeting_id, "transcript_id": transcript_id, "started_at": started_at,
            "transcript_format": transcript_format, "language_code": language_code, "transcript_lines": ordered,
            "transcript_text": said.strip()}
