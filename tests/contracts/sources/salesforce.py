"""Salesforce's hooks for the shared contract suite."""
from __future__ import annotations

import time
from typing import Any

from sandbox.company import CompanySize
from sandbox.salesforce import SalesforceSandbox
from tests.contracts.sources.base import NUL, SourceContract


class Contract(SourceContract):
    settings = {"salesforce_lookback_seconds": 0}

    def sandbox(self) -> SalesforceSandbox:
        sandbox = SalesforceSandbox(CompanySize(accounts=3, contacts=12, leads=4))
        sandbox.state.bulk_in_progress_polls = 0  # Bulk jobs complete at once: no poll waits
        return sandbox

    def cut(self, monkeypatch: Any) -> dict[str, Any]:
        return {"salesforce_bulk_threshold": 0, "salesforce_bulk_page_records": 6}

    def add_records(self, sandbox: SalesforceSandbox) -> None:
        time.sleep(1.05)  # incremental reads start at a whole second: the edit falls in a later one
        sandbox.state.edit("Contact", 3, LastName="Later")

    def poison(self, sandbox: SalesforceSandbox) -> str:
        time.sleep(1.05)
        return sandbox.state.edit("Contact", 5, LastName=f"Mu{NUL}ller")["Id"]
