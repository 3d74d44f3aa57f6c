"""Gmail's hooks for the shared contract suite."""
from __future__ import annotations

from typing import Any

from sandbox.gmail import GmailSandbox
from tests.contracts.sources.base import NUL, SourceContract

MAILBOX = "alex@ourcompany.example"


class Contract(SourceContract):
    def sandbox(self) -> GmailSandbox:
        return GmailSandbox([MAILBOX], messages_per_mailbox=8, ugly_every=0)

    def cut(self, monkeypatch: Any) -> dict[str, Any]:
        return {"gmail_list_page_size": 3}

    def add_records(self, sandbox: GmailSandbox) -> None:
        for _ in range(3):
            sandbox.state.add_message(MAILBOX)

    def poison(self, sandbox: GmailSandbox) -> str:
        message = sandbox.state.add_message(MAILBOX)
        sandbox.state.replace_content(MAILBOX, message.id, snippet=message.snippet + NUL)
        return message.id
