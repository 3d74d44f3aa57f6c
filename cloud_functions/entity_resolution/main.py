"""HTTP entry point: POST {"entity_type": "all"|"email"|"phone", "sync_type": "incremental"|"full", "batch_size": N}."""
from __future__ import annotations

import functions_framework

from entity_resolution.matcher import ResolutionRequest, resolve_entities
from http_entry.handler import handle_request


@functions_framework.http
def entity_resolution(request):
    """Matches mail and call participants to Salesforce; answers the run's summary."""
    return handle_request(request, ResolutionRequest, resolve_entities, source="entity_resolution")
