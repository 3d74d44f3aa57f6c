"""The Gmail sandbox's own behaviour: seeded variety, Gmail's quota per minute and its rate-limit answers."""
from __future__ import annotations

from collections import Counter

import requests

from sandbox.gmail import QUOTA_UNITS_PER_MINUTE, GmailSandbox

MAILBOX = "alex@ourcompany.example"


def labels_of(sandbox: GmailSandbox) -> list[tuple[str, ...]]:
    return [tuple(m.labels) for m in sandbox.state.mailboxes[MAILBOX].messages.values()]


class TestVariety:
    def test_the_same_seed_gives_the_same_mailbox(self, monkeypatch):
        """Drafts, spam, trash, chat and multipart mail come from the seed: the same seed, the same mail; another
        seed, other mail."""
        monkeypatch.setenv("SANDBOX_NOW", "2026-12-01T09:00:00+00:00")  # the dates are laid out around now
        with GmailSandbox([MAILBOX], 60) as one, GmailSandbox([MAILBOX], 60) as two, \
                GmailSandbox([MAILBOX], 60, seed=5) as other:
            assert labels_of(one) == labels_of(two) != labels_of(other)
            assert [m.raw for m in one.state.mailboxes[MAILBOX].messages.values()] == \
                [m.raw for m in two.state.mailboxes[MAILBOX].messages.values()]
            assert {label for labels in labels_of(one) for label in labels} == {"INBOX", "SENT", "CHAT", "DRAFT",
                                                                                 "SPAM", "TRASH"}

    def test_without_variety_only_inbox_and_sent(self):
        """variety=False keeps the plain mailbox: INBOX and SENT, one text part each."""
        with GmailSandbox([MAILBOX], 20, variety=False) as sandbox:
            assert set(labels_of(sandbox)) == {("INBOX",), ("SENT",)}
            assert not any(b"multipart" in m.raw for m in sandbox.state.mailboxes[MAILBOX].messages.values())


class TestQuota:
    def test_past_6000_units_a_minute_calls_get_gmails_rate_limit_answers(self):
        """Once a mailbox has spent its 6,000 units of the minute, calls are refused with Google's error body:
        429 rateLimitExceeded, 403 userRateLimitExceeded / rateLimitExceeded, or a 403 "Quota exceeded for quota
        metric" with no errors[], chosen from the seed."""
        with GmailSandbox([MAILBOX], 3) as sandbox:
            sandbox.state.tokens["test-token"] = MAILBOX
            assert sandbox.state.spend(MAILBOX, QUOTA_UNITS_PER_MINUTE)
            answers = Counter()
            for _ in range(20):
                response = requests.get(f"{sandbox.url}/gmail/v1/users/me/profile",
                                        headers={"Authorization": "Bearer test-token"}, timeout=5)
                error = response.json()["error"]
                assert error["code"] == response.status_code
                reason = error["errors"][0]["reason"] if "errors" in error else error["message"][:31]
                answers[(response.status_code, reason)] += 1
            assert set(answers) == {(429, "rateLimitExceeded"), (403, "userRateLimitExceeded"),
                                    (403, "rateLimitExceeded"), (403, "Quota exceeded for quota metric")}
