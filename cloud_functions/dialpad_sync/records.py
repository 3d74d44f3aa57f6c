"""Dialpad CallProto -> a dialpad_calls row, and its transcript -> a dialpad_transcripts row. Pure: no I/O.

Dialpad sends int64 values as JSON strings or numbers; both are read. A call without an id or with an
impossible start is rejected with the reason (started_at partitions the table); any other unknown or
impossible value becomes NULL.

A transcript's lines are what people said (type "transcript") and Dialpad Ai's moments (moment,
custom_moment, real_time_moment, ai_question): only what was said is the transcript's text; moments are kept
as data beside it. Lines arrive out of time order (the spec's own example), so both are sorted by time;
line times come without a timezone (the spec's example) and are read as UTC, as every other Dialpad time is.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pipeline.runner import RejectedRecord
from transform.email_normalizer import normalize_email
from transform.phone_normalizer import parse_phone
from transform.values import to_bool, to_datetime, to_int, to_str

TRANSCRIPT = "_transcript"  # the key the client attaches a call's transcript under
_NO_TIME = datetime.min.replace(tzinfo=timezone.utc)  # sort key of a line without a time (it goes last)
SPOKEN = "transcript"  # the line type of what a person said; every other type is an AI moment


def _lenient(convert, value: Any) -> Any:
    try:
        return convert(value)
    except (ValueError, TypeError, OverflowError):
        return None


def _e164(number: str | None, region: str) -> str | None:
    return parse_phone(number, region).e164 if number else None


def transcript_lines(transcript: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every line of the transcript as a transcript_lines record, in time order (lines without a time last)."""
    lines = []
    for line in (transcript or {}).get("lines") or []:
        lines.append({"content": to_str(line.get("content")), "name": to_str(line.get("name")),
                      "time": _lenient(to_datetime, line.get("time")), "type": to_str(line.get("type")),
                      "user_id": to_str(line.get("user_id")), "contact_id": to_str(line.get("contact_id"))})
    return sorted(lines, key=lambda line: (line["time"] is None, line["time"] or _NO_TIME))


def _spoken(line: dict[str, Any]) -> bool:
    # A line without a type is taken as speech (as every line was before moments): the spec makes the type optional.
    return line["type"] in (None, SPOKEN)


def call_row(call: dict[str, Any], region: str) -> dict[str, Any]:
    """The dialpad_calls row of one call; RejectedRecord when it has no id or no possible start."""
    call_id = _lenient(to_int, call.get("call_id"))
    if call_id is None:
        raise RejectedRecord("missing call_id")
    try:
        started = to_datetime(_lenient(to_int, call.get("date_started")))
    except ValueError as error:
        raise RejectedRecord(f"impossible date_started: {error}") from None
    if started is None:
        raise RejectedRecord("missing date_started")
    target = call.get("target") or {}
    contact = call.get("contact") or {}
    external = to_str(call.get("external_number"))
    internal = to_str(call.get("internal_number"))
    return {
        "call_id": str(call_id), "started_at": started,
        "rang_at": _lenient(to_datetime, _lenient(to_int, call.get("date_rang"))),
        "connected_at": _lenient(to_datetime, _lenient(to_int, call.get("date_connected"))),
        "ended_at": _lenient(to_datetime, _lenient(to_int, call.get("date_ended"))),
        "duration_ms": _lenient(lambda v: to_int(round(float(v))), call.get("duration")),
        "total_duration_ms": _lenient(lambda v: to_int(round(float(v))), call.get("total_duration")),
        "direction": to_str(call.get("direction")), "state": to_str(call.get("state")),
        "external_number": external, "external_number_e164": _e164(external, region),
        "internal_number": internal, "internal_number_e164": _e164(internal, region),
        "target_id": to_str(target.get("id")), "target_type": to_str(target.get("type")),
        "target_name": to_str(target.get("name")), "target_email": normalize_email(to_str(target.get("email"))),
        "target_phone": to_str(target.get("phone")),
        "contact_id": to_str(contact.get("id")), "contact_name": to_str(contact.get("name")),
        "contact_email": normalize_email(to_str(contact.get("email"))), "contact_phone": to_str(contact.get("phone")),
        "was_recorded": _lenient(to_bool, call.get("was_recorded")),
        "labels": [str(label) for label in call.get("labels") or []],
    }


def transcript_row(call: dict[str, Any], row: dict[str, Any]) -> dict[str, Any] | None:
    """The dialpad_transcripts row of a call (row: its dialpad_calls row) when a transcript with lines is attached:
    what was said as lines and as text, and the AI moments apart."""
    lines = transcript_lines(call.get(TRANSCRIPT))
    if not lines:
        return None
    said = [line for line in lines if _spoken(line)]
    return {"call_id": row["call_id"], "started_at": row["started_at"], "transcript_lines": said,
            "transcript_moments": [line for line in lines if not _spoken(line)],
            "transcript_text": "\n".join(f"{line['name'] or '?'}: {line['content'] or ''}" for line in said) or None}
