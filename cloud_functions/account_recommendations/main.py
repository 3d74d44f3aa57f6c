"""HTTP entry point: POST {} (the rules and their thresholds are settings)."""
from __future__ import annotations

import functions_framework

from http_entry.handler import handle_request
from recommendations.rules import RecommendationRequest, recommend_accounts


@functions_framework.http
def account_recommendations(request):
    """Writes the day's rule-based account recommendations; answers the run's summary."""
    return handle_request(request, RecommendationRequest, recommend_accounts, source="account_recommendations")
