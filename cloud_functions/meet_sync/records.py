"""A Google Meet conference record, its space, participants, transcripts and Calendar event -> rows of the meeting
tables. Pure: no I/O.

A record is what the client gathered for one conference: {"user": the user it was read as, "conference",
"space", "participants", "event" (the Calendar event whose conference id is the space's meeting code, or None),
"transcripts": [{"transcript", "entries", "document_text"}]}. Meet names a signed-in participant by user id
(users/{id}), never by email: a participant takes the email of the Calendar attendee with the same name;
attendees no participant took are rows of role invitee (invited; joined under another name, or not at all).
A phone participant's name is their (often partly hidden) number: kept as a phone when it reads as one.
"""
from __future__ import annotations

from typing import Any

from transform.email_normalizer import normalize_email
from transform.meeting_rows import COMPLETED, NO_TRANSCRIPT, PROCESSING, meeting_key, participant_row, transcript_row
from transform.values import to_datetime, to_str

SOURCE = "meet"
GENERATED = "FILE_GENERATED"


def _name(participant: dict[str, Any]) -> tuple[str | None, str]:
    """The participant's display name and kind (signedin, anonymous, phone)."""
    for kind in ("signedinUser", "anonymousUser", "phoneUser"):
        if participant.get(kind):
            return to_str(participant[kind].get("displayName")), kind.removesuffix("User").lower()
    return None, "unknown"


def _fold(name: str | None) -> str:
    return " ".join((name or "").casefold().split())


def _participant_rows(record: dict[str, Any], meeting_id: str, started: Any, region: str) -> list[dict[str, Any]]:
    attendees = [a for a in ((record.get("event") or {}).get("attendees") or []) if a.get("email")]
    by_name = {_fold(a.get("displayName")): a for a in attendees if a.get("displayName")}
    taken: set[str] = set()
    rows = []
    for participant in record.get("participants") or []:
        name, kind = _name(participant)
        attendee = by_name.get(_fold(name)) if kind == "signedin" and name else None
        if attendee:
            taken.add(attendee["email"])
        row = participant_row(
            SOURCE, meeting_id, started, key=to_str(participant.get("name")), name=name,
            email=attendee["email"] if attendee else None, phone=name if kind == "phone" else None,
            role="organizer" if attendee and attendee.get("organizer") else "attendee",
            user_id=to_str((participant.get("signedinUser") or {}).get("user")),
            joined_at=to_datetime(participant.get("earliestStartTime")),
            left_at=to_datetime(participant.get("latestEndTime")), duration_seconds=None, region=region)
        if row:
            joined, left = row["joined_at"], row["left_at"]
            row["duration_seconds"] = int((left - joined).total_seconds()) if joined and left else None
            rows.append(row)
    for attendee in attendees:
        if attendee["email"] not in taken:
            row = participant_row(SOURCE, meeting_id, started, key=None, name=to_str(attendee.get("displayName")),
                                  email=attendee["email"], phone=None,
                                  role="organizer" if attendee.get("organizer") else "invitee", user_id=None,
                                  joined_at=None, left_at=None, duration_seconds=None, region=region)
            if row:
                rows.append(row)
    return _one_per_key(rows)


def _one_per_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A person who joined twice under one attendee's name is one row: the first kept (the MERGE key is unique)."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(row["participant_key"], row)
    return list(seen.values())


def _transcript_rows(record: dict[str, Any], meeting_id: str, started: Any) -> list[dict[str, Any]]:
    names = {to_str(p.get("name")): _name(p)[0] for p in record.get("participants") or []}
    rows = []
    for found in record.get("transcripts") or []:
        transcript = found.get("transcript") or {}
        entries = found.get("entries") or []
        lines = [{"speaker": names.get(to_str(e.get("participant"))), "text": to_str(e.get("text")),
                  "started_at": to_datetime(e.get("startTime")), "ended_at": to_datetime(e.get("endTime"))}
                 for e in entries]
        language = next((to_str(e.get("languageCode")) for e in entries if e.get("languageCode")), None)
        row = transcript_row(SOURCE, meeting_id, started, str(transcript.get("name")),
                             "entries" if lines else "google_doc", lines, found.get("document_text"), language)
        if row:
            rows.append(row)
    return rows


def transcript_state(transcripts: list[dict[str, Any]]) -> str:
    """completed when a transcript's file is generated, processing while one is still being written, else none."""
    states = {str((t.get("transcript") or {}).get("state")) for t in transcripts}
    if GENERATED in states:
        return COMPLETED
    return PROCESSING if states else NO_TRANSCRIPT


def conference_rows(record: dict[str, Any], region: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of one conference; RejectedRecord when it has no name or no possible start."""
    conference = record.get("conference") or {}
    meeting_id, started = meeting_key(conference, "name", "startTime")
    event = record.get("event") or {}
    ended = to_datetime(conference.get("endTime"))
    participants = _participant_rows(record, meeting_id, started, region)
    transcripts = record.get("transcripts") or []
    row = {"source": SOURCE, "meeting_id": meeting_id, "started_at": started, "ended_at": ended,
           "topic": to_str(event.get("summary")), "meeting_number": to_str((record.get("space") or {}).get("meetingCode")),
           "host_id": to_str(record.get("user")),
           "host_email": normalize_email(to_str((event.get("organizer") or {}).get("email")) or to_str(record.get("user"))),
           "duration_minutes": int((ended - started).total_seconds() // 60) if ended else None,
           "participant_count": len(record.get("participants") or []),
           "calendar_event_id": to_str(event.get("id")), "has_recording": bool(transcripts),
           "transcript_status": transcript_state(transcripts)}
    return {"meetings": [row], "meeting_participants": participants,
            "meeting_transcripts": _transcript_rows(record, meeting_id, started)}
