"""A loopback Zoom API (v2) and OAuth host that a requests-based client runs against unmodified.

Serves Server-to-Server OAuth (`POST /oauth/token?grant_type=account_credentials&account_id=...`, the client id
and secret as basic auth; tokens last `token_seconds`), `GET /v2/users`, `GET /v2/report/users/{id}/meetings`
(from/to days, at most a month apart), `GET /v2/past_meetings/{uuid}/participants` (a UUID that starts with "/" or
holds "//" must come encoded twice: encoded once, Zoom's router sees extra path segments and answers 404),
`GET /v2/users/{id}/recordings` (from/to, a month at most) and recording file downloads (bearer token).
Rate limits per category at Pro's rates (Light 30/s, Medium 20/s, Heavy 10/s) answer 429 with
X-RateLimit-Category, X-RateLimit-Type QPS and Retry-After; `heavy_daily_limit` answers 429 Daily-limit with
Retry-After the next midnight UTC. Meetings come from sandbox/meeting_plan.py: guests without email, dial-ins,
rejoins, meetings without recording, transcripts still processing.

Webhooks: `send_url_validation(url, secret)` posts an `endpoint.url_validation` event and checks the answer;
`send_transcript_completed(url, secret, meeting)` posts a signed `recording.transcript_completed` event
(x-zm-signature, x-zm-request-timestamp), as Zoom does.

    python -m sandbox.zoom --meetings 200
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import random
import secrets
import threading
import time
import zlib
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable
from urllib.parse import unquote

import requests

from sandbox.company import LOCAL_RUN_SIZE, CompanySize, FakeCompany
from sandbox.meeting_plan import PlannedMeeting, plan_meeting, plan_meetings
from sandbox.server import Faults, Request, Response, RunningSandbox, SandboxServer, WindowLimit, data_anchor, serve_until_interrupted

ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET = "sandbox-account", "sandbox-zoom-client", "sandbox-zoom-secret"
QPS = {"light": 30, "medium": 20, "heavy": 10}
MAX_RANGE_DAYS = 31
LOCAL_RUN_MEETINGS = 40


def zoom_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def vtt(meeting: PlannedMeeting) -> str:
    """The meeting's transcript as Zoom writes it: WebVTT, numbered cues, "Speaker: text"."""
    cues = ["WEBVTT", ""]
    for number, (offset, speaker, text) in enumerate(meeting.lines(), 1):
        start = offset * 1000 + 940
        cues += [str(number), f"{_stamp(start)} --> {_stamp(start + 4000)}", f"{speaker}: {text}", ""]
    return "\n".join(cues)


class ZoomState:
    """Users, meetings, recordings, tokens and rate limits of one fake Zoom account."""

    def __init__(self, company: FakeCompany, meetings: int = 40, *, spacing_hours: float = 6, seed: int = 11,
                 token_seconds: int = 3600, heavy_daily_limit: int | None = None):
        self.company = company
        self.hosts = company.employees(3)
        self.users: list[dict[str, Any]] = [{"id": f"zu{n:04d}Xy", "email": email, "first_name": email.split("@")[0].title(),
                       "last_name": "Example", "type": 2, "status": "active"} for n, email in enumerate(self.hosts)]
        self.rng = random.Random(seed)
        self.seed = seed
        self.token_seconds = token_seconds
        self.tokens: dict[str, float] = {}
        self.lock = threading.Lock()
        self.limits = {category: WindowLimit(rate, 1.0) for category, rate in QPS.items()}
        self.heavy_today = WindowLimit(heavy_daily_limit, 86_400.0)
        self.end = data_anchor() - timedelta(hours=1)
        self.meetings: list[PlannedMeeting] = []
        self.uuids: dict[int, str] = {}
        self.participant_paths: list[str] = []  # the raw path of each participants request, for tests
        for planned in plan_meetings(company, self.hosts, meetings, self.end, timedelta(hours=spacing_hours), seed):
            self._add(planned)

    def _add(self, planned: PlannedMeeting) -> None:
        raw = base64.b64encode(random.Random(f"{self.seed} uuid {planned.index}").randbytes(16)).decode()
        # Zoom's UUIDs are base64: now and then one starts with "/" or holds "//" (encoded twice in paths)
        if planned.index % 9 == 4:
            raw = "/" + raw[1:]
        elif planned.index % 9 == 7:
            raw = raw[:5] + "//" + raw[7:]
        self.uuids[planned.index] = raw
        self.meetings.append(planned)

    def add_meetings(self, count: int) -> list[PlannedMeeting]:
        """New meetings after every existing one (an incremental run should find exactly these)."""
        with self.lock:
            # Ended by now: they started within the last three hours, after every existing one
            last = max([m.started for m in self.meetings] + [datetime.now(timezone.utc) - timedelta(hours=3)])
            added = [plan_meeting(self.company, self.hosts, len(self.meetings) + n, last + timedelta(minutes=20 * (n + 1)),
                                  self.seed) for n in range(count)]
            for planned in added:
                self._add(planned)
            return added

    def finish_transcripts(self) -> int:
        """Transcripts still processing become completed (Zoom finished them); how many."""
        processing = [m for m in self.meetings if m.transcript == "processing"]
        for meeting in processing:
            meeting.transcript = "completed"
        return len(processing)

    def user(self, user_id: str) -> dict[str, Any] | None:
        return next((u for u in self.users if u["id"] == user_id or u["email"] == user_id), None)

    def by_uuid(self, uuid: str) -> PlannedMeeting | None:
        return next((m for m in self.meetings if self.uuids[m.index] == uuid), None)

    # -- wire shapes
    def report_meeting(self, meeting: PlannedMeeting) -> dict[str, Any]:
        host = self.users[self.hosts.index(meeting.host)]
        joined = [g for g in meeting.guests if g.joined]
        return {"uuid": self.uuids[meeting.index], "id": 81_000_000_000 + meeting.index, "host_id": host["id"],
                "type": 2, "topic": meeting.topic, "user_name": host["first_name"],
                "user_email": meeting.host, "start_time": zoom_time(meeting.started),
                "end_time": zoom_time(meeting.ended), "duration": meeting.minutes, "total_minutes": meeting.minutes,
                "participants_count": 1 + len(joined), "source": "Zoom"}

    def participants(self, meeting: PlannedMeeting) -> list[dict[str, Any]]:
        host = self.users[self.hosts.index(meeting.host)]
        rows = [self._join(host["id"], host["first_name"], meeting.host, meeting.started, meeting.ended)]
        for n, guest in enumerate(g for g in meeting.guests if g.joined):
            pid = f"gp{meeting.index:04d}{n}" if guest.email else ""
            begin = meeting.started + timedelta(minutes=1)
            if guest.rejoined:  # a dropped connection: two joins of one person
                middle = begin + (meeting.ended - begin) / 2
                rows.append(self._join(pid, guest.name, guest.email, begin, middle - timedelta(minutes=1)))
                begin = middle
            rows.append(self._join(pid, guest.name, guest.email, begin, meeting.ended))
        return rows

    def _join(self, pid: str, name: str, email: str | None, joined: datetime, left: datetime) -> dict[str, Any]:
        return {"id": pid, "name": name, "user_id": str(zlib.crc32(f"{pid} {name}".encode()) % 10**8), "registrant_id": "",
                "user_email": email or "", "join_time": zoom_time(joined), "leave_time": zoom_time(left),
                "duration": int((left - joined).total_seconds()), "failover": False, "status": "in_meeting"}

    def recording(self, meeting: PlannedMeeting, base_url: str) -> dict[str, Any]:
        uuid = self.uuids[meeting.index]
        files = [self._file(meeting, "MP4", "MP4", "shared_screen_with_speaker_view", "completed", base_url)]
        if meeting.transcript != "none":
            files.append(self._file(meeting, "TRANSCRIPT", "VTT", "audio_transcript", meeting.transcript, base_url))
        return {"uuid": uuid, "id": 81_000_000_000 + meeting.index, "account_id": ACCOUNT_ID,
                "host_id": self.users[self.hosts.index(meeting.host)]["id"], "topic": meeting.topic,
                "type": 2, "start_time": zoom_time(meeting.started), "timezone": "UTC", "duration": meeting.minutes,
                "total_size": 1_000_000, "recording_count": len(files), "recording_files": files}

    def _file(self, meeting: PlannedMeeting, file_type: str, extension: str, kind: str, status: str,
              base_url: str) -> dict[str, Any]:
        file_id = f"rf-{meeting.index:05d}-{file_type.lower()}"
        return {"id": file_id, "meeting_id": self.uuids[meeting.index], "recording_start": zoom_time(meeting.started),
                "recording_end": zoom_time(meeting.ended), "file_type": file_type, "file_extension": extension,
                "file_size": 1000, "play_url": f"{base_url}/rec/play/{file_id}",
                "download_url": f"{base_url}/rec/download/{file_id}", "status": status, "recording_type": kind}


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json({"code": code, "message": message}, status, headers)


def _days(request: Request) -> tuple[date, date] | Response:
    try:
        first, last = date.fromisoformat(request.arg("from") or ""), date.fromisoformat(request.arg("to") or "")
    except ValueError:
        return _error(400, 300, "The from and to parameters are required, as yyyy-mm-dd.")
    if last < first or (last - first).days > MAX_RANGE_DAYS:
        return _error(400, 300, "The date range must be one month at most.")
    return first, last


def _page(items: list[dict[str, Any]], key: str, request: Request, extra: dict[str, Any] | None = None) -> Response:
    size = min(int(request.arg("page_size") or 30), 300)
    offset = int(request.arg("next_page_token") or 0)
    body = {"page_size": size, "total_records": len(items), key: items[offset:offset + size],
            "next_page_token": str(offset + size) if offset + size < len(items) else "", **(extra or {})}
    return Response.json(body)


def _guarded(state: ZoomState, category: str):
    """A route that needs a live token and passes its category's per-second limit (and Heavy's daily one)."""
    def wrap(handler):
        def wrapped(request: Request) -> Response:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if state.tokens.get(given, 0) < time.monotonic():
                return _error(401, 124, "Invalid access token.")
            headers = {"X-RateLimit-Category": category.title(), "X-RateLimit-Type": "QPS"}
            if not state.limits[category].admit():
                return _error(429, 429, "You have reached the maximum per-second rate limit for this API. "
                              "Try again later.", {**headers, "Retry-After": "1"})
            if category == "heavy" and not state.heavy_today.admit():
                midnight = datetime.combine(datetime.now(timezone.utc).date() + timedelta(days=1),
                                            datetime.min.time(), timezone.utc)
                return _error(429, 429, "You have exceeded the daily rate limit of this API.",
                              {**headers, "X-RateLimit-Type": "Daily-limit", "X-RateLimit-Remaining": "0",
                               "Retry-After": zoom_time(midnight)})
            return handler(request)
        wrapped.__name__ = handler.__name__
        return wrapped
    return wrap


def _token_route(server: SandboxServer, state: ZoomState) -> None:
    @server.route("POST", r"/oauth/token", "token")
    def token(request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return Response.json({"reason": "Invalid client_id or client_secret", "error": "invalid_client"}, 401)
        if request.arg("grant_type") != "account_credentials" or request.arg("account_id") != ACCOUNT_ID:
            return Response.json({"reason": "Invalid account_id", "error": "invalid_request"}, 400)
        issued = f"sbx.{secrets.token_urlsafe(12)}"
        state.tokens[issued] = time.monotonic() + state.token_seconds
        return Response.json({"access_token": issued, "token_type": "bearer", "expires_in": state.token_seconds,
                              "scope": "user:read:admin report:read:admin recording:read:admin meeting:read:admin",
                              "api_url": "https://api.zoom.us"})


def build_server(state: ZoomState, faults: Faults | None = None) -> SandboxServer:
    server = SandboxServer("zoom", faults=faults)
    _token_route(server, state)
    _list_routes(server, state)

    @server.route("GET", r"/v2/past_meetings/(?P<uuid>[^/]+)/participants", "participants")
    @_guarded(state, "medium")
    def participants(request: Request) -> Response:
        state.participant_paths.append(request.path)
        once = unquote(request.params["uuid"])
        meeting = state.by_uuid(unquote(once) if "%" in once else once)
        if meeting is None:
            return _error(404, 3001, "Meeting does not exist.")
        return _page(state.participants(meeting), "participants", request)

    @server.route("GET", r"/rec/download/(?P<file>[^/]+)", "download")
    @_guarded(state, "medium")
    def download(request: Request) -> Response:
        index = int(request.params["file"].split("-")[1])
        meeting = next((m for m in state.meetings if m.index == index), None)
        if meeting is None or not request.params["file"].endswith("transcript") or meeting.transcript != "completed":
            return _error(404, 3301, "This recording does not exist.")
        return Response(200, vtt(meeting).encode(), {"Content-Type": "text/vtt; charset=utf-8"})

    return server


def _list_routes(server: SandboxServer, state: ZoomState) -> None:
    @server.route("GET", r"/v2/users", "users")
    @_guarded(state, "light")
    def users(request: Request) -> Response:
        return _page(state.users, "users", request)

    @server.route("GET", r"/v2/report/users/(?P<user>[^/]+)/meetings", "report_meetings")
    @_guarded(state, "heavy")
    def report_meetings(request: Request) -> Response:
        return _user_meetings(state, request, lambda m: state.report_meeting(m))

    @server.route("GET", r"/v2/users/(?P<user>[^/]+)/recordings", "recordings")
    @_guarded(state, "medium")
    def recordings(request: Request) -> Response:
        return _user_meetings(state, request, lambda m: state.recording(m, server.url) if m.recorded else None)


def _user_meetings(state: ZoomState, request: Request,
                   shape: Callable[[PlannedMeeting], dict[str, Any] | None]) -> Response:
    """A user's meetings that started on the days from/to (a month at most), in the shape of the list asked."""
    days = _days(request)
    user = state.user(unquote(request.params["user"]))
    if isinstance(days, Response):
        return days
    if user is None:
        return _error(404, 1001, "User does not exist.")
    with state.lock:
        found = [shape(m) for m in state.meetings if m.host == user["email"] and days[0] <= m.started.date() <= days[1]]
    return _page([f for f in found if f is not None], "meetings", request,
                 {"from": days[0].isoformat(), "to": days[1].isoformat()})


def _signed_post(url: str, secret: str, event: dict[str, Any]) -> requests.Response:
    body = json.dumps(event).encode()
    timestamp = str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return requests.post(url, data=body, timeout=10, headers={
        "Content-Type": "application/json", "x-zm-request-timestamp": timestamp, "x-zm-signature": signature})


def send_url_validation(url: str, secret: str) -> bool:
    """Zoom's endpoint check: an endpoint.url_validation event; True when the answer's encryptedToken is right."""
    plain = secrets.token_urlsafe(16)
    answer = _signed_post(url, secret, {"payload": {"plainToken": plain}, "event_ts": int(time.time() * 1000),
                                        "event": "endpoint.url_validation"})
    expected = hmac.new(secret.encode(), plain.encode(), hashlib.sha256).hexdigest()
    body = answer.json() if answer.ok else {}
    return body.get("plainToken") == plain and body.get("encryptedToken") == expected


def for_local_run(settings: Any) -> "ZoomSandbox":
    """The sandbox `make run` starts, not yet started."""
    return ZoomSandbox(LOCAL_RUN_MEETINGS, size=LOCAL_RUN_SIZE)


class ZoomSandbox(RunningSandbox):
    """A started Zoom fake: state + server."""

    def __init__(self, meetings: int = 40, *, size: CompanySize | None = None, faults: Faults | None = None,
                 **state_options: Any):
        self.state = ZoomState(FakeCompany(42, size or CompanySize(accounts=50, contacts=2000, leads=500)),
                               meetings, **state_options)
        self.server = build_server(self.state, faults)

    def client_environment(self) -> dict[str, str]:
        return {"ZOOM_BASE_URL": f"{self.url}/v2", "ZOOM_OAUTH_URL": self.url, "ZOOM_ACCOUNT_ID": ACCOUNT_ID,
                "ZOOM_CLIENT_ID": CLIENT_ID, "ZOOM_CLIENT_SECRET": CLIENT_SECRET}

    def send_transcript_completed(self, url: str, secret: str, meeting: PlannedMeeting) -> requests.Response:
        """Posts Zoom's signed recording.transcript_completed event of a meeting to url."""
        recording = self.state.recording(meeting, self.url)
        return _signed_post(url, secret, {"event": "recording.transcript_completed", "event_ts": int(time.time() * 1000),
                                          "payload": {"account_id": ACCOUNT_ID, "object": recording}})


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a loopback Zoom until interrupted.")
    parser.add_argument("--meetings", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    serve_until_interrupted(ZoomSandbox(args.meetings, faults=Faults(latency_seconds=args.latency)),
                            f"Zoom sandbox at {{url}} ({args.meetings} meetings)", "export ZOOM_BASE_URL={url}/v2",
                            "export ZOOM_OAUTH_URL={url}", "(credentials: ACCOUNT_ID, CLIENT_ID, CLIENT_SECRET in "
                            "sandbox/zoom.py)")


if __name__ == "__main__":
    main()
