"""Gmail sync end to end: functions-framework -> google-api-python-client + google-auth DWD -> loopback Gmail."""
from __future__ import annotations

import random
import re

import pytest
from googleapiclient.errors import HttpError

from cloud_functions.gmail_sync.records import message_rows
from pipeline.runner import RejectedRecord
from sandbox.gmail import NOT_MAIL, QUOTA_METRIC, UGLY_KINDS, GmailSandbox, StoredMessage, google_error
from sandbox.server import WindowLimit
from scripts.mbox_import import import_mbox
from tests.helpers import SMALL_ROW_BYTES, TEXT_POISONS, matches, poison_reason_pattern, poisoned_text
from tests.helpers import point_at as aim

DS = "sales_intelligence"
NOT_MAIL_LABELS = set(NOT_MAIL)
MESSAGE_COLUMNS = ("message_id, thread_id, rfc822_message_id, subject, from_email, sent_at, internal_date, label_ids, "
                   "body_text, body_html, body_truncated, attachments, size_bytes, is_deleted")


def point_at(runtime, sandbox, monkeypatch, **overrides):
    return aim(runtime, sandbox, monkeypatch, **{"gmail_list_page_size": 20, **overrides})


def stored_ids(warehouse, mailbox=None):
    rows = warehouse.query(f"SELECT mailbox, message_id FROM {DS}.gmail_messages")
    ids = [(r["mailbox"], r["message_id"]) for r in rows if mailbox in (None, r["mailbox"])]
    assert len(ids) == len(set(ids)), "a message stored twice"
    return set(ids)


def sandbox_ids(sandbox):
    """The sandbox's mail: every message but drafts, spam and trash."""
    return {(address, m.id) for address, box in sandbox.state.mailboxes.items() for m in box.messages.values()
            if not set(m.labels) & NOT_MAIL_LABELS}


def stored_state(warehouse, message_id):
    (row,) = warehouse.query(f"SELECT label_ids, is_deleted FROM {DS}.gmail_messages WHERE message_id = @id",
                             {"id": message_id})
    return row


class TestSync:
    def test_full_incremental_and_expired_history_over_http(self, runtime, monkeypatch, function_server):
        """Two mailboxes: every message once with its participants; incremental reads only new mail; an
        expired history id falls back to a full sync and still ends with every message once."""
        with GmailSandbox(messages_per_mailbox=45) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            server = function_server("gmail_sync")
            response = server.post({"sync_type": "full"})
            assert response.status_code == 200, response.text
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)
            first = next(iter(sandbox.state.mailboxes))
            some = next(iter(sandbox.state.mailboxes[first].messages.values()))
            participants = runtime.warehouse.query(
                f"SELECT role, email FROM {DS}.gmail_participants WHERE message_id = @id ORDER BY role, email",
                {"id": some.id})
            assert {(p["role"], p["email"]) for p in participants} >= {("from", p["email"]) for p in participants
                                                                      if p["role"] == "from"}
            assert {p["role"] for p in participants} == {"from", "to", "cc"}

            new = [sandbox.state.add_message(first) for _ in range(3)]
            gone = some.id
            sandbox.state.delete_message(first, gone)
            sandbox.server.requests.reset()
            response = server.post({"mailbox_email": first.upper()})
            assert response.status_code == 200, response.text
            (run,) = response.json()["runs"]
            # three new messages, and the deletion of a stored one (merged into its own row)
            assert run["rows_fetched"] == 4 and run["details"]["mode"] == "incremental"
            assert run["details"]["deleted"] == 1
            assert sandbox.server.requests.by_route["batch"] == 1  # the three new messages, in one batch
            assert {m.id for m in new} <= {i for _, i in stored_ids(runtime.warehouse, first)}
            assert runtime.warehouse.query(f"SELECT is_deleted FROM {DS}.gmail_messages WHERE message_id = @id",
                                           {"id": gone}) == [{"is_deleted": True}]

            sandbox.state.add_message(first)
            sandbox.state.expire_history(first)
            response = server.post({"mailbox_email": first})
            (run,) = response.json()["runs"]
            assert "history_expired" in run["details"] and run["details"]["mode"] == "full"
            assert stored_ids(runtime.warehouse, first) >= {(a, m) for a, m in sandbox_ids(sandbox) if a == first}

    def test_daily_full_sync_rewrites_no_history(self, runtime, monkeypatch):
        """A full sync of a synced mailbox fetches only new mail whole and writes only what changed: a label
        change (labels only, the body kept) and a message gone since (flagged deleted)."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox(["alex@ourcompany.example"], messages_per_mailbox=30) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            mailbox = sandbox.state.mailboxes["alex@ourcompany.example"]
            run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)
            (unchanged,) = run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["runs"]
            assert unchanged["rows_loaded"] == 0 and unchanged["details"]["new"] == 0

            relabelled, gone = [m for m in mailbox.messages.values() if not set(m.labels) & NOT_MAIL_LABELS][:2]
            relabelled.labels = ["INBOX", "STARRED"]
            sandbox.state.delete_message("alex@ourcompany.example", gone.id)
            added = sandbox.state.add_message("alex@ourcompany.example")
            (run,) = run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["runs"]
            details = run["details"]
            assert (details["new"], details["label_changes"], run["rows_by_table"]["gmail_messages"]) == (1, 1, 3)
            rows = {r["message_id"]: r for r in runtime.warehouse.query(
                f"SELECT message_id, label_ids, is_deleted, body_text FROM {DS}.gmail_messages")}
            assert rows[relabelled.id]["label_ids"] == ["INBOX", "STARRED"] and rows[relabelled.id]["body_text"]
            assert rows[gone.id]["is_deleted"] is True and rows[gone.id]["body_text"]
            assert rows[added.id]["is_deleted"] is False and len(rows) == 31

    def test_run_cut_at_its_time_budget_resumes_with_every_message_once(self, runtime, monkeypatch):
        """A tiny time budget stops each run after one page (partial); runs repeat until success; all once."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox(["alex@ourcompany.example"], messages_per_mailbox=70) as sandbox:
            point_at(runtime, sandbox, monkeypatch, run_time_budget_seconds=0.0001)
            statuses = []
            for _ in range(10):
                result = run_gmail_sync(GmailSyncRequest(sync_type="full" if not statuses else "incremental"), runtime)
                statuses.append(result["runs"][0]["status"])
                if statuses[-1] == "success":
                    break
            assert statuses[:3] == ["partial"] * 3 and statuses[-1] == "success"
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)
            fetched = runtime.warehouse.query(f"SELECT SUM(rows_fetched) AS n FROM {DS}.etl_runs")[0]["n"]
            assert fetched == 70  # nothing read twice

    def test_quota_limit_is_respected(self, runtime, monkeypatch):
        """With a quota of 1,200 units a minute per user, enforced by the sandbox over any sliding minute, the client
        never spends more than a twelfth of it in any 5 s (100 units) and the sandbox refuses nothing."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox(["alex@ourcompany.example"], messages_per_mailbox=20, quota_units_per_minute=1200) as sandbox:
            point_at(runtime, sandbox, monkeypatch, gmail_quota_units_per_minute=1200)
            sandbox.state.mailboxes["alex@ourcompany.example"].quota = WindowLimit(100, 5.0)
            assert run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["status"] == "success"
            assert sandbox.state.mailboxes["alex@ourcompany.example"].quota.busiest <= 100
            assert sandbox.state.rate_limited == 0
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)

    def test_bodies_cut_short_by_the_network_are_retried(self, runtime, monkeypatch):
        """The token, a messages.list page and a batch answer cut off mid-body are asked for again; every
        message is stored once."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox(["alex@ourcompany.example"], messages_per_mailbox=30) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            faults = sandbox.server.faults
            for path in (r"^/token", r"/messages$", r"^/batch"):
                faults.truncate_next(1, path)
            assert run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["status"] == "success"
            assert not faults._truncated, "every injected cut was reached"
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)

    def test_messy_mailbox_syncs_without_a_crash(self, runtime, monkeypatch):
        """Every ugly kind, plus a 20 MB body: rows, nothing rejected, the big body capped and flagged."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox(["alex@ourcompany.example"], messages_per_mailbox=len(UGLY_KINDS) * 2, ugly_every=2,
                          big_body=True) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            result = run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)
            assert result["runs"][0]["rows_rejected"] == 0
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)
            big = runtime.warehouse.query(
                f"SELECT LENGTH(body_text) AS n, body_truncated FROM {DS}.gmail_messages WHERE body_truncated")
            assert big == [{"n": runtime.settings.gmail_body_max_chars, "body_truncated": True}]

    def test_mbox_import_gives_the_same_rows_as_the_api(self, runtime, monkeypatch, tmp_path, warehouse):
        """A Takeout export of the mailbox, imported, yields the API path's messages and participants."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync
        from warehouse import DuckDBWarehouse

        with GmailSandbox(["alex@ourcompany.example"], messages_per_mailbox=30, ugly_every=3) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)
            export = tmp_path / "takeout.mbox"
            export.write_bytes(sandbox.state.mbox("alex@ourcompany.example"))
        other = DuckDBWarehouse(tmp_path / "mbox.duckdb")
        other.ensure_schema()
        mbox_runtime = type(runtime)(runtime.settings, other, runtime.publisher, runtime.secrets)
        assert import_mbox(export, "alex@ourcompany.example", mbox_runtime)["rows_rejected"] == 0
        for columns, table, order in ((MESSAGE_COLUMNS, "gmail_messages", "message_id"),
                                      ("* EXCLUDE (ingested_at)", "gmail_participants", "message_id, role, email")):
            sql = f"SELECT {columns} FROM {DS}.{table} ORDER BY {order}"
            assert other.query(sql) == runtime.warehouse.query(sql), table
        other.close()


MAILBOX = "alex@ourcompany.example"
JSON_FIELDS = ("snippet", "thread_id", "labels")  # Gmail's JSON around the raw message, as stored
RAW_FIELDS = ("Subject", "display name", "body")  # inside the RFC 822 bytes
ABSURD_INTERNAL_MS = (-62135596800001, 253402300800000)  # before year 1, year 10000


def _in_raw(raw: bytes, field: str, change) -> bytes:
    """raw with change applied to the text of one field: the Subject's value, the From display name, the body."""
    head, body = raw.split(b"\r\n\r\n", 1)
    if field == "body":
        return head + b"\r\n\r\n" + change(body.decode("utf-8")).encode("utf-8", "surrogateescape")
    pattern = {"Subject": rb"(?m)^(Subject: )(.*)$", "display name": rb'(?m)^(From: "?)([^"<]*?)("? <)'}[field]
    return re.sub(pattern, lambda m: m[1] + change(m[2].decode()).encode("utf-8", "surrogateescape") + m[0][len(m[1]) + len(m[2]):],
                  head, count=1) + b"\r\n\r\n" + body


def poisoned_message(message: StoredMessage, kind: str, rng: random.Random) -> tuple[dict, str]:
    """The content that poisons message at a random field, and the reason it must be rejected with."""
    if kind == "absurd date":
        year = rng.choice((b"0001", b"1899", b"9999"))
        raw = re.sub(rb"(?m)^(Date: .*? )\d{4}( .*)$", lambda m: m[1] + year + m[2], message.raw, count=1)
        return {"raw": raw, "internal_ms": rng.choice(ABSURD_INTERNAL_MS)}, re.escape("no Date header and no internalDate")
    field = rng.choice(JSON_FIELDS if kind == "lone surrogate" else JSON_FIELDS + RAW_FIELDS)
    def change(text):
        return poisoned_text(text, kind, rng)

    content = {"snippet": lambda: {"snippet": change(message.snippet)},
               "thread_id": lambda: {"thread_id": change(message.thread_id)},
               "labels": lambda: {"labels": [change(message.labels[0])]}}.get(field, lambda: {"raw": _in_raw(message.raw, field, change)})()
    return content, poison_reason_pattern(kind)


class TestPoison:
    @pytest.mark.parametrize("seed", range(2))
    @pytest.mark.parametrize("kind", TEXT_POISONS + ("absurd date",))
    def test_a_poison_message_is_rejected_and_the_next_run_does_not_read_it(self, runtime, monkeypatch, kind, seed):
        """A lone surrogate (valid JSON), a NUL byte, oversized text or dates past any calendar at a random field of
        one new message: it is rejected with the reason, the others are merged, the run succeeds, and the next
        incremental run reads nothing again."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        monkeypatch.setattr("transform.values.MAX_ROW_BYTES", SMALL_ROW_BYTES)
        rng = random.Random(f"{kind} {seed}")
        with GmailSandbox([MAILBOX], messages_per_mailbox=4, ugly_every=0) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)
            bad = rng.choice([sandbox.state.add_message(MAILBOX) for _ in range(5)])
            content, reason = poisoned_message(bad, kind, rng)
            sandbox.state.replace_content(MAILBOX, bad.id, **content)
            (run,) = run_gmail_sync(GmailSyncRequest(), runtime)["runs"]
            assert (run["status"], run["rows_fetched"], run["rows_rejected"]) == ("success", 5, 1)
            (rejected,) = runtime.warehouse.query(f"SELECT record_key, reason FROM {DS}.rejected_records")
            assert rejected["record_key"] == bad.id and matches(reason, rejected["reason"]), rejected["reason"]
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox) - {(MAILBOX, bad.id)}
            (again,) = run_gmail_sync(GmailSyncRequest(), runtime)["runs"]
            assert (again["status"], again["rows_fetched"], again["rows_rejected"]) == ("success", 0, 0)

    @pytest.mark.parametrize("seed", range(3))
    def test_invalid_utf8_is_read_not_rejected(self, runtime, monkeypatch, seed):
        """Bytes that are not UTF-8 at a random place of the Subject, a display name or the body (the raw wire
        allows any): the message is stored, the bytes read as U+FFFD (headers) or Latin-1 (body), nothing rejected."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        rng = random.Random(seed)
        with GmailSandbox([MAILBOX], messages_per_mailbox=3, ugly_every=0, variety=False) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            bad = rng.choice(list(sandbox.state.mailboxes[MAILBOX].messages.values()))
            field = rng.choice(RAW_FIELDS)
            junk = rng.choice(("\udcff", "\udcc3", "\udced\udca0\udc80"))  # 0xff, a cut sequence, an encoded surrogate

            def spoil(text):
                cut = rng.randrange(len(text) + 1)
                return text[:cut] + junk + text[cut:]

            spoiled = _in_raw(bad.raw, field, spoil)
            assert spoiled != bad.raw
            sandbox.state.replace_content(MAILBOX, bad.id, raw=spoiled)
            (run,) = run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["runs"]
            assert (run["status"], run["rows_rejected"]) == ("success", 0), field
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)
            (read,) = runtime.warehouse.query(
                f"SELECT m.subject, m.body_text, p.display_name FROM {DS}.gmail_messages AS m JOIN {DS}.gmail_participants "
                f"AS p USING (mailbox, message_id) WHERE m.message_id = @id AND p.role = 'from'", {"id": bad.id})
            text = {"Subject": read["subject"], "display name": read["display_name"], "body": read["body_text"]}[field]
            assert ("\ufffd" in text) if field != "body" else text == spoiled.split(b"\r\n\r\n", 1)[1].decode("latin-1")


class TestValidation:
    @pytest.mark.parametrize("body, message", [
        ({"mailbox_email": "stranger@elsewhere.example"}, "not one of the configured mailboxes"),
        ({"mailbox_email": "not an address"}, "not an email address"),
        ({"sync_type": "sometimes"}, "sync_type"),
    ])
    def test_bad_requests_are_400(self, runtime, function_server, body, message):
        """Unknown mailboxes, bad addresses and bad sync types are refused before any run."""
        runtime.settings = runtime.settings.model_copy(update={"mailboxes": ["alex@ourcompany.example"]})
        response = function_server("gmail_sync").post(body)
        assert response.status_code == 400 and message in response.json()["error"]


    def test_no_mailboxes_configured_is_a_recorded_failure(self, runtime, function_server):
        """A deployment without MAILBOXES fails as a run would: 500 with a run id, a failed etl_runs row naming
        the setting (not a 400, which would say the caller's body was wrong)."""
        runtime.settings = runtime.settings.model_copy(update={"mailboxes": []})
        response = function_server("gmail_sync").post({})
        assert response.status_code == 500 and "set MAILBOXES" in response.json()["error"]
        (row,) = runtime.warehouse.query(f"SELECT run_id, source, status, error_message FROM {DS}.etl_runs")
        assert (row["run_id"], row["source"], row["status"]) == (response.json()["run_id"], "gmail", "failed")
        assert "set MAILBOXES" in row["error_message"]


RAW_HEAD = b"From: Ann <ann@example.com>\r\nTo: bob@example.org\r\nMessage-ID: <m1@example.com>\r\n"


def rows_of(raw: bytes, internal: str | None = "1767000000000"):
    return message_rows({"id": "abc", "threadId": "t", "raw_bytes": raw, "internalDate": internal}, "me@x.com", 1000)


class TestMessyMessages:
    @pytest.mark.parametrize("raw, check", [
        (RAW_HEAD + b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Tue, 1 Sep 2026 10:00:00 +0200\r\n\r\nhi\r\n",
         lambda m, p: m["subject"] == "Grüße" and m["sent_at"].hour == 8),
        (RAW_HEAD + b"Content-Type: text/plain; charset=x-unknown\r\n\r\nK\xf6ln\r\n",
         lambda m, p: m["body_text"].startswith("Köln")),
        (RAW_HEAD + b"Content-Type: text/plain\r\n\r\ncaf\xe9\r\n", lambda m, p: "caf" in m["body_text"]),
        (RAW_HEAD + b"\r\nno date at all\r\n", lambda m, p: m["sent_at"].year == 2025),
        (RAW_HEAD.replace(b"To: bob@example.org", b"To: undisclosed-recipients:;") + b"\r\nx\r\n",
         lambda m, p: [x["role"] for x in p] == ["from"]),
        (RAW_HEAD.replace(b"To: bob@example.org", b"To: Team: a@x.com, b@y.com;") + b"\r\nx\r\n",
         lambda m, p: sorted(x["email"] for x in p if x["role"] == "to") == ["a@x.com", "b@y.com"]),
        (RAW_HEAD.replace(b"To: bob@example.org", b'To: "john doe"@quoted.example') + b"\r\nx\r\n",
         lambda m, p: '"john doe"@quoted.example' in [x["email"] for x in p]),
        (RAW_HEAD.replace(b"From: Ann <ann@example.com>", b"From: =?iso-8859-1?q?J=FCrgen?= <J@X.COM>") + b"\r\nx\r\n",
         lambda m, p: (p[0]["display_name"], p[0]["email"], m["from_email"]) == ("Jürgen", "j@x.com", "j@x.com")),
        (RAW_HEAD + b"\r\n" + b"y" * 5000 + b"\r\n", lambda m, p: m["body_truncated"] and len(m["body_text"]) == 1000),
        (RAW_HEAD + b"Date: not a date\r\n\r\nx\r\n", lambda m, p: m["sent_at"].year == 2025),
        (RAW_HEAD + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
         b"body\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=q.pdf\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n",
         lambda m, p: m["attachments"] == [{"filename": "q.pdf", "mime_type": "application/pdf", "size_bytes": 5}]),
    ])
    def test_messy_mail_becomes_a_correct_row(self, raw, check):
        """Encoded words, bad charsets, no Date, groups, quoted locals, big bodies, attachments."""
        produced = rows_of(raw)
        (message,) = produced["gmail_messages"]
        assert check(message, produced["gmail_participants"])

    def test_duplicate_message_ids_keep_both_messages(self):
        """Two Gmail messages with one Message-ID are two rows (the key is the Gmail id)."""
        a = message_rows({"id": "1", "raw_bytes": RAW_HEAD + b"\r\nx", "internalDate": "1767000000000"}, "me@x.com", 100)
        b = message_rows({"id": "2", "raw_bytes": RAW_HEAD + b"\r\nx", "internalDate": "1767000000000"}, "me@x.com", 100)
        assert a["gmail_messages"][0]["rfc822_message_id"] == b["gmail_messages"][0]["rfc822_message_id"]
        assert a["gmail_messages"][0]["message_id"] != b["gmail_messages"][0]["message_id"]

    @pytest.mark.parametrize("resource, reason", [
        ({"raw_bytes": RAW_HEAD + b"\r\nx"}, "without an id"),
        ({"id": "1"}, "without raw content"),
        ({"id": "1", "raw_bytes": RAW_HEAD + b"\r\nx", "internalDate": None}, "no Date header and no internalDate"),
    ])
    def test_unusable_messages_are_rejected_with_the_reason(self, resource, reason):
        """No id, no content, or no date at all: a rejected record saying which."""
        with pytest.raises(RejectedRecord, match=reason):
            message_rows(resource, "me@x.com", 100)


def _encoded_word(text: str) -> str:
    import base64 as b64
    return f"=?utf-8?b?{b64.b64encode(text.encode()).decode()}?="


class TestUnicodeHeaders:
    LETTERS = "abcdefghijklmnopqrstuvwxyzäöüßéèçñøåłžšğıα日本"
    BROKEN = ("broken@@x", "no-at-sign", "a@localhost", "<j@b\udcffckerei.de>", "x@-bad-.com")  # \udcff: byte 0xff

    def generated(self, rng):
        """A header of random people (raw UTF-8 or encoded-word names, unicode domains) and broken parts."""
        import idna

        good, broken, parts = [], [], []
        for n in range(rng.randint(1, 6)):
            name = "".join(rng.choice(self.LETTERS) for _ in range(rng.randint(2, 8))).title()
            label = "".join(rng.choice(self.LETTERS[:33]) for _ in range(rng.randint(3, 9)))
            domain = f"{label}.{rng.choice(('de', 'com', 'co.uk'))}"
            local = f"p{n}.{rng.randint(1, 999)}"
            shown = _encoded_word(name) if rng.random() < 0.5 else f'"{name}"'
            parts.append(f"{shown} <{local}@{domain}>" if rng.random() < 0.8 else f"<mailto:{local}@{domain}>")
            good.append(f"{local}@{idna.encode(domain, uts46=True).decode()}")
        for _ in range(rng.randint(0, 2)):
            bad = rng.choice(self.BROKEN)
            parts.insert(rng.randrange(len(parts) + 1), bad)
            broken.append(bad)
        return ", ".join(parts), good, broken

    @pytest.mark.parametrize("seed", range(40))
    def test_every_address_is_a_participant_or_a_reject(self, seed):
        """RFC 6532 UTF-8 and encoded-word headers: each good address is a participant (IDNA 2008 domain),
        each broken one a rejected part with its text and reason; none is missing."""
        import random

        rng = random.Random(seed)
        header, good, broken = self.generated(rng)
        raw = (f"From: Ann <ann@example.com>\r\nTo: {header}\r\nMessage-ID: <m{seed}@x>\r\n\r\nbody\r\n")
        produced = rows_of(raw.encode("utf-8", "surrogateescape"))
        assert [p["email"] for p in produced["gmail_participants"] if p["role"] == "to"] == good
        rejected = produced["_rejected_parts"]
        assert len(rejected) == len(broken)
        assert all(r.reason.startswith("To address: ") and r.raw["header"] == "To" for r in rejected)
        assert len({r.key for r in rejected}) == len(rejected)

    @pytest.mark.parametrize("date", ["Mon, 1 Jan 0001 00:00:00 +0000", "Fri, 31 Dec 9999 23:00:00 -0500",
                                      "Thu, 1 Jan 1970 00:00:00 +0000", "Sat, 1 Jan 2250 00:00:00 +0000"])
    def test_an_impossible_date_falls_back_to_internal_date(self, date):
        """Year 0001 is not read as 2001, year 9999 past UTC rejects nothing: internalDate is used."""
        (message,) = rows_of(RAW_HEAD + f"Date: {date}\r\n\r\nx\r\n".encode())["gmail_messages"]
        assert message["sent_at"].year == 2025

    def test_a_broken_from_is_a_reject_and_the_message_is_kept(self):
        """A From that is no address: the message is kept, the From text is in the rejects."""
        produced = rows_of(RAW_HEAD.replace(b"From: Ann <ann@example.com>", b"From: Ann <ann@>") + b"\r\nx\r\n")
        assert produced["gmail_messages"][0]["from_email"] is None
        assert [(r.raw["address"], r.reason) for r in produced["_rejected_parts"]] == [
            ("Ann <ann@>", "From address: not an address")]


class TestNotMail:
    def test_drafts_spam_and_trash_never_reach_the_tables(self, runtime, monkeypatch):
        """Full and incremental runs store the mail only: drafts (a new id at every save), spam and trash are
        neither messages nor participants, a sent draft is stored once as sent mail, and the daily full
        reconciliation flags nothing deleted because of them."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox([MAILBOX], messages_per_mailbox=60) as sandbox:
            state = sandbox.state
            assert {label for m in state.mailboxes[MAILBOX].messages.values() for label in m.labels} >= {
                "DRAFT", "SPAM", "TRASH", "CHAT", "INBOX", "SENT"}
            point_at(runtime, sandbox, monkeypatch)
            run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)

            draft = state.save_draft(MAILBOX)
            draft = state.save_draft(MAILBOX, replacing=draft.id)
            sent = state.send_draft(MAILBOX, draft.id)
            later = state.save_draft(MAILBOX)
            spam = state.add_message(MAILBOX, labels=["SPAM"])
            (run,) = run_gmail_sync(GmailSyncRequest(), runtime)["runs"]
            assert run["status"] == "success" and run["details"]["mode"] == "incremental"
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)
            assert (MAILBOX, sent.id) in stored_ids(runtime.warehouse)
            participants = {r["message_id"] for r in runtime.warehouse.query(
                f"SELECT DISTINCT message_id FROM {DS}.gmail_participants")}
            assert not participants & {draft.id, later.id, spam.id}

            (full,) = run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["runs"]
            assert full["details"].get("deleted", 0) == 0 and full["rows_loaded"] == 0
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)

    @pytest.mark.parametrize("sync_type", ["incremental", "full"])
    @pytest.mark.parametrize("folder", ["SPAM", "TRASH"])
    def test_mail_moved_to_spam_or_trash_is_flagged_deleted_and_back_again(self, runtime, monkeypatch, folder,
                                                                           sync_type):
        """A stored message moved to spam or trash is flagged is_deleted (its row kept) by the next run,
        incremental (label history: its labels updated too) or full (no longer listed); moved back, it is mail
        again with its labels."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox([MAILBOX], messages_per_mailbox=12, variety=False) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)
            moved = next(m for m in sandbox.state.mailboxes[MAILBOX].messages.values() if m.labels == ["INBOX"])
            sandbox.state.relabel(MAILBOX, moved.id, add=(folder,), remove=("INBOX",))
            run_gmail_sync(GmailSyncRequest(sync_type=sync_type), runtime)
            labels = [folder] if sync_type == "incremental" else ["INBOX"]  # a full listing leaves spam and trash out
            assert stored_state(runtime.warehouse, moved.id) == {"label_ids": labels, "is_deleted": True}
            sandbox.state.relabel(MAILBOX, moved.id, add=("INBOX",), remove=(folder,))
            run_gmail_sync(GmailSyncRequest(sync_type=sync_type), runtime)
            assert stored_state(runtime.warehouse, moved.id) == {"label_ids": ["INBOX"], "is_deleted": False}

    def test_a_domain_ending_with_a_dot_reaches_the_participants(self, runtime, monkeypatch):
        """Cc: <j@acme.com.> is a participant j@acme.com, not a rejected address."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox([MAILBOX], messages_per_mailbox=len(UGLY_KINDS), ugly_every=1) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            (run,) = run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["runs"]
            (dotted,) = [m for m in sandbox.state.mailboxes[MAILBOX].messages.values() if b".>" in m.raw]
            address = re.search(rb"Cc: <(.+?)\.>", dotted.raw)[1].decode().lower()
            rows = runtime.warehouse.query(f"SELECT email, domain FROM {DS}.gmail_participants "
                                           f"WHERE message_id = @id AND role = 'cc'", {"id": dotted.id})
            assert rows == [{"email": address, "domain": address.split("@")[1]}] and run["rows_rejected"] == 0


class TestRateLimits:
    def test_403_rate_limits_are_retried_on_every_path(self, runtime, monkeypatch):
        """403 userRateLimitExceeded and rateLimitExceeded (Google's JSON error body) on getProfile,
        messages.list, history.list, batch parts and a whole batch are retried; the runs succeed with all mail."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox([MAILBOX], messages_per_mailbox=30) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            state = sandbox.state
            for kind in ("profile", "list", "get"):
                state.rate_limit_next(1, 403, "userRateLimitExceeded", kind)
                state.rate_limit_next(1, 403, "rateLimitExceeded", kind)
            sandbox.server.faults.fail_next(1, 403, r"^/batch",
                                            body=google_error(403, "userRateLimitExceeded", "User-rate limit exceeded."))
            (full,) = run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["runs"]
            assert full["status"] == "success" and not state.throttled
            assert not sandbox.server.faults._queued
            state.add_message(MAILBOX)
            state.rate_limit_next(1, 403, "userRateLimitExceeded", "history")
            state.rate_limit_next(1, 403, "rateLimitExceeded", "history")
            (incremental,) = run_gmail_sync(GmailSyncRequest(), runtime)["runs"]
            assert incremental["status"] == "success" and not state.throttled
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)

    def test_a_403_per_minute_quota_without_a_reason_is_retried(self, runtime, monkeypatch):
        """A 403 "Quota exceeded for quota metric ... per minute per user" with no errors[] (a form users of the API
        report) on messages.list, history.list and batch parts is retried like a rate limit."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox([MAILBOX], messages_per_mailbox=20) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            for kind in ("list", "get", "get"):
                sandbox.state.rate_limit_next(1, 403, QUOTA_METRIC, kind)
            assert run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["status"] == "success"
            sandbox.state.add_message(MAILBOX)
            sandbox.state.rate_limit_next(1, 403, QUOTA_METRIC, "history")
            assert run_gmail_sync(GmailSyncRequest(), runtime)["status"] == "success"
            assert not sandbox.state.throttled and stored_ids(runtime.warehouse) == sandbox_ids(sandbox)

    def test_a_403_that_is_no_rate_limit_fails_the_run(self, runtime, monkeypatch):
        """A 403 with another reason (delegation denied) is not retried: the run fails and says why."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox([MAILBOX], messages_per_mailbox=5) as sandbox:
            point_at(runtime, sandbox, monkeypatch)
            sandbox.state.rate_limit_next(1, 403, "forbidden", "list")
            with pytest.raises(HttpError, match="forbidden"):
                run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)
            assert runtime.warehouse.query(f"SELECT status FROM {DS}.etl_runs") == [{"status": "failed"}]
            assert sandbox.server.requests.statuses[403] == 1


class TestDailyBudget:
    def test_spent_daily_budget_ends_partial_and_a_later_run_resumes(self, runtime, monkeypatch):
        """Past the per-project daily unit budget a run stops partial (stop_reason, units in its details); the
        next run the same day counts the units already spent and stops at once; with budget again it completes
        with every message once."""
        from cloud_functions.gmail_sync.sync import GmailSyncRequest, run_gmail_sync

        with GmailSandbox([MAILBOX], messages_per_mailbox=70) as sandbox:
            point_at(runtime, sandbox, monkeypatch, gmail_daily_quota_units=200)
            (first,) = run_gmail_sync(GmailSyncRequest(sync_type="full"), runtime)["runs"]
            assert first["status"] == "partial" and "daily" in first["stop_reason"]
            assert 0 < first["details"]["quota_units"] <= 200
            assert 0 < len(stored_ids(runtime.warehouse)) < len(sandbox_ids(sandbox))
            (second,) = run_gmail_sync(GmailSyncRequest(), runtime)["runs"]
            assert second["status"] == "partial" and second["details"]["quota_units"] <= 200 - first["details"][
                "quota_units"]
            runtime.settings = runtime.settings.model_copy(update={"gmail_daily_quota_units": 80_000_000})
            (third,) = run_gmail_sync(GmailSyncRequest(), runtime)["runs"]
            assert third["status"] == "success"
            assert stored_ids(runtime.warehouse) == sandbox_ids(sandbox)
