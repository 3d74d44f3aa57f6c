"""A loopback Dialpad API (v2) that a requests-based client runs against unmodified.

Serves `GET /api/v2/call` (started_after/started_before in epoch ms, newest first, finished calls only,
cursor paging), `GET /api/v2/transcripts/{call_id}`, and `GET /api/v2/call/{id}` with its own
10-per-minute limit. Auth: `Authorization: Bearer <key>` or `?apikey=`. The company-wide limit (20
requests/s by default) is enforced: past it the answer is 429 with Retry-After, and the request log
lets tests read the busiest window. Calls come from the fake company: external numbers are the CRM
people's phones written the ways Dialpad sends them, plus "anonymous" and vanity junk; int64 values
arrive as JSON strings as often as numbers; a knob adds malformed calls.

What Dialpad's OpenAPI spec shows and the sandbox sends, from the seed: transcripts with AI moments among
the spoken lines (`type` moment, custom_moment, real_time_moment, ai_question) and lines out of time order,
as the spec's example transcript has them; line times timezone-less with microseconds as in that example
(some with a Z); user ids as strings or numbers; a recorded call now and then answered with its call id and
no lines (not transcribed). The list's cursor carries only the position: the filters
are read from each request (the spec does not say the real cursor keeps them, and Dialpad's SDK sends them
again with every cursor). `list_queries` keeps each list request's parameters for tests.

Webhooks as Dialpad's event subscriptions: `POST /api/v2/webhooks` ({hook_url, secret}) and
`POST /api/v2/subscriptions/call` ({webhook_id, call_states, enabled}); `end_call()` adds a call that ends now and
posts its `hangup` (and, when transcribed, `call_transcription`) event to every subscribed webhook as a JWT signed
HS256 with the webhook's secret, retried at most 3 times on a 5xx and never after a 4xx, as Dialpad does.

    python -m sandbox.dialpad --calls 5000 --latency 0.03
"""
from __future__ import annotations

import argparse
import base64
import json
import random
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from config.settings import Settings
from sandbox.company import LOCAL_RUN_SIZE, CompanySize, FakeCompany, messy_phone
from sandbox.server import Faults, Request, Response, RunningSandbox, SandboxServer, WindowLimit, data_anchor, serve_until_interrupted

DEFAULT_API_KEY = "sandbox-dialpad-key"
EMPLOYEE_IDS = (5001, 5002, 5003)
# Recorded calls whose transcript answer is the call id without lines (developers.dialpad.com/discuss: a call
# Dialpad Ai did not transcribe, e.g. in a language it does not support)
UNTRANSCRIBED_SHARE = 0.1
# Dialpad Ai moments: (line type, content); the names are those of the spec's example and the like.
MOMENTS = (("moment", "price_inquiry"), ("moment", "not_white_listed_moment"), ("custom_moment", "competitor_mention"),
           ("real_time_moment", "next_steps"), ("ai_question", "What does the enterprise plan include?"))


class DialpadState:
    """Calls, transcripts, the API key and the rate limits of one fake Dialpad company."""

    def __init__(self, company: FakeCompany, calls: int = 200, *, transcript_share: float = 0.5,
                 malformed: int = 0, page_size: int = 50, requests_per_second: int = 20, seed: int = 3,
                 spacing_seconds: int = 600):
        self.company = company
        self.api_key = DEFAULT_API_KEY
        self.page_size = page_size
        self.requests_per_second = requests_per_second
        self.transcript_share = transcript_share
        self.rng = random.Random(seed)
        # Transcripts draw from their own stream, so the calls stay the same whatever the transcripts hold.
        self.transcript_rng = random.Random(f"{seed} transcripts")
        self.list_queries: list[dict[str, str | None]] = []
        self.end = data_anchor() - timedelta(minutes=5)
        self.calls: list[dict[str, Any]] = []
        self.transcripts: dict[str, dict[str, Any]] = {}
        self.untranscribed: dict[str, dict[str, Any]] = {}  # recorded calls answered with the call id alone
        self.lock = threading.Lock()
        self.webhooks: dict[str, dict[str, Any]] = {}  # POST /api/v2/webhooks: id -> {id, hook_url, secret}
        self.call_subscriptions: list[dict[str, Any]] = []  # POST /api/v2/subscriptions/call
        self.deliveries: list[tuple[str, int]] = []  # (state, HTTP status or 0 for a connection error) per attempt
        self.company_limit = WindowLimit(requests_per_second, 1.0)
        self.single_call_limit = WindowLimit(10, 60.0)  # GET /call/{id}: 10 per minute
        for index in range(calls):
            self._add(self._call(index, self.end - timedelta(seconds=(calls - index) * spacing_seconds)))
        for index in range(malformed):
            self._add(self._malformed(index))

    # -- data
    def _ms(self, moment: datetime) -> int:
        return int(moment.timestamp() * 1000)

    def _int64(self, value: int, rng: random.Random | None = None) -> int | str:
        # Dialpad sends int64 fields as JSON strings (proto3's JSON mapping); not always.
        return str(value) if (rng or self.rng).random() < 0.5 else value

    def _call(self, index: int, started: datetime) -> dict[str, Any]:
        rng = self.rng
        size = self.company.size
        person = self.company.contact(index % size.contacts) if size.contacts else None
        employee_index = index % len(EMPLOYEE_IDS)
        employee_email = self.company.employees()[employee_index]
        roll = rng.random()
        if person is None or roll < 0.03:
            external = "anonymous"
        elif roll < 0.04:
            external = "+1 (555) CALL-NOW"
        elif roll < 0.75:
            external = person["true_phone_e164"]
        else:
            external = messy_phone(person["true_phone_e164"], rng)
        answered = rng.random() > 0.2
        talk = rng.randint(20, 1800) * 1000 if answered else 0
        rang = started + timedelta(seconds=rng.randint(1, 5))
        connected = rang + timedelta(seconds=rng.randint(2, 20)) if answered else None
        ended = (connected or rang) + timedelta(milliseconds=talk or 15_000)
        call_id = 4_000_000_000 + index
        recorded = answered and rng.random() < self.transcript_share / 0.8
        call = {
            "call_id": self._int64(call_id), "date_started": self._int64(self._ms(started)),
            "date_rang": self._int64(self._ms(rang)),
            "date_connected": self._int64(self._ms(connected)) if connected else None,
            "date_ended": self._int64(self._ms(ended)), "duration": float(talk),
            "total_duration": float(self._ms(ended) - self._ms(started)),
            "direction": "inbound" if index % 2 else "outbound", "state": "hangup",
            "external_number": external, "internal_number": f"+1415555{1000 + employee_index:04d}",
            "target": {"id": str(EMPLOYEE_IDS[employee_index]), "type": "user", "email": employee_email,
                       "name": employee_email.split("@")[0].title(), "phone": f"+1415555{1000 + employee_index:04d}"},
            "contact": ({"id": f"c{index % max(1, size.contacts)}", "type": "local",
                         "name": f"{person['FirstName']} {person['LastName']}",
                         "email": person["true_email"] if rng.random() < 0.6 else "", "phone": external}
                        if person else {}),
            "was_recorded": recorded, "labels": ["sales"] if index % 3 == 0 else [],
            "is_transferred": False, "event_timestamp": self._int64(self._ms(ended)),
        }
        if recorded and self.transcript_rng.random() < UNTRANSCRIBED_SHARE:
            self.untranscribed[str(call_id)] = {"call_id": self._int64(call_id, self.transcript_rng)}
        elif recorded:
            self.transcripts[str(call_id)] = self._transcript(call_id, started, person)
        return call

    def _transcript(self, call_id: int, started: datetime, person: dict[str, Any] | None) -> dict[str, Any]:
        rng = self.transcript_rng
        speaker = f"{person['FirstName']} {person['LastName']}" if person else "Caller"
        said = ("Hi, thanks for calling.", "We were looking at the proposal.", "Can you send the pricing?",
                "Sure, I'll follow up by email.", "Great, talk next week.")
        lines = []
        for n, content in enumerate(said[: 3 + call_id % 3]):
            ours = n % 2 == 0
            lines.append(self._line(content, "Sales" if ours else speaker, started + timedelta(seconds=10 * n),
                                    "transcript", ours))
        for n in range(rng.choice((0, 1, 2))):
            kind, content = rng.choice(MOMENTS)
            lines.append(self._line(content, "Sales", started + timedelta(seconds=10 * n + 5, microseconds=300_000),
                                    kind, True))
        if rng.random() < 0.5:  # the spec's example: moments after the lines, a later line listed first
            lines.insert(0, lines.pop(1))
        return {"call_id": self._int64(call_id, rng), "lines": lines}

    def _line(self, content: str, name: str, moment: datetime, kind: str, ours: bool) -> dict[str, Any]:
        rng = self.transcript_rng
        moment += timedelta(microseconds=rng.randrange(0, 1_000_000, 100_000))
        # Timezone-less with microseconds as in the spec's example; now and then RFC 3339 with a Z
        time = (moment.replace(tzinfo=None).isoformat(timespec="microseconds") if rng.random() < 0.8
                else moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        who = {"user_id": self._int64(EMPLOYEE_IDS[0], rng)} if ours else {"contact_id": "c1"}
        return {"content": content, "name": name, "time": time, "type": kind, **who}

    def _malformed(self, index: int) -> dict[str, Any]:
        started = self._ms(self.end - timedelta(minutes=index + 1))
        kinds: list[dict[str, Any]] = [
            {"date_started": started, "external_number": "+14155550123"},                        # no call_id
            {"call_id": str(9_000_000_000 + index), "date_started": "32503680000000"},             # year 3000
            {"call_id": str(9_100_000_000 + index), "date_started": started, "date_ended": -5,
             "external_number": "anonymous", "duration": "n/a"},                                  # junk fields
            {"call_id": str(9_200_000_000 + index), "date_started": started,
             "external_number": "+1 (555) CALL-NOW", "contact": {"email": "not an email"}},
        ]
        return {"state": "hangup", **kinds[index % len(kinds)]}

    def _add(self, call: dict[str, Any]) -> None:
        self.calls.append(call)

    def add_calls(self, count: int) -> list[dict[str, Any]]:
        """New calls after every existing one (an incremental run should find exactly these)."""
        with self.lock:
            added = []
            now_ms = self._ms(datetime.now(timezone.utc))
            start = max(s for s in (self.started(c) for c in self.calls) if s is not None and s < now_ms)
            for n in range(count):
                moment = datetime.fromtimestamp(start / 1000, tz=timezone.utc) + timedelta(seconds=30 * (n + 1))
                call = self._call(len(self.calls) + n, moment)
                self._add(call)
                added.append(call)
            return added

    def end_call(self) -> dict[str, Any]:
        """A call that ends now (listed from now on) and its events: `hangup`, then `call_transcription` when it was
        recorded and transcribed, each posted to the subscribed webhooks as Dialpad posts them (see deliver)."""
        with self.lock:
            now_ms = self._ms(datetime.now(timezone.utc))
            call = self._call(len(self.calls), datetime.now(timezone.utc))
            shift = int(call["date_ended"]) - now_ms  # the generated call ends later: moved so it ended now
            for name in ("date_started", "date_rang", "date_connected", "date_ended", "event_timestamp"):
                if call.get(name) is not None:
                    call[name] = int(call[name]) - shift
            self._add(call)
        events = [call] + ([{**call, "state": "call_transcription"}]
                           if str(call["call_id"]) in self.transcripts else [])
        threading.Thread(target=self.deliver, args=(events,), daemon=True).start()
        return call

    def deliver(self, events: list[dict[str, Any]]) -> None:
        """Posts each event to every webhook subscribed to its state, as a JWT signed HS256 with the webhook's secret;
        like Dialpad, retried at most 3 times within seconds on a 5xx or no answer, never after a 4xx."""
        import jwt
        import requests

        for event in events:
            for subscription in self.call_subscriptions:
                if not subscription["enabled"] or event["state"] not in subscription["call_states"]:
                    continue
                hook = self.webhooks[subscription["webhook_id"]]
                body = jwt.encode(event, hook["secret"], algorithm="HS256")
                for attempt in range(4):
                    try:
                        status = requests.post(hook["hook_url"], data=body, timeout=5,
                                               headers={"Content-Type": "application/jwt"}).status_code
                    except requests.RequestException:
                        status = 0
                    self.deliveries.append((event["state"], status))
                    if 0 < status < 500:
                        break
                    time.sleep(0.5 * (attempt + 1))

    def started(self, call: dict[str, Any]) -> int | None:
        try:
            return int(call["date_started"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def rate_limited(self) -> int:
        """Requests refused by the company-wide limit."""
        return self.company_limit.refused


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json({"error": {"code": status, "message": message}}, status, headers)


def build_server(state: DialpadState, faults: Faults | None = None) -> SandboxServer:
    server = SandboxServer("dialpad", faults=faults)

    def guarded(handler):
        def wrapped(request: Request) -> Response:
            key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or request.arg("apikey")
            if key != state.api_key:
                return _error(401, "Unauthorized: invalid API key")
            if not state.company_limit.admit():
                return _error(429, "Rate limit exceeded", {"Retry-After": "1"})
            return handler(request)
        wrapped.__name__ = handler.__name__
        return wrapped

    @server.route("GET", r"/api/v2/call", "call_list")
    @guarded
    def call_list(request: Request) -> Response:
        query = {name: request.arg(name) for name in ("started_after", "started_before", "cursor")}
        state.list_queries.append(query)
        offset = 0
        if query["cursor"]:
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(query["cursor"].encode()))["offset"])
            except (ValueError, KeyError, TypeError):
                return _error(400, "invalid cursor")
        after = int(query["started_after"]) if query["started_after"] else None
        before = int(query["started_before"]) if query["started_before"] else None
        with state.lock:
            matching = [c for c in state.calls
                        if (after is None or (state.started(c) or 0) > after)
                        and (before is None or (state.started(c) or 0) < before)]
        matching.sort(key=lambda c: state.started(c) or 0, reverse=True)
        page = matching[offset:offset + state.page_size]
        body: dict[str, Any] = {"items": page}
        if offset + state.page_size < len(matching):
            body["cursor"] = base64.urlsafe_b64encode(json.dumps({"offset": offset + state.page_size}).encode()).decode()
        return Response.json(body)

    @server.route("GET", r"/api/v2/call/(?P<call_id>\d+)", "call_get")
    @guarded
    def call_get(request: Request) -> Response:
        if not state.single_call_limit.admit():
            return _error(429, "GET /call/{id} is limited to 10 per minute", {"Retry-After": "60"})
        for call in state.calls:
            if str(call.get("call_id")) == request.params["call_id"]:
                return Response.json(call)
        return _error(404, "call not found")

    @server.route("POST", r"/api/v2/webhooks", "webhooks")
    @guarded
    def create_webhook(request: Request) -> Response:
        body = request.json() or {}
        if not isinstance(body.get("hook_url"), str) or not body["hook_url"].startswith(("http://", "https://")):
            return _error(400, "hook_url is required")
        webhook = {"id": str(len(state.webhooks) + 1), "hook_url": body["hook_url"], "secret": body.get("secret")}
        if not webhook["secret"]:
            return _error(400, "secret is required: unsigned events are refused by this pipeline")
        state.webhooks[webhook["id"]] = webhook
        return Response.json({"id": webhook["id"], "hook_url": webhook["hook_url"],
                              "signature": {"algo": "HS256", "type": "jwt"}})

    @server.route("POST", r"/api/v2/subscriptions/call", "call_subscriptions")
    @guarded
    def create_call_subscription(request: Request) -> Response:
        body = request.json() or {}
        if str(body.get("webhook_id")) not in state.webhooks or not body.get("call_states"):
            return _error(400, "webhook_id of an existing webhook and call_states are required")
        webhook_id = str(body["webhook_id"])
        subscription = {"id": str(len(state.call_subscriptions) + 1), "webhook_id": webhook_id,
                        "call_states": list(body["call_states"]), "enabled": bool(body.get("enabled", True))}
        state.call_subscriptions.append(subscription)
        hook = state.webhooks[webhook_id]
        return Response.json({**subscription, "webhook": {"id": hook["id"], "hook_url": hook["hook_url"]}})

    @server.route("GET", r"/api/v2/transcripts/(?P<call_id>\d+)", "transcript")
    @guarded
    def transcript(request: Request) -> Response:
        found = state.transcripts.get(request.params["call_id"]) or state.untranscribed.get(request.params["call_id"])
        return Response.json(found) if found else _error(404, "no transcript for this call")

    return server


class DialpadSandbox(RunningSandbox):
    """A started Dialpad fake: state + server."""

    def client_environment(self) -> dict[str, str]:
        return {"DIALPAD_BASE_URL": self.url, "DIALPAD_API_KEY": self.state.api_key}

    def __init__(self, calls: int = 200, *, size: CompanySize | None = None, faults: Faults | None = None,
                 **state_options: Any):
        self.state = DialpadState(FakeCompany(42, size or CompanySize(accounts=50, contacts=2000, leads=500)),
                                  calls, **state_options)
        self.server = build_server(self.state, faults)


LOCAL_RUN_CALLS = 200


def for_local_run(settings: Settings) -> DialpadSandbox:
    """The sandbox `make run` starts (the registry's `sandbox`), not yet started."""
    return DialpadSandbox(LOCAL_RUN_CALLS, size=LOCAL_RUN_SIZE)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a loopback Dialpad until interrupted.")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    serve_until_interrupted(DialpadSandbox(args.calls, faults=Faults(latency_seconds=args.latency)),
                            f"Dialpad sandbox at {{url}} ({args.calls} calls)", "export DIALPAD_BASE_URL={url}",
                            "(API key: DEFAULT_API_KEY in sandbox/dialpad.py)")


if __name__ == "__main__":
    main()
