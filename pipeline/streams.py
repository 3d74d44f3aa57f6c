"""A source with one stream (Dialpad's calls, Zoom's meetings, Meet's conferences): its queue-mode functions.

Every source module gives the worker `requested_streams(request, runtime)` and `stream_job(stream, sync_type,
runtime, deadline)` (pipeline/worker.py); a source of one stream gets both from here.
"""
from __future__ import annotations

from typing import Any, Callable

from http_entry.validation import BadRequest
from pipeline.runner import SyncJob
from pipeline.runtime import Runtime


def single_stream(source: str, stream: str, job: Callable[[Runtime, str], SyncJob]
                  ) -> tuple[Callable[[Any, Runtime], list[str]], Callable[[str, str, Runtime, float], SyncJob]]:
    """(requested_streams, stream_job) of a source whose one stream `job(runtime, sync_type)` builds."""
    def requested_streams(_request: Any, _runtime: Runtime) -> list[str]:
        return [stream]

    def stream_job(name: str, sync_type: str, runtime: Runtime, _deadline: float) -> SyncJob:
        if name != stream:
            raise BadRequest(f"{source} has one stream, {stream!r}, not {name!r}")
        return job(runtime, sync_type)

    return requested_streams, stream_job
