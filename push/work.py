"""A work message run by the fan-out worker (pipeline.worker.run_work, which skips a superseded push), then
entity resolution of what it brought.

Entity resolution runs incrementally: for rows never examined it reads only the partitions that the runs since its
last one wrote (entity_resolution/sql/01_scope_written.sql), so it costs in proportion to what the pushes brought,
not to the tables; one resolution after a batch of runs covers all of them.
"""
from __future__ import annotations

from typing import Any

from entity_resolution.matcher import ResolutionRequest, resolve_entities
from pipeline.runtime import Runtime
from pipeline.work_queue import WorkMessage, WorkQueue
from pipeline.worker import run_work


def run_message(message: WorkMessage, runtime: Runtime, queue: WorkQueue | None = None) -> dict[str, Any] | None:
    """The run of a work message (its summary), or None when it was superseded (coalesced into a run of its stream
    that started after it was published)."""
    answer = run_work(message, runtime, queue)
    return None if answer.get("status") == "superseded" else answer


def resolve_pushed(runtime: Runtime) -> dict[str, Any]:
    """Incremental entity resolution of what the runs since the last resolution wrote."""
    return resolve_entities(ResolutionRequest(sync_type="incremental", trigger="local"), runtime)
