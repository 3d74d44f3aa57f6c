"""What a source gives the shared contract suite: a small sandbox, settings, and ways to change what it serves."""
from __future__ import annotations

from typing import Any

NUL = "\x00"  # unstorable in every warehouse: a record carrying it is rejected, whatever the source


class SourceContract:
    """One source's hooks. The suite starts `sandbox()`, aims the pipeline at it with `settings`, and calls the
    rest while it runs."""

    # Settings overrides for every run (e.g. no lookback, so an incremental run reads only what changed).
    settings: dict[str, Any] = {}
    # Why a run cut after every page never completes, when that is known and not yet mended (the suite expects
    # the failure, strictly: mending it makes the test fail until this is cleared).
    does_not_resume: str | None = None

    def sandbox(self) -> Any:
        """The sandbox, small and not started (a context manager)."""
        raise NotImplementedError

    def cut(self, monkeypatch: Any) -> dict[str, Any]:
        """Settings overrides (and monkeypatched constants) that make a full run span several pages, so that a
        tiny time budget cuts it."""
        return {}

    def add_records(self, sandbox: Any) -> None:
        """New or changed records upstream, which an incremental run must load."""
        raise NotImplementedError

    def poison(self, sandbox: Any) -> str:
        """Puts a NUL into a text of one new or changed record upstream; gives the record's key as rejected_records
        keeps it."""
        raise NotImplementedError
