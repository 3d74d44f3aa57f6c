"""Google Meet's hooks for the shared contract suite."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sandbox.meet import MeetSandbox
from tests.contracts.sources.base import NUL, SourceContract


class Contract(SourceContract):
    # An incremental run reads its look-back again (new conferences end within it).
    settings = {"meet_full_days": 5, "meet_lookback_hours": 4}

    def sandbox(self) -> MeetSandbox:
        return MeetSandbox(16, spacing_hours=8)

    def cut(self, monkeypatch: Any) -> dict[str, Any]:
        monkeypatch.setattr("cloud_functions.meet_sync.sync.WINDOW", timedelta(days=2))
        return {}

    def add_records(self, sandbox: MeetSandbox) -> None:
        sandbox.state.add_meetings(3)

    def poison(self, sandbox: MeetSandbox) -> str:
        (meeting,) = sandbox.state.add_meetings(1)
        meeting.title = f"Renewal{NUL}call"  # the Calendar event's summary: the meeting's topic
        return f"conferenceRecords/cr{meeting.index:05d}"
