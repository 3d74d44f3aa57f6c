"""A loopback Gmail API that google-api-python-client and google-auth run against unmodified.

Serves the OAuth token endpoint for domain-wide-delegation JWTs (the signature is checked against the
fake service account's key, the subject becomes the mailbox of the access token), users.messages.list
(newest first, `q` with after:/before:/newer_than:, SPAM and TRASH left out unless includeSpamTrash),
users.messages.get (raw, full with the MIME tree, metadata, minimal), users.history.list (messages added
and deleted, labels added and removed; with expiry: a start id older than the mailbox keeps answers 404),
the multipart batch endpoint, and users.watch / users.stop: a watched mailbox's every change (a message added or
deleted, labels changed) is published as Gmail publishes it, `{"emailAddress", "historyId"}`, to the watch's
Pub/Sub topic through `notifier` (the Pub/Sub emulator's publisher, GmailSandbox.publish_to_emulator), until the
watch expires (7 days, or `lapse_watch`) or is stopped; `drop_notifications` drops them as Gmail may. As Gmail does, a field with no value is left out, never sent as `[]`.
Quota units are counted per mailbox (list 5, get 5, history 2) per minute (6,000 by default, Gmail's
per-user figure for projects created since 2026-05-01) and, optionally, per second; calls past a limit
answer, chosen from the seed, 429 rateLimitExceeded or 403 userRateLimitExceeded / rateLimitExceeded,
as Gmail does. Mail is generated from the fake company and a seed, with what real mailboxes hold besides
INBOX and SENT: drafts (a new message id at every save), spam, trash, chat, multipart/alternative
bodies; and the ugly cases: unknown and missing charsets, encoded-word headers, no Date, groups and
undisclosed-recipients, quoted local parts, duplicate Message-IDs, a domain ending with a dot;
optionally a 20 MB body.

    python -m sandbox.gmail --messages 2000 --latency 0.03
"""
from __future__ import annotations

import argparse
import base64
import json
import random
import re
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import Message
from email.utils import format_datetime
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from config.settings import Settings
from sandbox.company import CompanySize, FakeCompany
from sandbox.server import Faults, Request, Response, RunningSandbox, SandboxServer, WindowLimit, data_anchor, serve_until_interrupted

QUOTA_UNITS = {"list": 5, "get": 5, "history": 2, "profile": 1, "watch": 100, "stop": 50}
WATCH_DAYS = 7  # a watch lapses after 7 days unless renewed
UGLY_KINDS = ("unknown_charset", "no_charset_8bit", "encoded_words", "no_date", "groups", "undisclosed",
              "quoted_local", "duplicate_message_id", "trailing_dot_domain")
# Mail a real mailbox holds beside INBOX and SENT that no mail table should: each is added, with this
# probability from the seed, after a message of the mailbox (so the mail that is kept stays as it was).
NOT_MAIL = {"DRAFT": 0.06, "SPAM": 0.04, "TRASH": 0.04}
CHAT_SHARE = 0.05  # messages labelled CHAT (chats kept in Gmail) in place of INBOX/SENT
MULTIPART_SHARE = 0.25  # messages sent as multipart/alternative (text and HTML)
QUOTA_UNITS_PER_MINUTE = 6000
# A history record's field for each kind, and the historyTypes value that asks for it.
HISTORY_TYPES = {"messagesAdded": "messageAdded", "messagesDeleted": "messageDeleted", "labelsAdded": "labelAdded",
                 "labelsRemoved": "labelRemoved"}
# A per-minute quota refusal in the Cloud quota system's words, with no errors[] at all (as users of the API have
# reported it: GAM-team/got-your-back#309); its "reason" here only names the form.
QUOTA_METRIC = "quotaMetric"
RATE_LIMIT_ANSWERS = ((429, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (403, "rateLimitExceeded"),
                      (403, QUOTA_METRIC))


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
    # (history id, messagesAdded|messagesDeleted|labelsAdded|labelsRemoved, message id, labels of the entry)
    history: list[tuple[int, str, str, tuple[str, ...]]] = field(default_factory=list)
    oldest_history: int = 0
    quota: WindowLimit = field(default_factory=lambda: WindowLimit(None, 1.0))
    minute_quota: WindowLimit = field(default_factory=lambda: WindowLimit(None, 60.0))
    watch: tuple[str, int] | None = None  # (topic, expiration epoch ms) of users.watch


class GmailState:
    """Mailboxes, their messages and history, the service account and quota counters."""

    def __init__(self, company: FakeCompany, mailboxes: list[str], messages_per_mailbox: int = 40, *,
                 ugly_every: int = 10, big_body: bool = False, quota_units_per_second: int | None = None,
                 quota_units_per_minute: int | None = QUOTA_UNITS_PER_MINUTE, seed: int = 22, variety: bool = True):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.company = company
        self.ugly_every = ugly_every
        self.quota_units_per_minute = quota_units_per_minute  # per mailbox; None: no limit
        self.lock = threading.RLock()
        self.next_history = 1000
        self.next_id = 0x18c0000000000000
        self.tokens: dict[str, str] = {}
        self.variety = variety
        self.rng = random.Random(seed)  # which messages are drafts, spam, chat, multipart
        self.error_rng = random.Random(seed + 1)  # which rate-limit answer a refusal gets
        self.throttled: list[tuple[int, str, str | None]] = []  # injected refusals: (status, reason, call kind)
        self.notifier: Callable[[str, bytes], None] | None = None  # publishes (topic, data): a watch's notifications
        self.drop_notifications = False  # Gmail may drop notifications: nothing published while set
        self.notifications_sent = 0
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        self.public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.mailboxes = {address: Mailbox(address, quota=WindowLimit(quota_units_per_second, 1.0),
                                           minute_quota=WindowLimit(quota_units_per_minute, 60.0))
                          for address in mailboxes}
        self.base = data_anchor() - timedelta(days=20)
        self.seq = 0
        self.message_ids: list[str] = []
        for address in mailboxes:
            for _ in range(messages_per_mailbox):
                self.add_message(address)
                for label, share in NOT_MAIL.items() if variety else ():
                    if self.rng.random() < share:
                        self.add_message(address, labels=[label])
        if big_body:
            self.add_message(mailboxes[0], body="x" * (20 * 1024 * 1024))

    # -- mail
    def _rfc822(self, mailbox: str, n: int, kind: str | None, body: str | None, multipart: bool = False) -> bytes:
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
        elif kind == "trailing_dot_domain":
            headers[2] = f"Cc: <{other['true_email']}.>"
        if multipart and kind is None:
            return self._alternative(headers, text)
        headers += ["MIME-Version: 1.0", f"Content-Type: {content_type}", "Content-Transfer-Encoding: 8bit"]
        return ("\r\n".join(headers) + "\r\n\r\n").encode("ascii", "replace") + text

    @staticmethod
    def _alternative(headers: list[str], text: bytes) -> bytes:
        """The message as multipart/alternative: the text part, then the same text as HTML."""
        boundary = f"alt_{zlib.crc32(text):08x}"
        html = b"<html><body><p>" + text.replace(b"\n", b"<br>") + b"</p></body></html>"
        parts = b"".join(f"--{boundary}\r\nContent-Type: {kind}; charset=\"utf-8\"\r\n"
                         f"Content-Transfer-Encoding: 8bit\r\n\r\n".encode() + body + b"\r\n"
                         for kind, body in (("text/plain", text), ("text/html", html)))
        head = headers + ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"']
        return ("\r\n".join(head) + "\r\n\r\n").encode("ascii", "replace") + parts + f"--{boundary}--\r\n".encode()

    def add_message(self, address: str, body: str | None = None, labels: list[str] | None = None) -> StoredMessage:
        """A new message in a mailbox (INBOX or SENT, else CHAT from the seed, unless labels are given), recorded
        in its history."""
        with self.lock:
            mailbox = self.mailboxes[address]
            kind = UGLY_KINDS[(self.seq // self.ugly_every) % len(UGLY_KINDS)] \
                if self.ugly_every and self.seq % self.ugly_every == self.ugly_every - 1 else None
            multipart = self.variety and body is None and self.rng.random() < MULTIPART_SHARE
            if labels is None:
                chat = self.variety and self.rng.random() < CHAT_SHARE
                labels = ["CHAT"] if chat else ["INBOX"] if self.seq % 2 == 0 else ["SENT"]
            raw = self._rfc822(address, self.seq, kind, body, multipart)
            self.next_id += 1
            self.next_history += 1
            internal = self.base + timedelta(minutes=7 * self.seq, seconds=5)
            message = StoredMessage(id=format(self.next_id, "x"), thread_id=format(self.next_id - self.seq % 3, "x"),
                                    raw=raw, internal_ms=int(internal.timestamp() * 1000), history_id=self.next_history,
                                    labels=list(labels), snippet=_snippet(raw))
            mailbox.messages[message.id] = message
            mailbox.history.append((self.next_history, "messagesAdded", message.id, tuple(labels)))
            self.seq += 1
            self._notify(mailbox)
            return message

    def save_draft(self, address: str, replacing: str | None = None) -> StoredMessage:
        """A draft saved: as in Gmail, every save is a new message (DRAFT) and the previous one is deleted."""
        with self.lock:
            if replacing is not None:
                self.delete_message(address, replacing)
            return self.add_message(address, labels=["DRAFT"])

    def send_draft(self, address: str, draft_id: str) -> StoredMessage:
        """A draft sent: the draft message is deleted and the mail is a new message labelled SENT."""
        with self.lock:
            self.delete_message(address, draft_id)
            return self.add_message(address, labels=["SENT"])

    def relabel(self, address: str, message_id: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
        """Labels added to and removed from a message (moved to spam or trash, or back), in its history."""
        with self.lock:
            mailbox = self.mailboxes[address]
            message = mailbox.messages[message_id]
            message.labels = [label for label in message.labels if label not in remove] + \
                [label for label in add if label not in message.labels]
            for kind, labels in (("labelsRemoved", remove), ("labelsAdded", add)):
                if labels:
                    self.next_history += 1
                    message.history_id = self.next_history
                    mailbox.history.append((self.next_history, kind, message_id, tuple(labels)))
            self._notify(mailbox)

    def rate_limit_next(self, count: int, status: int = 403, reason: str = "userRateLimitExceeded",
                        kind: str | None = None) -> None:
        """The next `count` API calls (of a kind: list, get, history, profile; any when None), batch parts included,
        are refused with this status and reason."""
        with self.lock:
            self.throttled += [(status, reason, kind)] * count

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
            message = mailbox.messages.pop(message_id)
            self.next_history += 1
            mailbox.history.append((self.next_history, "messagesDeleted", message_id, tuple(message.labels)))
            self._notify(mailbox)

    def start_watch(self, address: str, topic: str) -> dict[str, str]:
        """users.watch: notifications of the mailbox's changes to topic for 7 days (a new call renews)."""
        with self.lock:
            expiration = int((time.time() + WATCH_DAYS * 86400) * 1000)
            self.mailboxes[address].watch = (topic, expiration)
            return {"historyId": str(self.current_history(address)), "expiration": str(expiration)}

    def stop_watch(self, address: str) -> None:
        with self.lock:
            self.mailboxes[address].watch = None

    def lapse_watch(self, address: str) -> None:
        """The watch expired (not renewed for 7 days): the mailbox's changes are no longer published."""
        with self.lock:
            watch = self.mailboxes[address].watch
            if watch is not None:
                self.mailboxes[address].watch = (watch[0], int(time.time() * 1000) - 1)

    def _notify(self, mailbox: Mailbox) -> None:
        """Publishes the change as Gmail does, when the mailbox is watched and the watch has not expired."""
        if mailbox.watch is None or self.notifier is None or self.drop_notifications:
            return
        topic, expiration = mailbox.watch
        if expiration <= time.time() * 1000:
            return
        data = json.dumps({"emailAddress": mailbox.address, "historyId": self.current_history(mailbox.address)})
        self.notifier(topic, data.encode())
        self.notifications_sent += 1

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
        """Counts units against the mailbox's per-second and per-minute quotas; False when over either."""
        mailbox = self.mailboxes[address]
        return mailbox.quota.admit(units) and mailbox.minute_quota.admit(units)

    def refusal(self, kind: str) -> tuple[int, str] | None:
        """The rate-limit answer injected for the next call of this kind, if one is queued."""
        with self.lock:
            for index, (status, reason, only) in enumerate(self.throttled):
                if only in (None, kind):
                    del self.throttled[index]
                    return status, reason
        return None

    def rate_limit_answer(self) -> tuple[int, str]:
        """Which of Gmail's rate-limit answers a refused call gets (from the seed)."""
        with self.lock:
            return self.error_rng.choice(RATE_LIMIT_ANSWERS)

    @property
    def rate_limited(self) -> int:
        return sum(m.quota.refused + m.minute_quota.refused for m in self.mailboxes.values())

    @property
    def max_units_per_second(self) -> dict[str, float]:
        """The most quota units any one second saw, per mailbox."""
        return {address: m.quota.busiest for address, m in self.mailboxes.items()}

    def service_account_info(self, token_uri: str) -> dict[str, Any]:
        """A service-account key whose token_uri is this sandbox (what the gmail secret holds)."""
        return {"type": "service_account", "project_id": "sandbox-project", "private_key_id": "sandbox-key-1",
                "private_key": self.private_pem, "client_email": "gmail-sync@sandbox-project.iam.gserviceaccount.com",
                "client_id": "100000000000000000001", "token_uri": token_uri}


def _snippet(raw: bytes) -> str:
    """The first characters of the first text of a message, as Gmail's snippet."""
    body = raw.split(b"\r\n\r\n", 1)[1]
    if body.startswith(b"--"):
        body = body.split(b"\r\n\r\n", 1)[-1]
    return body[:80].decode("utf-8", "replace").strip()


# google.rpc status names of the HTTP codes the fake answers (Google's JSON error body carries both).
_RPC_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               429: "RESOURCE_EXHAUSTED"}


def google_error(status: int, reason: str, message: str) -> dict[str, Any]:
    """Google's JSON error body: code, message, errors[] with domain and reason, the google.rpc status."""
    domain = "usageLimits" if reason in ("rateLimitExceeded", "userRateLimitExceeded") else "global"
    return {"error": {"code": status, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason}],
                      "status": _RPC_STATUS.get(status, "UNKNOWN")}}


def _gmail_error(status: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, google_error(status, reason, message)


def _rate_limit_error(status: int, reason: str) -> tuple[int, dict[str, Any]]:
    """Gmail's answer to a call past a quota, in the form the reason names."""
    if reason == QUOTA_METRIC:
        return status, {"error": {"code": status, "status": "PERMISSION_DENIED", "message": (
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service "
            "'gmail.googleapis.com' for consumer 'project_number:100000000001'.")}}
    return _gmail_error(status, reason, "User-rate limit exceeded." if reason.startswith("user")
                        else "Rate Limit Exceeded")


class GmailApi:
    """The API's behaviour, shared by direct requests and batch parts: (method, path, query, token) -> (status, body)."""

    def __init__(self, state: GmailState):
        self.state = state

    def handle(self, method: str, path: str, query: dict[str, list[str]], authorization: str,
               body: Any = None) -> tuple[int, Any]:
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
            return self._spent(user, "profile") or (200, self._profile(user))
        if rest == "watch" and method == "POST":
            return self._spent(user, "watch") or self._watch(user, body)
        if rest == "stop" and method == "POST":
            self.state.stop_watch(user)
            return self._spent(user, "stop") or (204, None)
        return _gmail_error(404, "notFound", f"no such method {method} {path}")

    def _watch(self, user: str, body: Any) -> tuple[int, Any]:
        topic = body.get("topicName") if isinstance(body, dict) else None
        if not isinstance(topic, str) or not re.fullmatch(r"projects/[^/]+/topics/[^/]+", topic):
            return _gmail_error(400, "invalidArgument", "Invalid topicName: a fully qualified Pub/Sub topic name")
        return 200, self.state.start_watch(user, topic)

    def _profile(self, user: str) -> dict[str, Any]:
        messages = self.state.mailboxes[user].messages.values()
        return {"emailAddress": user, "messagesTotal": len(messages),
                "threadsTotal": len({m.thread_id for m in messages}), "historyId": str(self.state.current_history(user))}

    def _spent(self, user: str, kind: str) -> tuple[int, Any] | None:
        refused = self.state.refusal(kind)
        if refused is None and self.state.spend(user, QUOTA_UNITS[kind]):
            return None
        return _rate_limit_error(*(refused or self.state.rate_limit_answer()))

    def _list(self, user: str, arg) -> tuple[int, Any]:
        mailbox = self.state.mailboxes[user]
        messages = sorted(mailbox.messages.values(), key=lambda m: m.internal_ms, reverse=True)
        if (arg("includeSpamTrash") or "false").lower() != "true":
            messages = [m for m in messages if not {"SPAM", "TRASH"} & set(m.labels)]
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
        body: dict[str, Any] = {"resultSizeEstimate": len(messages)}
        if messages[start:start + size]:
            body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in messages[start:start + size]]
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
        if not message.labels:
            del body["labelIds"]  # Gmail leaves an empty list out
        if form == "raw":
            body["raw"] = b64url(message.raw)
        elif form in ("full", "metadata"):
            parsed = message_from_bytes(message.raw, policy=policy.compat32)
            body["payload"] = _message_part(parsed, "", with_data=form == "full")
            if form == "metadata":
                body["payload"] = {k: v for k, v in body["payload"].items() if k in ("partId", "mimeType", "filename",
                                                                                     "headers", "body")}
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
        for history_id, kind, message_id, labels in entries[offset:offset + size]:
            if types and HISTORY_TYPES[kind] not in types:
                continue
            ref: dict[str, Any] = {"id": message_id, "threadId": message_id}
            if kind != "messagesDeleted" and labels:
                ref["labelIds"] = list(labels)
            item: dict[str, Any] = {"message": ref}
            if kind.startswith("labels"):
                item["labelIds"] = list(labels)
            history.append({"id": str(history_id), "messages": [{"id": message_id, "threadId": message_id}],
                            kind: [item]})
        body: dict[str, Any] = {"historyId": str(self.state.current_history(user))}
        if history:
            body["history"] = history  # Gmail leaves an empty list out
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


def _message_part(part: Message, part_id: str, with_data: bool) -> dict[str, Any]:
    """A MessagePart as Gmail gives it: headers, body {size, data}, and the child parts of a multipart."""
    content = _body_bytes(part)
    out: dict[str, Any] = {"partId": part_id, "mimeType": part.get_content_type(), "filename": part.get_filename() or "",
                           "headers": [{"name": k, "value": str(v)} for k, v in part.items()],
                           "body": {"size": len(content)}}
    if with_data and content:
        out["body"]["data"] = b64url(content)
    if part.is_multipart():
        children = [p for p in part.get_payload() if isinstance(p, Message)]
        prefix = f"{part_id}." if part_id else ""
        out["parts"] = [_message_part(child, f"{prefix}{n}", with_data) for n, child in enumerate(children)]
    return out


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

    @server.route("POST", r"/gmail/v1/users/[^/]+/(watch|stop)", "watch")
    def watch(request: Request) -> Response:
        body = json.loads(request.body or b"{}")
        status, answer = api.handle("POST", request.path, request.query, request.headers.get("Authorization", ""),
                                    body)
        return Response(status, b"", {}) if status == 204 else Response.json(answer, status)

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
        # The pipeline paces itself to this sandbox's own per-mailbox quota (0: none), as it would to Gmail's.
        return {"GMAIL_API_ENDPOINT": f"{self.url}/", "MAILBOXES": ",".join(self.state.mailboxes),
                "GMAIL_QUOTA_UNITS_PER_MINUTE": str(self.state.quota_units_per_minute or 0),
                "GMAIL_SERVICE_ACCOUNT_KEY": self.service_account_key()}

    def publish_to_emulator(self) -> Any:
        """Watched mailboxes' notifications are published to the Pub/Sub emulator of PUBSUB_EMULATOR_HOST, as Gmail
        publishes to the watch's topic; returns the publisher (its futures are not awaited: Gmail does not wait)."""
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        publisher = pubsub_v1.PublisherClient()
        self.state.notifier = lambda topic, data: publisher.publish(topic, data)
        return publisher

    def service_account_key(self) -> str:
        """The JSON of the gmail-service-account-key secret for this sandbox."""
        return json.dumps(self.state.service_account_info(f"{self.url}/token"))


LOCAL_RUN_MESSAGES = 150
# The local runner's Gmail sandbox allows ten times Gmail's 6,000 units a minute per mailbox, so a laptop's run is
# not paced to a real project's quota; the pipeline paces itself to it all the same (the sandbox tells it), and
# the tests enforce Gmail's own figure.
LOCAL_RUN_QUOTA_UNITS_PER_MINUTE = 60_000


def for_local_run(settings: Settings) -> GmailSandbox:
    """The sandbox `make run` starts (the registry's `sandbox`), not yet started: the configured mailboxes, else
    two of the company's."""
    return GmailSandbox(settings.mailboxes or None, LOCAL_RUN_MESSAGES,
                        quota_units_per_minute=LOCAL_RUN_QUOTA_UNITS_PER_MINUTE)


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
