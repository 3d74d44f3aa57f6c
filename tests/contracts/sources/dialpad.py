"""Dialpad's hooks for the shared contract suite."""
from __future__ import annotations

from typing import Any

from sandbox.dialpad import DialpadSandbox
from tests.contracts.sources.base import NUL, SourceContract


class Contract(SourceContract):
    # Calls are listed once they end, so incremental runs read a look-back again; the sandbox's are 10 minutes apart.
    settings = {"dialpad_full_days": 5, "dialpad_lookback_hours": 0.5}
    does_not_resume = ("a window's watermark comes after its calls pages: a budget shorter than one window's pages "
                       "starts that window again every run")

    def sandbox(self) -> DialpadSandbox:
        return DialpadSandbox(16)

    def cut(self, monkeypatch: Any) -> dict[str, Any]:
        return {"dialpad_window_hours": 12}

    def add_records(self, sandbox: DialpadSandbox) -> None:
        sandbox.state.add_calls(3)

    def poison(self, sandbox: DialpadSandbox) -> str:
        (call,) = sandbox.state.add_calls(1)
        call["external_number"] += NUL  # the sandbox serves the dict it holds
        return str(call["call_id"])
