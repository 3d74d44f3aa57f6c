"""Google Meet as SyncJobs, one stream per Workspace user (MEET_USERS, else MAILBOXES), read as that user:
day windows oldest first; the watermark is the end of the last window read completely.

Per window: the user's Calendar events (one list: each conference's attendees), then the conference records that
started in it and have ended (a conference still going is read by a later run: incremental runs start
settings.meet_lookback_hours before the watermark), each with its space, participants and transcripts. A
transcript whose file is generated is read once (not when meeting_transcripts holds it): its entries, or, when
Meet has none (it keeps entries 30 days), the Google Doc it saved in the organiser's Drive, as plain text.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, cast

from pydantic import Field

from api_clients.connection_check import Check, check
from cloud_functions.meet_sync.auth import delegated_credentials, meet_users, service_account_key, services
from cloud_functions.meet_sync.client import MeetClient
from cloud_functions.meet_sync.records import GENERATED, SOURCE, conference_rows
from http_entry.validation import SyncRequest
from pipeline.runner import Page, SyncJob, per_record, run_jobs
from pipeline.runtime import Runtime
from pipeline.stored_transcripts import stored_transcripts
from transform.values import to_datetime

WINDOW = timedelta(days=1)


class MeetSyncRequest(SyncRequest):
    """Body of a meet_sync call."""

    days: int | None = Field(None, ge=1, le=3650, description="Days a full sync reads (default from settings).")
    users: list[str] | None = Field(None, description="Only these of the configured users.")


class ConferenceReader:
    """Pages of one user's conference records (space, participants, event, transcripts attached) for run_sync."""

    def __init__(self, user: str, client: MeetClient, runtime: Runtime, request: MeetSyncRequest):
        self.user, self.client, self.runtime, self.request = user, client, runtime, request
        self.transcripts_fetched = 0
        self.documents_exported = 0
        self.still_active = 0

    def pages(self, watermark: str | None) -> Iterator[Page]:
        settings = self.runtime.settings
        now = datetime.now(timezone.utc)
        if self.request.sync_type == "full" or watermark is None:
            start = now - timedelta(days=self.request.days or settings.meet_full_days)
        else:
            start = cast(datetime, to_datetime(watermark)) - timedelta(hours=settings.meet_lookback_hours)
        while start < now:
            end = min(start + WINDOW, now)
            events = self.client.calendar_events(start, end)
            for conferences in self.client.conference_pages(start, end):
                ended = [c for c in conferences if c.get("endTime")]
                self.still_active += len(conferences) - len(ended)
                yield Page(self._records(ended, events, start, end))
            yield Page([], end.isoformat())
            start = end

    def _records(self, conferences: list[dict[str, Any]], events: dict[str, dict[str, Any]], start: datetime,
                 end: datetime) -> list[dict[str, Any]]:
        names = [str(c["name"]) for c in conferences if c.get("name")]
        stored = stored_transcripts(self.runtime.warehouse, SOURCE, names, start, end)
        records = []
        for conference in conferences:
            name = conference.get("name")
            if not name:
                records.append({"user": self.user, "conference": conference})  # rejected, with the reason
                continue
            space = self.client.space(str(conference["space"])) if conference.get("space") else {}
            records.append({"user": self.user, "conference": conference, "space": space,
                            "participants": self.client.participants(str(name)),
                            "event": events.get(str(space.get("meetingCode"))),
                            "transcripts": self._transcripts(str(name), read=name not in stored)})
        return records

    def _transcripts(self, conference: str, read: bool) -> list[dict[str, Any]]:
        found = []
        for transcript in self.client.transcripts(conference):
            entry: dict[str, Any] = {"transcript": transcript}
            if read and transcript.get("state") == GENERATED:
                entry["entries"] = self.client.entries(str(transcript["name"]))
                document = (transcript.get("docsDestination") or {}).get("document")
                if not entry["entries"] and document:
                    entry["document_text"] = self.client.document_text(str(document))
                    self.documents_exported += 1
                self.transcripts_fetched += 1
            found.append(entry)
        return found

    def details(self) -> dict[str, Any]:
        return {"transcripts_fetched": self.transcripts_fetched, "documents_exported": self.documents_exported,
                "conferences_still_active": self.still_active}


def client_for(runtime: Runtime, user: str) -> MeetClient:
    """The Meet client acting as `user`."""
    key = service_account_key(runtime.secrets, runtime.settings)
    return MeetClient(services(delegated_credentials(key, user), runtime.settings.meet_api_endpoint), runtime.settings)


def conferences_job(user: str, runtime: Runtime, request: MeetSyncRequest) -> SyncJob:
    """One user's conferences (participants, transcripts) of the request's window."""
    client = client_for(runtime, user)
    reader = ConferenceReader(user, client, runtime, request)
    region = runtime.settings.default_phone_region
    return SyncJob(source=SOURCE, stream=user, sync_type=request.sync_type, fetch_pages=reader.pages,
                   transform_page=per_record(lambda record: conference_rows(record, region)),
                   record_key=lambda record: (record.get("conference") or {}).get("name"),
                   api_calls=lambda: client.api_calls, details=reader.details)


def run_meet_sync(request: MeetSyncRequest, runtime: Runtime) -> dict[str, Any]:
    """Syncs every configured user's Meet conferences (pipeline.runner.run_jobs, a stream per user)."""
    service_account_key(runtime.secrets, runtime.settings)  # a missing key fails the invocation before any run
    users = [u for u in meet_users(runtime.settings) if request.users is None or u in request.users]
    jobs = [lambda _deadline, user=user: conferences_job(user, runtime, request) for user in users]
    return run_jobs(SOURCE, jobs, warehouse=runtime.warehouse, publisher=runtime.publisher, settings=runtime.settings,
                    trigger=request.trigger)


def check_meet(runtime: Runtime) -> list[Check]:
    """The connection check, per user: a page of the last day's conference records (nothing written)."""
    def read(user: str) -> str:
        now = datetime.now(timezone.utc)
        page = next(iter(client_for(runtime, user).conference_pages(now - WINDOW, now)), [])
        return f"delegation works; {len(page)} conferences in the last day"

    def key_only() -> str:  # no users: reading the key says what is missing
        service_account_key(runtime.secrets, runtime.settings)
        return "key read"

    users = meet_users(runtime.settings)
    return [check(SOURCE, f"conferences of {user}", lambda user=user: read(user))  # type: ignore[misc]
            for user in users] or [check(SOURCE, "key", key_only)]
