"""Zoom's hooks for the shared contract suite."""
from __future__ import annotations

from typing import Any

from sandbox.zoom import ZoomSandbox
from tests.contracts.sources.base import NUL, SourceContract


class Contract(SourceContract):
    # Days are read by date: an incremental run reads its look-back's days again (new meetings start within it).
    settings = {"zoom_full_days": 5, "zoom_lookback_hours": 4}

    def sandbox(self) -> ZoomSandbox:
        return ZoomSandbox(16, spacing_hours=8)

    def cut(self, monkeypatch: Any) -> dict[str, Any]:
        return {"zoom_window_days": 2}

    def add_records(self, sandbox: ZoomSandbox) -> None:
        sandbox.state.add_meetings(3)

    def poison(self, sandbox: ZoomSandbox) -> str:
        (meeting,) = sandbox.state.add_meetings(1)
        meeting.title = f"Renewal{NUL}call"
        return sandbox.state.uuids[meeting.index]
