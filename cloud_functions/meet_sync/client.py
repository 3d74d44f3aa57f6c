"""One Workspace user's Google Meet conferences through google-api-python-client: conference records, their
space, participants and transcripts (entries, or the transcript's Google Doc), and the Calendar event each
belongs to. Every call is counted and runs under the one retry policy (429, 5xx)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from api_clients.metered import MeteredCalls
from config.settings import Settings

PAGE_SIZE = 100
PLAIN_TEXT = "text/plain"


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class MeetClient:
    def __init__(self, services: dict[str, Any], settings: Settings):
        self._meet, self._calendar, self._drive = services["meet"], services["calendar"], services["drive"]
        self._calls = MeteredCalls(settings.retry_max_seconds)

    @property
    def api_calls(self) -> int:
        """Requests made (every attempt counts)."""
        return self._calls.count

    def _execute(self, request: Any) -> Any:
        return self._calls(request.execute)

    def _all(self, list_page: Callable[[str | None], Any], key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body = self._execute(list_page(token)) or {}
            found += body.get(key) or []
            token = body.get("nextPageToken")
            if not token:
                return found

    def conference_pages(self, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        """Pages of the user's conference records that started in [start, end), newest first."""
        records = self._meet.conferenceRecords()
        query = f'start_time>="{_rfc3339(start)}" AND start_time<"{_rfc3339(end)}"'
        token: str | None = None
        while True:
            body = self._execute(records.list(filter=query, pageSize=PAGE_SIZE, pageToken=token)) or {}
            yield body.get("conferenceRecords") or []
            token = body.get("nextPageToken")
            if not token:
                return

    def space(self, name: str) -> dict[str, Any]:
        """The meeting space (its meetingCode names the Calendar event's conference)."""
        return self._execute(self._meet.spaces().get(name=name))

    def participants(self, conference: str) -> list[dict[str, Any]]:
        """Everyone who joined the conference."""
        api = self._meet.conferenceRecords().participants()
        return self._all(lambda token: api.list(parent=conference, pageSize=PAGE_SIZE, pageToken=token), "participants")

    def transcripts(self, conference: str) -> list[dict[str, Any]]:
        """The conference's transcripts (state STARTED, ENDED or FILE_GENERATED)."""
        api = self._meet.conferenceRecords().transcripts()
        return self._all(lambda token: api.list(parent=conference, pageSize=PAGE_SIZE, pageToken=token), "transcripts")

    def entries(self, transcript: str) -> list[dict[str, Any]]:
        """What was said, entry by entry (Meet keeps entries 30 days: none after that)."""
        api = self._meet.conferenceRecords().transcripts().entries()
        return self._all(lambda token: api.list(parent=transcript, pageSize=PAGE_SIZE, pageToken=token),
                         "transcriptEntries")

    def document_text(self, document_id: str) -> str:
        """A Google Doc exported as plain text (the transcript Meet saved in the organiser's Drive)."""
        content = self._execute(self._drive.files().export(fileId=document_id, mimeType=PLAIN_TEXT))
        return content.decode("utf-8-sig") if isinstance(content, bytes) else str(content)

    def calendar_events(self, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
        """The user's Calendar events with a Meet conference around [start, end) (half a day either side: an
        event may start before its conference), by conference id (the space's meeting code)."""
        events = self._calendar.events()
        found = self._all(lambda token: events.list(
            calendarId="primary", timeMin=_rfc3339(start - timedelta(hours=12)),
            timeMax=_rfc3339(end + timedelta(hours=12)), singleEvents=True, maxResults=250, pageToken=token), "items")
        return {str(event["conferenceData"]["conferenceId"]): event for event in found
                if (event.get("conferenceData") or {}).get("conferenceId")}
