"""A loopback Google Meet REST API (v2), Calendar (v3) and Drive (v3) that google-api-python-client runs against
unmodified, with the OAuth token endpoint of domain-wide delegation (the JWT's signature is checked against the fake
service account's key; its subject becomes the user of the access token; the Meet scope is required).

Serves conferenceRecords.list (filter on start_time, newest first, pages), spaces.get, participants.list,
transcripts.list, transcripts.entries.list, Calendar events.list (timeMin/timeMax, conferenceData with the
space's meeting code) and Drive files.export as text/plain. Each user sees the conferences they organised. The
meetings are sandbox/meeting_plan.py's, in Meet's shapes: signed-in users named by users/{id} (their emails only on
the Calendar event; now and then an attendee without a display name there), anonymous guests, phone participants
named by a partly hidden number, invitees who never joined; transcripts still being written (ENDED), generated
with entries, or generated with no entries left (Meet deletes entries after 30 days) and only the Google Doc.

    python -m sandbox.meet --meetings 100
"""
from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs

from sandbox.company import LOCAL_RUN_SIZE, CompanySize, FakeCompany
from sandbox.gmail import b64url, google_error
from sandbox.meeting_plan import PlannedMeeting, plan_meeting, plan_meetings
from sandbox.server import Faults, Request, Response, RunningSandbox, SandboxServer, data_anchor, serve_until_interrupted

MEET_SCOPE = "https://www.googleapis.com/auth/meetings.space.readonly"
LOCAL_RUN_MEETINGS = 40
DOC_ONLY_SHARE = 0.3  # generated transcripts whose entries are gone: only the Doc is left
_FILTER = re.compile(r'start_time\s*(>=|<)\s*"([^"]+)"')


def google_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class MeetState:
    """Users, conferences, tokens and the fake service account of one Workspace domain."""

    def __init__(self, company: FakeCompany, meetings: int = 30, *, spacing_hours: float = 6, seed: int = 13):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.company, self.seed = company, seed
        self.users = company.employees(3)
        self.tokens: dict[str, str] = {}
        self.lock = threading.Lock()
        self.end = data_anchor() - timedelta(hours=1)
        self.meetings: list[PlannedMeeting] = []
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        self.public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.meetings = plan_meetings(company, self.users, meetings, self.end, timedelta(hours=spacing_hours), seed)

    def service_account_info(self, token_uri: str) -> dict[str, Any]:
        """A service-account key whose token_uri is this sandbox (what the meet secret holds)."""
        return {"type": "service_account", "project_id": "sandbox-project", "private_key_id": "sandbox-meet-key",
                "private_key": self.private_pem, "client_email": "meet-sync@sandbox-project.iam.gserviceaccount.com",
                "client_id": "100000000000000000002", "token_uri": token_uri}

    def add_meetings(self, count: int) -> list[PlannedMeeting]:
        """New meetings, ended by now, after every existing one."""
        with self.lock:
            last = max([m.started for m in self.meetings] + [datetime.now(timezone.utc) - timedelta(hours=3)])
            added = [plan_meeting(self.company, self.users, len(self.meetings) + n,
                                  last + timedelta(minutes=20 * (n + 1)), self.seed) for n in range(count)]
            self.meetings += added
            return added

    def finish_transcripts(self) -> int:
        """Transcripts still being written get their file generated; how many."""
        processing = [m for m in self.meetings if m.transcript == "processing"]
        for meeting in processing:
            meeting.transcript = "completed"
        return len(processing)

    def _rng(self, meeting: PlannedMeeting, kind: str) -> random.Random:
        return random.Random(f"{self.seed} {kind} {meeting.index}")

    def by_id(self, conference_id: str) -> PlannedMeeting | None:
        return next((m for m in self.meetings if f"cr{m.index:05d}" == conference_id), None)

    def doc_only(self, meeting: PlannedMeeting) -> bool:
        return self._rng(meeting, "doc").random() < DOC_ONLY_SHARE

    # -- Meet's shapes
    def meeting_code(self, meeting: PlannedMeeting) -> str:
        rng = self._rng(meeting, "code")
        letters = "abcdefghijkmnopqrstuvwxyz"
        return "-".join("".join(rng.choice(letters) for _ in range(n)) for n in (3, 4, 3))

    def conference(self, meeting: PlannedMeeting) -> dict[str, Any]:
        return {"name": f"conferenceRecords/cr{meeting.index:05d}", "startTime": google_time(meeting.started),
                "endTime": google_time(meeting.ended), "expireTime": google_time(meeting.ended + timedelta(days=30)),
                "space": f"spaces/sp{meeting.index:05d}"}

    def space(self, meeting: PlannedMeeting) -> dict[str, Any]:
        code = self.meeting_code(meeting)
        return {"name": f"spaces/sp{meeting.index:05d}", "meetingUri": f"https://meet.google.com/{code}",
                "meetingCode": code, "config": {"accessType": "TRUSTED", "entryPointAccess": "ALL"}}

    def participants(self, meeting: PlannedMeeting) -> list[dict[str, Any]]:
        base = f"conferenceRecords/cr{meeting.index:05d}/participants"
        host = {"name": f"{base}/p0", "signedinUser": {"user": f"users/10{self.users.index(meeting.host):03d}",
                                                      "displayName": meeting.host.split("@")[0].title()},
                "earliestStartTime": google_time(meeting.started), "latestEndTime": google_time(meeting.ended)}
        found = [host]
        for n, guest in enumerate((g for g in meeting.guests if g.joined), 1):
            times = {"earliestStartTime": google_time(meeting.started + timedelta(minutes=1)),
                     "latestEndTime": google_time(meeting.ended)}
            if guest.phone:
                hidden = guest.phone if n % 2 else guest.phone[:-4] + "**" + guest.phone[-2:]
                who: dict[str, Any] = {"phoneUser": {"displayName": hidden}}
            elif guest.email:
                who = {"signedinUser": {"user": f"users/2{meeting.index:05d}{n}", "displayName": guest.name}}
            else:
                who = {"anonymousUser": {"displayName": guest.name}}
            found.append({"name": f"{base}/p{n}", **who, **times})
        return found

    def transcripts(self, meeting: PlannedMeeting) -> list[dict[str, Any]]:
        if meeting.transcript == "none":
            return []
        name = f"conferenceRecords/cr{meeting.index:05d}/transcripts/t1"
        found: dict[str, Any] = {"name": name, "startTime": google_time(meeting.started),
                                 "endTime": google_time(meeting.ended),
                                 "state": "FILE_GENERATED" if meeting.transcript == "completed" else "ENDED"}
        if meeting.transcript == "completed":
            found["docsDestination"] = {"document": f"doc{meeting.index:05d}",
                                        "exportUri": f"https://docs.google.com/document/d/doc{meeting.index:05d}"}
        return [found]

    def entries(self, meeting: PlannedMeeting) -> list[dict[str, Any]]:
        if meeting.transcript != "completed" or self.doc_only(meeting):
            return []
        speakers = {p.get("signedinUser", p.get("anonymousUser", p.get("phoneUser", {}))).get("displayName"): p["name"]
                    for p in self.participants(meeting)}
        base = f"conferenceRecords/cr{meeting.index:05d}/transcripts/t1/entries"
        return [{"name": f"{base}/e{n}", "participant": speakers.get(speaker, ""), "text": text, "languageCode": "en-US",
                 "startTime": google_time(meeting.started + timedelta(seconds=offset)),
                 "endTime": google_time(meeting.started + timedelta(seconds=offset + 4))}
                for n, (offset, speaker, text) in enumerate(meeting.lines())]

    def document(self, meeting: PlannedMeeting) -> str:
        """The transcript's Google Doc as text/plain: a title, then a line per speaker turn."""
        return "\ufeffTranscript\n\n" + "\n".join(f"{speaker}: {text}" for _o, speaker, text in meeting.lines()) + "\n"

    def event(self, meeting: PlannedMeeting) -> dict[str, Any]:
        code = self.meeting_code(meeting)
        rng = self._rng(meeting, "attendees")
        attendees: list[dict[str, Any]] = [{"email": meeting.host, "displayName": meeting.host.split("@")[0].title(), "organizer": True,
                      "self": True, "responseStatus": "accepted"}]
        for guest in meeting.guests:
            if guest.email:
                attendee: dict[str, Any] = {"email": guest.email, "responseStatus": "accepted" if guest.joined else "needsAction"}
                if rng.random() > 0.2:  # Calendar often has no display name for an outside guest
                    attendee["displayName"] = guest.name
                attendees.append(attendee)
        return {"kind": "calendar#event", "id": f"ev{meeting.index:05d}", "status": "confirmed",
                "summary": meeting.topic, "organizer": {"email": meeting.host, "self": True},
                "start": {"dateTime": google_time(meeting.started)}, "end": {"dateTime": google_time(meeting.ended)},
                "attendees": attendees, "hangoutLink": f"https://meet.google.com/{code}",
                "conferenceData": {"conferenceId": code, "conferenceSolution": {"key": {"type": "hangoutsMeet"}},
                                   "entryPoints": [{"entryPointType": "video", "uri": f"https://meet.google.com/{code}"}]}}


def _error(status: int, message: str) -> Response:
    reason = {401: "authError", 403: "forbidden", 404: "notFound"}.get(status, "badRequest")
    return Response.json(google_error(status, reason, message), status)


def _paged(items: list[dict[str, Any]], key: str, request: Request, size_arg: str = "pageSize") -> Response:
    size = int(request.arg(size_arg) or 25)
    offset = int(request.arg("pageToken") or 0)
    body: dict[str, Any] = {key: items[offset:offset + size]}
    if offset + size < len(items):
        body["nextPageToken"] = str(offset + size)
    return Response.json(body)


def _token_route(server: SandboxServer, state: MeetState) -> None:
    @server.route("POST", r"/token", "token")
    def token(request: Request) -> Response:
        import google.auth.jwt

        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        try:
            claims = google.auth.jwt.decode(form.get("assertion", ""), certs={"sandbox-meet-key": state.public_pem})
        except Exception as error:  # a bad signature or shape is an OAuth error, as Google answers
            return Response.json({"error": "invalid_grant", "error_description": f"bad assertion: {error}"}, 400)
        subject = claims.get("sub")
        if MEET_SCOPE not in claims.get("scope", "").split() or subject not in state.users:
            return Response.json({"error": "unauthorized_client",
                                  "error_description": "Client is unauthorized for this scope or subject"}, 401)
        access = f"ya29.meet.{b64url(subject.encode())}.{int(time.time() * 1000)}"
        state.tokens[access] = subject
        return Response.json({"access_token": access, "expires_in": 3600, "token_type": "Bearer"})


def _user_of(state: MeetState, request: Request) -> str | None:
    return state.tokens.get(request.headers.get("Authorization", "").removeprefix("Bearer ").strip())


def build_server(state: MeetState, faults: Faults | None = None) -> SandboxServer:
    server = SandboxServer("meet", faults=faults)
    _token_route(server, state)
    _calendar_and_drive_routes(server, state)

    def organised(request: Request, index_of: str) -> PlannedMeeting | Response:
        user = _user_of(state, request)
        if user is None:
            return _error(401, "Request had invalid authentication credentials.")
        meeting = state.by_id(request.params[index_of]) or state.by_id(request.params[index_of].replace("sp", "cr"))
        if meeting is None or meeting.host != user:
            return _error(404, "Requested entity was not found.")
        return meeting

    @server.route("GET", r"/v2/conferenceRecords", "conferences")
    def conferences(request: Request) -> Response:
        user = _user_of(state, request)
        if user is None:
            return _error(401, "Request had invalid authentication credentials.")
        bounds = dict((op, datetime.fromisoformat(value.replace("Z", "+00:00")))
                      for op, value in _FILTER.findall(request.arg("filter") or ""))
        with state.lock:
            found = [m for m in state.meetings if m.host == user and m.started >= bounds.get(">=", datetime.min.replace(
                tzinfo=timezone.utc)) and m.started < bounds.get("<", datetime.max.replace(tzinfo=timezone.utc))]
        found.sort(key=lambda m: m.started, reverse=True)
        return _paged([state.conference(m) for m in found], "conferenceRecords", request)

    routes = {"spaces": (r"/v2/spaces/(?P<id>[^/]+)", lambda m, r: Response.json(state.space(m))),
              "participants": (r"/v2/conferenceRecords/(?P<id>[^/]+)/participants",
                               lambda m, r: _paged(state.participants(m), "participants", r)),
              "transcripts": (r"/v2/conferenceRecords/(?P<id>[^/]+)/transcripts",
                              lambda m, r: _paged(state.transcripts(m), "transcripts", r)),
              "entries": (r"/v2/conferenceRecords/(?P<id>[^/]+)/transcripts/t1/entries",
                          lambda m, r: _paged(state.entries(m), "transcriptEntries", r))}
    for name, (pattern, answer) in routes.items():
        def handler(request: Request, answer=answer) -> Response:
            meeting = organised(request, "id")
            return meeting if isinstance(meeting, Response) else answer(meeting, request)
        server.route("GET", pattern, name)(handler)

    return server


def _calendar_and_drive_routes(server: SandboxServer, state: MeetState) -> None:
    @server.route("GET", r"/calendar/v3/calendars/(?P<calendar>[^/]+)/events", "events")
    def events(request: Request) -> Response:
        user = _user_of(state, request)
        if user is None:
            return _error(401, "Request had invalid authentication credentials.")
        low = datetime.fromisoformat((request.arg("timeMin") or "1970-01-01T00:00:00Z").replace("Z", "+00:00"))
        high = datetime.fromisoformat((request.arg("timeMax") or "9999-01-01T00:00:00Z").replace("Z", "+00:00"))
        with state.lock:  # events that overlap [timeMin, timeMax), as Calendar filters them
            found = [state.event(m) for m in state.meetings if m.host == user and m.ended > low and m.started < high]
        return _paged(found, "items", request, "maxResults")

    @server.route("GET", r"/drive/v3/files/(?P<file>[^/]+)/export", "export")
    def export(request: Request) -> Response:
        user = _user_of(state, request)
        meeting = state.by_id(request.params["file"].replace("doc", "cr"))
        if user is None:
            return _error(401, "Request had invalid authentication credentials.")
        if meeting is None or meeting.host != user or meeting.transcript != "completed":
            return _error(404, f"File not found: {request.params['file']}.")
        if request.arg("mimeType") != "text/plain":
            return _error(400, "The requested conversion is not supported.")
        return Response(200, state.document(meeting).encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})


def for_local_run(settings: Any) -> "MeetSandbox":
    """The sandbox `make run` starts, not yet started."""
    return MeetSandbox(LOCAL_RUN_MEETINGS, size=LOCAL_RUN_SIZE)


class MeetSandbox(RunningSandbox):
    """A started Meet + Calendar + Drive fake: state + server."""

    def __init__(self, meetings: int = 30, *, size: CompanySize | None = None, faults: Faults | None = None,
                 **state_options: Any):
        self.state = MeetState(FakeCompany(42, size or CompanySize(accounts=50, contacts=2000, leads=500)), meetings,
                               **state_options)
        self.server = build_server(self.state, faults)

    def client_environment(self) -> dict[str, str]:
        return {"MEET_API_ENDPOINT": f"{self.url}/", "MEET_USERS": ",".join(self.state.users),
                "MEET_SERVICE_ACCOUNT_KEY": json.dumps(self.state.service_account_info(f"{self.url}/token"))}


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a loopback Google Meet, Calendar and Drive until interrupted.")
    parser.add_argument("--meetings", type=int, default=100)
    args = parser.parse_args()
    serve_until_interrupted(MeetSandbox(args.meetings), f"Meet sandbox at {{url}} ({args.meetings} meetings)",
                            "export MEET_API_ENDPOINT={url}/", "(service-account key: MeetSandbox.client_environment())")


if __name__ == "__main__":
    main()
