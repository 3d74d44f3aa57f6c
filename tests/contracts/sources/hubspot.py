"""HubSpot's hooks for the shared contract suite."""
from __future__ import annotations

from typing import Any

from sandbox.hubspot import HubSpotSandbox
from tests.contracts.sources.base import NUL, SourceContract


class Contract(SourceContract):
    settings = {"hubspot_lookback_seconds": 0}
    does_not_resume = ("the sequences stream is read whole each run with no continuation: a budget that cuts it "
                       "every run never completes it")

    def sandbox(self) -> HubSpotSandbox:
        return HubSpotSandbox(16)

    def cut(self, monkeypatch: Any) -> dict[str, Any]:
        monkeypatch.setattr("cloud_functions.hubspot_sync.client.SEARCH_PAGE", 4)
        return {}

    def add_records(self, sandbox: HubSpotSandbox) -> None:
        for contact_id in sorted(sandbox.state.enrollments, key=str)[:2]:
            sandbox.state.modify(contact_id, sequenceName="Renamed")

    def poison(self, sandbox: HubSpotSandbox) -> str:
        contact_id = sorted(sandbox.state.enrollments, key=str)[-1]
        sandbox.state.modify(contact_id, sequenceName=f"Re{NUL}named")
        return str(contact_id)
