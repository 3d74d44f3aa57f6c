"""Zoom meetings as a SyncJob: windows of days oldest first (Zoom's report and recordings lists take at most a
month), per user within a window; a window is one page, whose watermark is the window's end.

Per window and user: the past meeting instances (report API), the user's cloud recordings of the window (one
list), and per meeting its participants. A completed transcript is downloaded once (not when meeting_transcripts
holds it); one still processing leaves the meeting `transcript_status = processing`, and an incremental run, which
starts settings.zoom_lookback_hours before the watermark, reads it again. MERGE absorbs the overlap.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator

from pydantic import Field

from api_clients.connection_check import Check, check
from cloud_functions.zoom_sync.auth import ZoomCredentials
from cloud_functions.zoom_sync.client import ZoomClient
from cloud_functions.zoom_sync.records import SOURCE, meeting_rows, transcript_file, transcript_state
from http_entry.validation import SyncRequest
from pipeline.runner import Page, SyncJob, per_record, run_jobs
from pipeline.runtime import Runtime
from pipeline.stored_transcripts import stored_transcripts
from pipeline.streams import single_stream
from pipeline.sync_state import read_start
from transform.meeting_rows import COMPLETED

STREAM = "meetings"
# The check's fix when Zoom refuses the app: its setup guide section, and what that most often means.
REFUSED_HINT = ("6. Zoom", "save the Server-to-Server OAuth app's account id, client id and secret in the zoom-* "
                           "secrets and check the app is activated with the user:read:admin, report:read:admin, "
                           "meeting:read:admin and recording:read:admin scopes")


class ZoomSyncRequest(SyncRequest):
    """Body of a zoom_sync call."""

    days: int | None = Field(None, ge=1, le=3650, description="Days a full sync reads (default from settings).")


def day_windows(first: date, last: date, days: int) -> list[tuple[date, date]]:
    """[first, last] (days, both included) cut into windows of at most `days` days, oldest first."""
    windows = []
    while first <= last:
        end = min(first + timedelta(days=days - 1), last)
        windows.append((first, end))
        first = end + timedelta(days=1)
    return windows


class MeetingReader:
    """Pages of meeting records (participants, recording and transcript attached) for run_sync."""

    def __init__(self, client: ZoomClient, runtime: Runtime, request: ZoomSyncRequest):
        self.client, self.runtime, self.request = client, runtime, request
        self.transcripts_fetched = 0
        self.transcripts_processing = 0

    def pages(self, watermark: str | None) -> Iterator[Page]:
        settings = self.runtime.settings
        now = datetime.now(timezone.utc)
        start = read_start(self.request.sync_type, watermark, now, self.request.days or settings.zoom_full_days,
                           settings.zoom_lookback_hours)
        users = self.client.users()
        windows = day_windows(start.date(), now.date(), settings.zoom_window_days)
        for number, (first, last) in enumerate(windows, 1):
            # A window is one page with its watermark: a run cut by its time budget resumes at the next window
            records = [record for user in users for page in self._user_window(str(user["id"]), first, last)
                       for record in page]
            end = datetime.combine(last + timedelta(days=1), datetime.min.time(), timezone.utc)
            yield Page(records, min(now, end).isoformat(), final=number == len(windows))

    def _user_window(self, user_id: str, first: date, last: date) -> Iterator[list[dict[str, Any]]]:
        recordings: dict[str, dict[str, Any]] | None = None
        for meetings in self.client.meetings(user_id, first, last):
            if recordings is None:  # listed once per user and window, and only when the user had meetings
                recordings = {str(r.get("uuid")): r for r in self.client.recordings(user_id, first, last)}
            records = [{"meeting": meeting, "participants": self.client.participants(str(meeting["uuid"])),
                        "recording": recordings.get(str(meeting["uuid"]))}
                       for meeting in meetings if meeting.get("uuid")]
            records += [{"meeting": meeting} for meeting in meetings if not meeting.get("uuid")]  # rejected, kept
            self._attach_transcripts(records, first, last)
            yield records

    def _attach_transcripts(self, records: list[dict[str, Any]], first: date, last: date) -> None:
        ready = {str(r["meeting"]["uuid"]): r for r in records if transcript_state(r.get("recording")) == COMPLETED}
        self.transcripts_processing += sum(transcript_state(r.get("recording")) not in (COMPLETED, "none")
                                           for r in records)
        low = datetime.combine(first, datetime.min.time(), timezone.utc)
        stored = stored_transcripts(self.runtime.warehouse, SOURCE, sorted(ready), low, low + timedelta(
            days=(last - first).days + 1))
        for uuid, record in ready.items():
            file = transcript_file(record["recording"])
            if uuid not in stored and file and file.get("download_url"):
                record["vtt"] = self.client.download_text(str(file["download_url"]))
                self.transcripts_fetched += 1

    def details(self) -> dict[str, Any]:
        return {"transcripts_fetched": self.transcripts_fetched, "transcripts_processing": self.transcripts_processing}


def meetings_job(client: ZoomClient, runtime: Runtime, request: ZoomSyncRequest) -> SyncJob:
    """Meetings (participants, transcripts) of the request's window."""
    reader = MeetingReader(client, runtime, request)
    region = runtime.settings.default_phone_region
    return SyncJob(source=SOURCE, stream=STREAM, sync_type=request.sync_type, fetch_pages=reader.pages,
                   transform_page=per_record(lambda record: meeting_rows(record, region)),
                   record_key=lambda record: (record.get("meeting") or {}).get("uuid"),
                   api_calls=lambda: client.api_calls, details=reader.details)


def client_for(runtime: Runtime) -> ZoomClient:
    """The Zoom client of the runtime's credentials and settings."""
    return ZoomClient(ZoomCredentials.from_secrets(runtime.secrets), runtime.settings)


# Queue mode (pipeline/worker.py): one stream.
requested_streams, stream_job = single_stream(
    SOURCE, STREAM, lambda runtime, sync_type: meetings_job(client_for(runtime), runtime, ZoomSyncRequest(sync_type=sync_type)))  # type: ignore[arg-type]


def run_zoom_sync(request: ZoomSyncRequest, runtime: Runtime, client: ZoomClient | None = None) -> dict[str, Any]:
    """Syncs Zoom meetings, participants and transcripts (pipeline.runner.run_jobs, one stream); answers the run."""
    client = client or client_for(runtime)
    return run_jobs(SOURCE, [lambda _deadline: meetings_job(client, runtime, request)], warehouse=runtime.warehouse,
                    publisher=runtime.publisher, settings=runtime.settings, trigger=request.trigger)


def check_zoom(runtime: Runtime) -> list[Check]:
    """The connection check: a token issued for the app, and the account's users listed (nothing written)."""
    def read() -> str:
        return f"token issued; {len(client_for(runtime).users())} active users whose meetings are read"

    return [check(SOURCE, "token and users", read, REFUSED_HINT)]
