"""HTTP entry point of the merger (queue mode): POST {"seconds": 50} from Cloud Scheduler every minute; one instance."""
from __future__ import annotations

from typing import Any

import functions_framework
from pydantic import Field

from http_entry.handler import handle_request
from http_entry.validation import RequestModel
from pipeline.merger import Merger
from pipeline.runtime import Runtime


class MergerRequest(RequestModel):
    """Body of a landing_merger call: how long to keep merging (cycles every MERGE_INTERVAL_SECONDS)."""

    seconds: float = Field(50.0, ge=0, le=480)


def run_merger(request: MergerRequest, runtime: Runtime) -> dict[str, Any]:
    """Merges what workers landed, cycle after cycle, for the requested time; answers the totals."""
    cycles = Merger(runtime.warehouse, runtime.settings).run_for(request.seconds)
    totals = {name: sum(getattr(c, name) for c in cycles)
              for name in ("messages", "rows", "merges", "rejected", "dead_letters", "abandoned")}
    return {"source": "merger", "status": "success", "cycles": len(cycles), **totals}


@functions_framework.http
def landing_merger(request):
    """Folds the rows workers landed into the tables; answers what it merged."""
    return handle_request(request, MergerRequest, run_merger, source="merger")
