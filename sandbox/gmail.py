"""A loopback Gmail API that google-api-python-client and google-auth run against unmodified.

Serves the OAuth token endpoint for domain-wide-delegation JWTs (the signature is checked against the
fake service account's key, the subject becomes the mailbox of the access token), users.messages.list
(newest first, `q` with after:/before:/newer_than:), users.messages.get (raw, full, metadata, minimal),
users.history.list (with expiry: a start id older than the mailbox keeps answers 404), and the
multipart batch endpoint. Quota units are counted per mailbox per second (list 5, get 5, history 2);
with a limit set, calls past it answer 429 rateLimitExceeded. Mail is generated from the fake company,
with the ugly cases real mailboxes hold: unknown and missing charsets, encoded-word headers, no Date,
groups and undisclosed-recipients, quoted local parts, duplicate Message-IDs; optionally a 20 MB body.

    python -m sandbox.gmail --messages 2000 --latency 0.03
"""
from __future__ import annotations

import argparse
import base64
import json
import re
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import Message
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.company import CompanySize, FakeCompany
from sandbox.server import Faults, Request, Response, RunningSandbox, SandboxServer, WindowLimit, data_anchor, serve_until_interrupted

QUOTA_UNITS = {"list": 5, "get": 5, "history": 2, "profile": 1}
UGLY_KINDS = ("unknown_charset", "no_charset_8bit", "encoded_words", "no_date", "groups", "undisclosed",
              "quoted_local", "duplicate_message_id")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    internal_ms: int
    history_id: int
    labels: list[str]
    snippet: str


@dataclass
class Mailbox:
    address: str
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    history: list[tuple[int, str, str]] = field(default_factory=list)  # (history id, added|deleted, message id)
    oldest_history: int = 0
    quota: WindowLimit = field(default_factory=lambda: WindowLimit(None, 1.0))


class GmailState:
    """Mailboxes, their messages and history, the service account and quota counters."""

    def __init__(self, company: FakeCompany, mailboxes: list[str], messages_per_mailbox: int = 40, *,
                 ugly_every: int = 10, big_body: bool = False, quota_units_per_second: int | None = None):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.company = company
        self.ugly_every = ugly_every
        self.lock = threading.RLock()
        self.next_history = 1000
        self.next_id = 0x18c0000000000000
        self.tokens: dict[str, str] = {}
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        self.public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.mailboxes = {address: Mailbox(address, quota=WindowLimit(quota_units_per_second, 1.0))
                          for address in mailboxes}
        self.base = data_anchor() - timedelta(days=20)
        self.seq = 0
        self.message_ids: list[str] = []
        for address in mailboxes:
            for _ in range(messages_per_mailbox):
                self.add_message(address)
        if big_body:
            self.add_message(mailboxes[0], body="x" * (20 * 1024 * 1024))

    # -- mail
    def _rfc822(self, mailbox: str, n: int, kind: str | None, body: str | None) -> bytes:
        size = self.company.size
        person = self.company.contact(n % size.contacts)
        other = self.company.contact((n * 7 + 3) % size.contacts)
        incoming = n % 2 == 0
        them = f'"{person["FirstName"]} {person["LastName"]}" <{person["true_email"]}>'
        me = f"Sales <{mailbox}>"
        sender, recipients = (them, me) if incoming else (me, them)
        sent = self.base + timedelta(minutes=7 * self.seq)
        # crc32, not hash(): str hashes differ between processes, and the sandbox serves the same mail in each.
        message_id = f"<msg{self.seq}.{zlib.crc32(mailbox.encode()) % 10_000}@mail.example>"
        if kind == "duplicate_message_id" and self.message_ids:
            message_id = self.message_ids[0]
        self.message_ids.append(message_id)
        headers = [f"From: {sender}", f"To: {recipients}", f"Cc: {other['true_email']}",
                   f"Subject: Proposal {n} for {person['LastName']}", f"Message-ID: {message_id}"]
        if kind != "no_date":
            headers.append(f"Date: {format_datetime(sent)}")
        text = (body or f"Hello {person['FirstName']},\nhere is the proposal {n}.\n").encode("utf-8")
        content_type = 'text/plain; charset="utf-8"'
        if kind == "unknown_charset":
            content_type, text = 'text/plain; charset="x-no-such-charset"', "Grüße aus Köln\n".encode("latin-1")
        elif kind == "no_charset_8bit":
            content_type, text = "text/plain", "Déjà vu, café\n".encode("latin-1")
        elif kind == "encoded_words":
            headers[3] = "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_und_Angebot?="
            headers[0] = "From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <" + person["true_email"] + ">" if incoming else headers[0]
        elif kind == "groups":
            headers[2] = f"Cc: Project team: {other['true_email']}, {person['true_email']};"
        elif kind == "undisclosed":
            headers[1] = "To: undisclosed-recipients:;"
        elif kind == "quoted_local":
            headers[2] = 'Cc: "john doe"@quoted.example'
        headers += ["MIME-Version: 1.0", f"Content-Type: {content_type}", "Content-Transfer-Encoding: 8bit"]
        return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii", "replace") + text

    def add_message(self, address: str, body: str | None = None) -> StoredMessage:
        """A new message in a mailbox, recorded in its history."""
        with self.lock:
            mailbox = self.mailboxes[address]
            kind = UGLY_KINDS[(self.seq // self.ugly_every) % len(UGLY_KINDS)] \
                if self.ugly_every and self.seq % self.ugly_every == self.ugly_every - 1 else None
            raw = self._rfc822(address, self.seq, kind, body)
            self.next_id += 1
            self.next_history += 1
            internal = self.base + timedelta(minutes=7 * self.seq, seconds=5)
            message = StoredMessage(id=format(self.next_id, "x"), thread_id=format(self.next_id - self.seq % 3, "x"),
                                    raw=raw, internal_ms=int(internal.timestamp() * 1000), history_id=self.next_history,
                                    labels=["INBOX"] if self.seq % 2 == 0 else ["SENT"],
                                    snippet=raw.split(b"\r\n\r\n", 1)[1][:80].decode("utf-8", "replace"))
            mailbox.messages[message.id] = message
            mailbox.history.append((self.next_history, "added", message.id))
            self.seq += 1
            return message

    def replace_content(self, address: str, message_id: str, **fields: Any) -> StoredMessage:
        """Serves a stored message with other content (raw, snippet, labels, thread_id, internal_ms), as a broken
        sender or upstream would: a test's poison too. Its history entry stays."""
        with self.lock:
            mailbox = self.mailboxes[address]
            mailbox.messages[message_id] = replace(mailbox.messages[message_id], **fields)
            return mailbox.messages[message_id]

    def delete_message(self, address: str, message_id: str) -> None:
        with self.lock:
            mailbox = self.mailboxes[address]
            mailbox.messages.pop(message_id)
            self.next_history += 1
            mailbox.history.append((self.next_history, "deleted", message_id))

    def expire_history(self, address: str) -> None:
        """History before now is gone: an older startHistoryId answers 404."""
        with self.lock:
            self.mailboxes[address].oldest_history = self.next_history

    def current_history(self, address: str) -> int:
        mailbox = self.mailboxes[address]
        return mailbox.history[-1][0] if mailbox.history else self.next_history

    def mbox(self, address: str) -> bytes:
        """The mailbox as a Google Takeout mbox (with X-GM-MSGID / X-GM-THRID / X-Gmail-Labels)."""
        out = []
        for message in sorted(self.mailboxes[address].messages.values(), key=lambda m: m.internal_ms):
            stamp = datetime.fromtimestamp(message.internal_ms / 1000, tz=timezone.utc)
            extra = (f"X-GM-MSGID: {int(message.id, 16)}\r\nX-GM-THRID: {int(message.thread_id, 16)}\r\n"
                     f"X-Gmail-Labels: {','.join(message.labels)}\r\n").encode()
            body = re.sub(rb"(?m)^(>*From )", rb">\1", message.raw)
            out.append(f"From {message.id}@xxx {stamp:%a %b %d %H:%M:%S %z %Y}\r\n".encode() + extra + body + b"\r\n")
        return b"".join(out)

    # -- quota
    def spend(self, address: str, units: int) -> bool:
        """Counts units against the mailbox's per-second quota; False when over it."""
        return self.mailboxes[address].quota.admit(units)

    @property
    def rate_limited(self) -> int:
        return sum(m.quota.refused for m in self.mailboxes.values())

    @property
    def max_units_per_second(self) -> dict[str, float]:
        """The most quota units any one second saw, per mailbox."""
        return {address: m.quota.busiest for address, m in self.mailboxes.items()}

    def service_account_info(self, token_uri: str) -> dict[str, Any]:
        """A service-account key whose token_uri is this sandbox (what the gmail secret holds)."""
        return {"type": "service_account", "project_id": "sandbox-project", "private_key_id": "sandbox-key-1",
                "private_key": self.private_pem, "client_email": "gmail-sync@sandbox-project.iam.gserviceaccount.com",
                "client_id": "100000000000000000001", "token_uri": token_uri}


def _gmail_error(status: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}],
                              "status": reason}}


class GmailApi:
    """The API's behaviour, shared by direct requests and batch parts: (method, path, query, token) -> (status, body)."""

    def __init__(self, state: GmailState):
        self.state = state

    def handle(self, method: str, path: str, query: dict[str, list[str]], authorization: str) -> tuple[int, Any]:
        token = authorization.removeprefix("Bearer ").strip()
        subject = self.state.tokens.get(token)
        if subject is None:
            return _gmail_error(401, "authError", "Invalid Credentials")
        match = re.fullmatch(r"/gmail/v1/users/(?P<user>[^/]+)/(?P<rest>.+)", path)
        if not match:
            return _gmail_error(404, "notFound", f"no such method {path}")
        user = subject if match["user"] == "me" else match["user"].replace("%40", "@")
        if user != subject or user not in self.state.mailboxes:
            return _gmail_error(403, "forbidden", "Delegation denied for this mailbox")
        rest, arg = match["rest"], (lambda name, default=None: (query.get(name) or [default])[0])
        if rest == "messages" and method == "GET":
            return self._spent(user, "list") or self._list(user, arg)
        if rest.startswith("messages/") and method == "GET":
            return self._spent(user, "get") or self._get(user, rest.split("/", 1)[1], arg("format", "full"))
        if rest == "history" and method == "GET":
            return self._spent(user, "history") or self._history(user, arg, query.get("historyTypes") or [])
        if rest == "profile":
            return self._spent(user, "profile") or (200, {"emailAddress": user,
                                                          "historyId": str(self.state.current_history(user))})
        return _gmail_error(404, "notFound", f"no such method {method} {path}")

    def _spent(self, user: str, kind: str) -> tuple[int, Any] | None:
        if self.state.spend(user, QUOTA_UNITS[kind]):
            return None
        return _gmail_error(429, "rateLimitExceeded", "User-rate limit exceeded.")

    def _list(self, user: str, arg) -> tuple[int, Any]:
        mailbox = self.state.mailboxes[user]
        messages = sorted(mailbox.messages.values(), key=lambda m: m.internal_ms, reverse=True)
        q = arg("q") or ""
        after = re.search(r"after:(\d+)", q)
        newer = re.search(r"newer_than:(\d+)d", q)
        if newer:
            cutoff = (datetime.now(timezone.utc) - timedelta(days=int(newer.group(1)))).timestamp() * 1000
            messages = [m for m in messages if m.internal_ms >= cutoff]
        if after:
            messages = [m for m in messages if m.internal_ms >= int(after.group(1)) * 1000]
        size = min(int(arg("maxResults", 100)), 500)
        start = int(arg("pageToken") or 0)
        body: dict[str, Any] = {"messages": [{"id": m.id, "threadId": m.thread_id} for m in messages[start:start + size]],
                                "resultSizeEstimate": len(messages)}
        if start + size < len(messages):
            body["nextPageToken"] = str(start + size)
        return 200, body

    def _get(self, user: str, message_id: str, form: str) -> tuple[int, Any]:
        message = self.state.mailboxes[user].messages.get(message_id)
        if message is None:
            return _gmail_error(404, "notFound", "Requested entity was not found.")
        body: dict[str, Any] = {"id": message.id, "threadId": message.thread_id, "labelIds": message.labels,
                                "snippet": message.snippet, "historyId": str(message.history_id),
                                "internalDate": str(message.internal_ms), "sizeEstimate": len(message.raw)}
        if form == "raw":
            body["raw"] = b64url(message.raw)
        elif form in ("full", "metadata"):
            parsed = message_from_bytes(message.raw, policy=policy.compat32)
            content = _body_bytes(parsed)
            body["payload"] = {"partId": "", "mimeType": parsed.get_content_type(), "filename": "",
                               "headers": [{"name": k, "value": str(v)} for k, v in parsed.items()],
                               "body": {"size": len(content)}}
            if form == "full":
                body["payload"]["body"]["data"] = b64url(content)
        return 200, body

    def _history(self, user: str, arg, types: list[str]) -> tuple[int, Any]:
        mailbox = self.state.mailboxes[user]
        start = int(arg("startHistoryId") or 0)
        if start < mailbox.oldest_history:
            return _gmail_error(404, "notFound", "Requested entity was not found.")
        entries = [h for h in mailbox.history if h[0] > start]
        size = min(int(arg("maxResults", 100)), 500)
        offset = int(arg("pageToken") or 0)
        history = []
        for history_id, kind, message_id in entries[offset:offset + size]:
            ref = {"id": message_id, "threadId": message_id}
            if kind == "added" and (not types or "messageAdded" in types):
                history.append({"id": str(history_id), "messages": [ref], "messagesAdded": [{"message": ref}]})
            elif kind == "deleted" and (not types or "messageDeleted" in types):
                history.append({"id": str(history_id), "messages": [ref], "messagesDeleted": [{"message": ref}]})
        body: dict[str, Any] = {"history": history, "historyId": str(self.state.current_history(user))}
        if offset + size < len(entries):
            body["nextPageToken"] = str(offset + size)
        return 200, body


def _batch_response(parts: list[tuple[str, int, Any]]) -> Response:
    boundary = "batch_sandbox_boundary"
    chunks = []
    for content_id, status, body in parts:
        payload = json.dumps(body)
        chunks.append(f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <response-{content_id}>\r\n\r\n"
                      f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: application/json; "
                      f"charset=UTF-8\r\nContent-Length: {len(payload)}\r\n\r\n{payload}\r\n")
    return Response(200, "".join(chunks) + f"--{boundary}--\r\n",
                    {"Content-Type": f"multipart/mixed; boundary={boundary}"})


def _body_bytes(message: Message) -> bytes:
    """A single-part message's body, transfer-decoded (empty for a multipart one)."""
    payload = message.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _batch_parts(envelope: Message) -> list[Message]:
    """The parts of a batch request, each carrying one HTTP request."""
    parts = envelope.get_payload()
    if not isinstance(parts, list):
        raise ValueError("a batch request is multipart/mixed")
    return [part for part in parts if isinstance(part, Message)]  # a multipart's parts are all messages


def _part_http(part: Message) -> str:
    """The HTTP request a batch part carries (application/http text, or message/http parsed as a message)."""
    inner = part.get_payload(decode=False)
    return str(inner[0]) if isinstance(inner, list) else str(inner)


def build_server(state: GmailState, faults: Faults | None = None) -> SandboxServer:
    server = SandboxServer("gmail", faults=faults)
    api = GmailApi(state)

    @server.route("POST", r"/token", "token")
    def token(request: Request) -> Response:
        import google.auth.jwt

        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        try:
            claims = google.auth.jwt.decode(form.get("assertion", ""), certs={"sandbox-key-1": state.public_pem})
        except Exception as error:  # a bad signature or shape is an OAuth error, as Google answers
            return Response.json({"error": "invalid_grant", "error_description": f"bad assertion: {error}"}, 400)
        subject = claims.get("sub")
        if "gmail.readonly" not in claims.get("scope", "") or subject not in state.mailboxes:
            return Response.json({"error": "unauthorized_client",
                                  "error_description": "Client is unauthorized for this scope or subject"}, 401)
        access = f"ya29.sandbox.{b64url(subject.encode())}.{int(time.time() * 1000)}"
        state.tokens[access] = subject
        return Response.json({"access_token": access, "expires_in": 3600, "token_type": "Bearer"})

    @server.route("GET", r"/gmail/v1/.+", "api")
    def direct(request: Request) -> Response:
        status, body = api.handle("GET", request.path, request.query, request.headers.get("Authorization", ""))
        return Response.json(body, status)

    @server.route("POST", r"/batch(/gmail/v1)?", "batch")
    def batch(request: Request) -> Response:
        content_type = request.headers.get("Content-Type") or request.headers.get("content-type", "")
        envelope = message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + request.body,
                                      policy=policy.compat32)
        parts = []
        for part in _batch_parts(envelope):
            content_id = (part.get("Content-ID") or "").strip("<>")
            head, _, _ = _part_http(part).replace("\r\n", "\n").partition("\n\n")
            request_line, *header_lines = head.split("\n")
            method, target, _ = request_line.split(" ", 2)
            headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
            split = urlsplit(target)
            authorization = headers.get("authorization") or headers.get("Authorization") or \
                request.headers.get("Authorization", "")
            parts.append((content_id, *api.handle(method, split.path, parse_qs(split.query), authorization)))
        if len(parts) > 100:
            return Response.json({"error": {"code": 400, "message": "Too many requests in batch"}}, 400)
        return _batch_response(parts)

    return server


class GmailSandbox(RunningSandbox):
    """A started Gmail fake: state + server."""

    def __init__(self, mailboxes: list[str] | None = None, messages_per_mailbox: int = 40, *,
                 faults: Faults | None = None, **state_options: Any):
        company = FakeCompany(42, CompanySize(accounts=50, contacts=2000, leads=500))
        self.state = GmailState(company, mailboxes or company.employees(2), messages_per_mailbox, **state_options)
        self.server = build_server(self.state, faults)

    def client_environment(self) -> dict[str, str]:
        return {"GMAIL_API_ENDPOINT": f"{self.url}/", "MAILBOXES": ",".join(self.state.mailboxes),
                "GMAIL_SERVICE_ACCOUNT_KEY": self.service_account_key()}

    def service_account_key(self) -> str:
        """The JSON of the gmail-service-account-key secret for this sandbox."""
        return json.dumps(self.state.service_account_info(f"{self.url}/token"))


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a loopback Gmail until interrupted.")
    parser.add_argument("--messages", type=int, default=1000, help="messages per mailbox")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    serve_until_interrupted(GmailSandbox(messages_per_mailbox=args.messages, faults=Faults(latency_seconds=args.latency)),
                            "Gmail sandbox at {url}", "export GMAIL_API_ENDPOINT={url}/",
                            "(service-account key: GmailSandbox.service_account_key())")


if __name__ == "__main__":
    main()
