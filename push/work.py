"""A work message run by the fan-out worker (pipeline.worker.run_work, which skips a superseded push).

What a push run brings is resolved by the merger as it appends it to the fresh tier (pipeline/fresh_tier.py,
entity_resolution/mirror.py): no resolution runs after it.
"""
from __future__ import annotations

from typing import Any

from pipeline.runtime import Runtime
from pipeline.work_queue import WorkMessage, WorkQueue
from pipeline.worker import run_work


def run_message(message: WorkMessage, runtime: Runtime, queue: WorkQueue | None = None) -> dict[str, Any] | None:
    """The run of a work message (its summary), or None when it was superseded (coalesced into a run of its stream
    that started after it was published)."""
    answer = run_work(message, runtime, queue)
    return None if answer.get("status") == "superseded" else answer
