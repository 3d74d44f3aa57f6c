"""The harness every SaaS fake runs on: a threaded loopback HTTP(S) server with routes and fault knobs.

A fake declares routes (method + path regex -> handler). The harness binds 127.0.0.1 on a free port,
optionally serves TLS with a self-signed certificate made at start-up (simple-salesforce only speaks
https), counts requests per route and per second (so tests can prove a rate limit was respected),
and injects latency and 429/5xx faults: at random rates from a seed, or exactly the next N requests;
bodies cut short mid-way (truncate_next), as a dropped connection leaves them; and a request held
until the test releases it (hold_next), to act at an exact point of a run.
"""
from __future__ import annotations

import json
import random
import re
import ssl
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict

from config.settings import Settings

LOOPBACK = "127.0.0.1"



def data_anchor() -> datetime:
    """The moment a sandbox's synthetic data is laid out around: now, or SANDBOX_NOW (ISO 8601) when set.

    With SANDBOX_NOW two processes serve the very same records (the warehouse comparison test runs the
    pipeline twice, minutes apart).
    """
    import os

    fixed = os.environ.get("SANDBOX_NOW")
    moment = datetime.fromisoformat(fixed) if fixed else datetime.now(timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0)


@dataclass
class Request:
    """An incoming request as a handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict  # HTTP header names are case-insensitive (httplib2 sends them lower-case)
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    """What a handler answers."""

    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> "Response":
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode()


Handler = Callable[[Request], Response]


class Hold:
    """A request held at the server until released: `reached` is set when it arrives (tests use it to act
    at an exact point of a run: start an overlapping run, kill the client)."""

    def __init__(self, pattern: re.Pattern[str], skip: int):
        self.pattern, self.skip = pattern, skip
        self.reached = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def wait(self) -> None:
        self.reached.set()
        self._released.wait()


@dataclass
class Faults:
    """Fault knobs: latency on every request, random 429/5xx rates, and exact injections."""

    latency_seconds: float = 0.0
    rate_429: float = 0.0
    rate_5xx: float = 0.0
    retry_after_seconds: float = 0.05
    seed: int = 7
    _queued: deque = field(default_factory=deque)
    _truncated: deque = field(default_factory=deque)
    _holds: list = field(default_factory=list)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def fail_next(self, count: int, status: int = 503, path_pattern: str = ".*",
                  body: Any = None, headers: dict[str, str] | None = None) -> None:
        """The next `count` requests whose path matches answer `status`."""
        for _ in range(count):
            self._queued.append((re.compile(path_pattern), status, body, headers or {}))

    def hold_next(self, path_pattern: str = ".*", skip: int = 0) -> Hold:
        """After `skip` matching requests, the next one waits at the server until the Hold is released."""
        hold = Hold(re.compile(path_pattern), skip)
        self._holds.append(hold)
        return hold

    def holding(self, path: str) -> Hold | None:
        """The Hold this request is to wait on, if any (each Hold catches one request)."""
        for index, hold in enumerate(self._holds):
            if hold.pattern.search(path):
                if hold.skip:
                    hold.skip -= 1
                    return None
                del self._holds[index]
                return hold
        return None

    def truncate_next(self, count: int, path_pattern: str = ".*") -> None:
        """The next `count` requests whose path matches get their real answer cut off halfway through the
        body (Content-Length promises all of it), then the connection closes: a network cut mid-body."""
        for _ in range(count):
            self._truncated.append(re.compile(path_pattern))

    def cuts_short(self, path: str) -> bool:
        """True (once) when this request's body is to be cut short."""
        for index, pattern in enumerate(self._truncated):
            if pattern.search(path):
                del self._truncated[index]
                return True
        return False

    def pick(self, path: str) -> Response | None:
        for index, (pattern, status, body, headers) in enumerate(self._queued):
            if pattern.search(path):
                del self._queued[index]
                if status == 429 and "Retry-After" not in headers:
                    headers = {**headers, "Retry-After": f"{self.retry_after_seconds:g}"}
                return Response.json(body if body is not None else {"error": f"injected {status}"}, status, headers)
        roll = self._random.random()
        if roll < self.rate_429:
            return Response.json({"error": "rate limited (injected)"}, 429,
                                 {"Retry-After": f"{self.retry_after_seconds:g}"})
        if roll < self.rate_429 + self.rate_5xx:
            return Response.json({"error": "server error (injected)"}, 503)
        return None


class WindowLimit:
    """A server-side limit: at most `limit` units in any sliding `window` seconds (None: count only)."""

    def __init__(self, limit: float | None, window: float):
        self.limit, self.window = limit, window
        self._log: deque[tuple[float, float]] = deque()
        self._lock = threading.Lock()
        self.refused = 0
        self.busiest = 0.0  # the most units ever admitted within one window

    def admit(self, units: float = 1.0) -> bool:
        """Counts the units, or refuses them (False) when they would go over the limit."""
        with self._lock:
            now = time.monotonic()
            while self._log and self._log[0][0] <= now - self.window:
                self._log.popleft()
            used = sum(u for _, u in self._log)
            if self.limit is not None and used + units > self.limit:
                self.refused += 1
                return False
            self._log.append((now, units))
            self.busiest = max(self.busiest, used + units)
            return True

    def remaining(self) -> float | None:
        """The units that would still be admitted now (None: no limit)."""
        with self._lock:
            now = time.monotonic()
            used = sum(u for t, u in self._log if t > now - self.window)
        return None if self.limit is None else max(0.0, self.limit - used)


class RequestLog:
    """Counts of requests by route and by one-second window, for tests and benchmarks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_route: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self._times: list[float] = []

    def record(self, route: str, status: int, arrived: float) -> None:
        """Counts a request at the time it arrived (what a server's rate limit counts)."""
        with self._lock:
            self.by_route[route] += 1
            self.statuses[status] += 1
            self._times.append(arrived)

    @property
    def total(self) -> int:
        return sum(self.by_route.values())

    def max_in_window(self, seconds: float) -> int:
        """The most requests seen in any sliding window of the given length."""
        with self._lock:
            times = sorted(self._times)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best

    def reset(self) -> None:
        with self._lock:
            self.by_route.clear()
            self.statuses.clear()
            self._times.clear()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1/localhost, valid for a day; returns (cert, key) paths."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox.localhost")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address(LOOPBACK))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "sandbox.crt", directory / "sandbox.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class SandboxServer:
    """A loopback server for one fake API. Use as a context manager, or start()/stop()."""

    def __init__(self, name: str, *, tls: bool = False, faults: Faults | None = None):
        self.name = name
        self.tls = tls
        self.faults = faults or Faults()
        self.requests = RequestLog()
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tempdir: tempfile.TemporaryDirectory | None = None
        self.cert_path: Path | None = None

    def route(self, method: str, pattern: str, name: str | None = None) -> Callable[[Handler], Handler]:
        """Decorator: handle `method` requests whose path fully matches `pattern` (named groups -> params)."""
        def register(handler: Handler) -> Handler:
            self._routes.append((method.upper(), re.compile(pattern), name or handler.__name__, handler))
            return handler
        return register

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.port}"

    def start(self) -> "SandboxServer":
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read counts instead
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                arrived = time.monotonic()
                response, route = server.dispatch(self.command, self.path, dict(self.headers.items()), body)
                server.requests.record(route, response.status, arrived)
                payload = response.encoded()
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if server.faults.cuts_short(urlsplit(self.path).path):
                    self.wfile.write(payload[:len(payload) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        httpd = ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        httpd.daemon_threads = True
        if self.tls:
            self._tempdir = tempfile.TemporaryDirectory(prefix=f"sandbox-{self.name}-")
            self.cert_path, key_path = self_signed_certificate(Path(self._tempdir.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert_path, key_path)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name=f"sandbox-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def dispatch(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[Response, str]:
        """The response to one request, and the name of the route that answered."""
        split = urlsplit(raw_path)
        if self.faults.latency_seconds:
            time.sleep(self.faults.latency_seconds)
        for route_method, pattern, name, handler in self._routes:
            match = pattern.fullmatch(split.path)
            if route_method != method or not match:
                continue
            hold = self.faults.holding(split.path)
            if hold is not None:
                hold.wait()
            injected = self.faults.pick(split.path)
            if injected is not None:
                return injected, name
            request = Request(method, split.path, parse_qs(split.query, keep_blank_values=True),
                              CaseInsensitiveDict(headers), body, match.groupdict())
            try:
                return handler(request), name
            except Exception as error:  # a fake's bug must show as a 500, not a hung client
                return Response.json({"error": f"sandbox {self.name}: {type(error).__name__}: {error}"}, 500), name
        return Response.json({"error": f"sandbox {self.name}: no route for {method} {split.path}"}, 404), "unmatched"


class RunningSandbox:
    """Base of each fake's context manager: `state` and `server` set by the subclass, started on enter."""

    state: Any
    server: SandboxServer

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url

    def client_environment(self) -> dict[str, str]:
        """The environment variables (settings and secrets) that point the pipeline at this sandbox."""
        raise NotImplementedError


def aimed_at(settings: Settings, sandbox: RunningSandbox) -> tuple[Settings, dict[str, str]]:
    """The one way to point the pipeline at a sandbox: the settings with the sandbox's applied (each variable of
    its client_environment that names a setting, read as the environment would be), and the rest, its secrets,
    as environment variables for the secret store."""
    names = {name.upper() for name in Settings.model_fields}
    environment = sandbox.client_environment()
    given = {key.lower(): value for key, value in environment.items() if key in names}
    parsed = Settings.model_validate(given)  # these values alone: neither .env nor the process environment
    aimed = settings.model_copy(update={name: getattr(parsed, name) for name in given})
    return aimed, {key: value for key, value in environment.items() if key not in names}


def serve_until_interrupted(sandbox: RunningSandbox, *lines: str) -> None:
    """Starts a fake, prints what a client needs to reach it, and serves until Ctrl-C."""
    with sandbox:
        for line in lines:
            print(line.format(url=sandbox.url, cert=sandbox.server.cert_path), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
