"""Google Meet as one SyncJob: windows of up to a week oldest first, and within a window each Workspace user
(MEET_USERS, else MAILBOXES) read as that user; a window is one page, whose watermark is the window's end. One stream, not one per user, because each stream's run costs its own bookkeeping statements
(bench/bigquery_cost.py): a user the service account may not act as is skipped, named in the run's details, and
the run ends partial saying so (a full sync reads that user's past once delegation is fixed).

Per user and window: the user's Calendar events (one list: each conference's attendees), then the conference
records that started in it and have ended (a conference still going is read by a later run: incremental runs
start settings.meet_lookback_hours before the watermark), each with its space, participants and transcripts. A
transcript whose file is generated is read once (not when meeting_transcripts holds it): its entries, or, when
Meet has none (it keeps entries 30 days), the Google Doc it saved in the organiser's Drive, as plain text.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Callable, Iterator, Mapping

from google.auth.exceptions import RefreshError
from pydantic import Field

from api_clients.connection_check import Check, check
from cloud_functions.meet_sync.auth import delegated_credentials, meet_users, service_account_key, services
from cloud_functions.meet_sync.client import MeetClient
from cloud_functions.meet_sync.records import GENERATED, SOURCE, conference_rows
from http_entry.validation import SyncRequest
from observability.logger import get_logger
from pipeline.runner import Page, StopSync, SyncJob, per_record, run_jobs
from pipeline.runtime import Runtime
from pipeline.stored_transcripts import stored_transcripts
from pipeline.streams import single_stream
from pipeline.sync_state import read_start

log = get_logger(__name__)

WINDOW = timedelta(days=7)
STREAM = "conferences"
# The check's fix when Google refuses the delegation: its setup guide section, and what that most often means.
REFUSED_HINT = ("7. Google Meet", "grant the service account's client id the scopes "
                                  "https://www.googleapis.com/auth/meetings.space.readonly, "
                                  "https://www.googleapis.com/auth/calendar.events.readonly and "
                                  "https://www.googleapis.com/auth/drive.readonly under domain-wide delegation, and "
                                  "check the user exists in the domain")


class MeetSyncRequest(SyncRequest):
    """Body of a meet_sync call."""

    days: int | None = Field(None, ge=1, le=3650, description="Days a full sync reads (default from settings).")


class ConferenceReader:
    """Pages of the users' conference records (space, participants, event, transcripts attached) for run_sync."""

    def __init__(self, clients: Mapping[str, Callable[[], MeetClient]], runtime: Runtime, request: MeetSyncRequest):
        self.clients, self.runtime, self.request = clients, runtime, request
        self._built: dict[str, MeetClient] = {}
        self.refused: dict[str, str] = {}
        self.transcripts_fetched = 0
        self.documents_exported = 0
        self.still_active = 0

    def client(self, user: str) -> MeetClient:
        if user not in self._built:
            self._built[user] = self.clients[user]()
        return self._built[user]

    @property
    def api_calls(self) -> int:
        return sum(client.api_calls for client in self._built.values())

    def pages(self, watermark: str | None) -> Iterator[Page]:
        settings = self.runtime.settings
        now = datetime.now(timezone.utc)
        start = read_start(self.request.sync_type, watermark, now, self.request.days or settings.meet_full_days,
                           settings.meet_lookback_hours)
        while start < now:
            end = min(start + WINDOW, now)
            # A window is one page with its watermark: a run cut by its time budget resumes at the next window
            records = [record for user in self.clients if user not in self.refused
                       for page in self._user_window(user, start, end) for record in page]
            yield Page(records, end.isoformat(), final=end >= now and not self.refused)
            start = end
        if self.refused:
            raise StopSync(f"Meet users the service account may not act as, skipped: {', '.join(self.refused)} "
                           f"(grant its client id the Meet, Calendar and Drive scopes: docs/SETUP.md, 7)")

    def _user_window(self, user: str, start: datetime, end: datetime) -> Iterator[list[dict[str, Any]]]:
        try:
            events = self.client(user).calendar_events(start, end)
        except RefreshError as error:  # delegation refused for this user: the others are still read
            self.refused[user] = str(error)[:200]
            log.warning("meet user refused", extra={"json_fields": {"user": user, "error": str(error)[:200]}})
            return
        for conferences in self.client(user).conference_pages(start, end):
            ended = [c for c in conferences if c.get("endTime")]
            self.still_active += len(conferences) - len(ended)
            yield self._records(user, ended, events, start, end)

    def _records(self, user: str, conferences: list[dict[str, Any]], events: dict[str, dict[str, Any]],
                 start: datetime, end: datetime) -> list[dict[str, Any]]:
        names = [str(c["name"]) for c in conferences if c.get("name")]
        stored = stored_transcripts(self.runtime.warehouse, SOURCE, names, start, end)
        client = self.client(user)
        records: list[dict[str, Any]] = []
        for conference in conferences:
            name = conference.get("name")
            if not name:
                records.append({"user": user, "conference": conference})  # rejected, with the reason
                continue
            space = client.space(str(conference["space"])) if conference.get("space") else {}
            records.append({"user": user, "conference": conference, "space": space,
                            "participants": client.participants(str(name)),
                            "event": events.get(str(space.get("meetingCode"))),
                            "transcripts": self._transcripts(client, str(name), read=name not in stored)})
        return records

    def _transcripts(self, client: MeetClient, conference: str, read: bool) -> list[dict[str, Any]]:
        found = []
        for transcript in client.transcripts(conference):
            entry: dict[str, Any] = {"transcript": transcript}
            if read and transcript.get("state") == GENERATED:
                entry["entries"] = client.entries(str(transcript["name"]))
                document = (transcript.get("docsDestination") or {}).get("document")
                if not entry["entries"] and document:
                    entry["document_text"] = client.document_text(str(document))
                    self.documents_exported += 1
                self.transcripts_fetched += 1
            found.append(entry)
        return found

    def details(self) -> dict[str, Any]:
        return {"transcripts_fetched": self.transcripts_fetched, "documents_exported": self.documents_exported,
                "conferences_still_active": self.still_active, **({"users_refused": self.refused} if self.refused else {})}


def client_for(runtime: Runtime, user: str) -> MeetClient:
    """The Meet client acting as `user`."""
    key = service_account_key(runtime.secrets, runtime.settings)
    return MeetClient(services(delegated_credentials(key, user), runtime.settings.meet_api_endpoint), runtime.settings)


def conferences_job(runtime: Runtime, request: MeetSyncRequest) -> SyncJob:
    """Every configured user's conferences (participants, transcripts) of the request's window."""
    clients = {user: partial(client_for, runtime, user) for user in meet_users(runtime.settings)}
    reader = ConferenceReader(clients, runtime, request)
    region = runtime.settings.default_phone_region
    return SyncJob(source=SOURCE, stream=STREAM, sync_type=request.sync_type, fetch_pages=reader.pages,
                   transform_page=per_record(lambda record: conference_rows(record, region)),
                   record_key=lambda record: (record.get("conference") or {}).get("name"),
                   api_calls=lambda: reader.api_calls, details=reader.details)


# Queue mode (pipeline/worker.py): one stream.
requested_streams, stream_job = single_stream(
    SOURCE, STREAM, lambda runtime, sync_type: conferences_job(runtime, MeetSyncRequest(sync_type=sync_type)))  # type: ignore[arg-type]


def run_meet_sync(request: MeetSyncRequest, runtime: Runtime) -> dict[str, Any]:
    """Syncs the configured users' Meet conferences (pipeline.runner.run_jobs, one stream); answers the run."""
    service_account_key(runtime.secrets, runtime.settings)  # a missing key fails the invocation before any run
    return run_jobs(SOURCE, [lambda _deadline: conferences_job(runtime, request)], warehouse=runtime.warehouse,
                    publisher=runtime.publisher, settings=runtime.settings, trigger=request.trigger)


def check_meet(runtime: Runtime) -> list[Check]:
    """The connection check, per user: a page of the last day's conference records (nothing written)."""
    def read(user: str) -> str:
        now = datetime.now(timezone.utc)
        page = next(iter(client_for(runtime, user).conference_pages(now - timedelta(days=1), now)), [])
        return f"delegation works; {len(page)} conferences in the last day"

    def key_only() -> str:  # no users: reading the key says what is missing
        service_account_key(runtime.secrets, runtime.settings)
        return "key read"

    users = meet_users(runtime.settings)
    return [check(SOURCE, f"conferences of {user}", lambda user=user: read(user), REFUSED_HINT)  # type: ignore[misc]
            for user in users] or [check(SOURCE, "key", key_only, REFUSED_HINT)]
