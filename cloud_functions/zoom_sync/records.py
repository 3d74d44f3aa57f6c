"""A Zoom past meeting (report API), its participants, its cloud recording and transcript (VTT) -> rows of the
meeting tables. Pure: no I/O.

A meeting record is what the client gathered for one meeting instance: {"meeting": the report's meeting,
"participants": /past_meetings/{uuid}/participants, "recording": the recordings list's entry of the same uuid
(None: not recorded), "vtt": the transcript file's text when it was downloaded}. Zoom lists a participant once
per join (a dropped connection is a second row): rows of one person are one participant, first join to last
leave, durations summed. A participant who dialled in has no email and their number as name.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from transform.email_normalizer import normalize_email
from transform.meeting_rows import COMPLETED, NO_TRANSCRIPT, PROCESSING, meeting_key, participant_row, transcript_row
from transform.values import to_datetime, to_int, to_str

SOURCE = "zoom"
TRANSCRIPT_FILE = "TRANSCRIPT"
_CUE_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})\s*-->\s*(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})")
_PHONE_NAME = re.compile(r"^\+?[\d\s().\-]{7,}$")


def transcript_file(recording: dict[str, Any] | None) -> dict[str, Any] | None:
    """The recording's transcript file (file_type TRANSCRIPT), or None."""
    for file in (recording or {}).get("recording_files") or []:
        if str(file.get("file_type", "")).upper() == TRANSCRIPT_FILE:
            return file
    return None


def transcript_state(recording: dict[str, Any] | None) -> str:
    """none (no recording, or one without a transcript), processing or completed."""
    file = transcript_file(recording)
    if file is None:
        return NO_TRANSCRIPT
    return COMPLETED if str(file.get("status", "")).lower() == "completed" else PROCESSING


def _ms(hours: str | None, minutes: str, seconds: str, millis: str) -> int:
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(millis)


def vtt_cues(text: str) -> list[dict[str, Any]]:
    """The cues of a WebVTT transcript: {speaker, text, start_ms, end_ms}; "Name: text" names the speaker."""
    cues = []
    for block in re.split(r"\r?\n\s*\r?\n", text.replace("\ufeff", "")):
        lines = [line.strip() for line in block.strip().splitlines()]
        timing = next((i for i, line in enumerate(lines) if _CUE_TIME.search(line)), None)
        if timing is None:
            continue  # the WEBVTT header, a NOTE or a STYLE block
        groups = _CUE_TIME.search(lines[timing]).groups()  # type: ignore[union-attr]
        said = " ".join(line for line in lines[timing + 1:] if line)
        speaker, colon, rest = said.partition(": ")
        cues.append({"speaker": speaker if colon else None, "text": rest if colon else said,
                     "start_ms": _ms(*groups[:4]), "end_ms": _ms(*groups[4:])})
    return cues


def _participants(meeting: dict[str, Any], started: datetime, joins: list[dict[str, Any]],
                  region: str) -> list[dict[str, Any]]:
    people: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for join in joins:
        key = normalize_email(to_str(join.get("user_email"))) or to_str(join.get("id")) or to_str(join.get("name"))
        if key:
            people.setdefault(key, []).append(join)
    host_email = normalize_email(to_str(meeting.get("user_email")))
    rows = []
    for key, person in people.items():
        first = person[0]
        email = to_str(first.get("user_email"))
        name = to_str(first.get("name"))
        joined = [t for t in (to_datetime(j.get("join_time")) for j in person) if t]
        left = [t for t in (to_datetime(j.get("leave_time")) for j in person) if t]
        phone = name if name and not email and _PHONE_NAME.match(name) else None
        is_host = normalize_email(email) is not None and normalize_email(email) == host_email
        row = participant_row(SOURCE, meeting["uuid"], started, key=key, name=name, email=email, phone=phone,
                              role="host" if is_host else "attendee",
                              user_id=to_str(first.get("user_id")) or to_str(first.get("id")),
                              joined_at=min(joined, default=None), left_at=max(left, default=None),
                              duration_seconds=sum(to_int(j.get("duration")) or 0 for j in person), region=region)
        if row:
            rows.append(row)
    return rows


def _transcript(meeting_id: str, started: datetime, recording: dict[str, Any] | None,
                vtt: str | None) -> list[dict[str, Any]]:
    file = transcript_file(recording)
    if not vtt or file is None:
        return []
    begin = to_datetime(file.get("recording_start")) or started
    lines = [{"speaker": cue["speaker"], "text": cue["text"], "started_at": begin + timedelta(milliseconds=cue["start_ms"]),
              "ended_at": begin + timedelta(milliseconds=cue["end_ms"])} for cue in vtt_cues(vtt)]
    row = transcript_row(SOURCE, meeting_id, started, str(file.get("id") or meeting_id), "vtt", lines)
    return [row] if row else []


def meeting_rows(record: dict[str, Any], region: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of one meeting instance; RejectedRecord when it has no uuid or no possible start."""
    meeting = record.get("meeting") or {}
    meeting_id, started = meeting_key(meeting, "uuid", "start_time")
    recording = record.get("recording")
    participants = _participants(meeting, started, record.get("participants") or [], region)
    row = {"source": SOURCE, "meeting_id": meeting_id, "started_at": started,
           "ended_at": to_datetime(meeting.get("end_time")), "topic": to_str(meeting.get("topic")),
           "meeting_number": to_str(meeting.get("id")), "host_id": to_str(meeting.get("host_id")),
           "host_email": normalize_email(to_str(meeting.get("user_email"))),
           "duration_minutes": to_int(meeting.get("duration")),
           "participant_count": len(participants) or to_int(meeting.get("participants_count")),
           "calendar_event_id": None, "has_recording": recording is not None,
           "transcript_status": transcript_state(recording)}
    return {"meetings": [row], "meeting_participants": participants,
            "meeting_transcripts": _transcript(meeting_id, started, recording, record.get("vtt"))}
