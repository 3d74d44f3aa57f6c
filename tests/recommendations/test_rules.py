"""Account recommendations: each rule fires on the data it describes, with its evidence and score, on both
warehouses; a rerun the same day rewrites the same rows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipeline.runtime import Runtime
from recommendations.rules import RecommendationRequest, recommend_accounts

NOW = datetime.now(timezone.utc)
OLD = datetime(2024, 1, 1, tzinfo=timezone.utc)


def company(warehouse) -> None:
    """Three accounts: QUIET has an open opportunity and no touch; MAIL is mailed by someone not in Salesforce;
    BURST had nothing for months, then four calls this week."""
    base = {"is_deleted": False, "system_modstamp": OLD, "created_date": OLD}
    warehouse.merge("sf_accounts", [{**base, "id": f"001{n}", "name": n.title()} for n in ("QUIET", "MAIL", "BURST")])
    warehouse.merge("sf_contacts", [{**base, "id": "003KNOWN", "account_id": "001MAIL", "email": "known@mail.example"}])
    warehouse.merge("sf_opportunities", [{**base, "id": "006OPEN", "account_id": "001QUIET", "amount": 5000,
                                          "is_closed": False}])
    match = {"sf_account_id": "001MAIL", "match_method": "email_domain", "match_confidence": 0.8, "matched_at": NOW}
    warehouse.merge("gmail_participants", [
        {"mailbox": "alex@ourcompany.example", "message_id": f"m{i}", "role": "from", "email": address,
         "domain": "mail.example", "sent_at": NOW - timedelta(days=i + 1), **match}
        for i, address in enumerate(["new.person@mail.example", "new.person@mail.example", "info@mail.example",
                                     "info@mail.example", "once@mail.example"])])
    warehouse.merge("dialpad_calls", [
        {"call_id": f"c{i}", "started_at": NOW - timedelta(days=1, hours=i), "direction": "outbound",
         "external_number_e164": "+14155550199", "sf_account_id": "001BURST", "match_method": "phone_exact",
         "matched_at": NOW} for i in range(4)])


@pytest.mark.emulator
@pytest.mark.parametrize("which", ["duckdb", "bigquery"])
def test_each_rule_fires_with_its_evidence(which, request):
    """stalled_opportunity, new_contact_in_mail (a person, not a role address) and dormant_burst fire once each."""
    wh = request.getfixturevalue("warehouse" if which == "duckdb" else "bigquery_warehouse")
    settings = request.getfixturevalue("settings" if which == "duckdb" else "bigquery_settings")
    company(wh)
    runtime = Runtime.around(settings, wh)
    summary = recommend_accounts(RecommendationRequest(), runtime)
    assert summary["status"] == "success"
    assert summary["by_rule"] == {"stalled_opportunity": 1, "new_contact_in_mail": 1, "dormant_burst": 1}
    rows = {r["recommendation_type"]: r for r in wh.query(
        f"SELECT * FROM `{wh.dataset}.account_recommendations`")}
    stalled, mail, burst = rows["stalled_opportunity"], rows["new_contact_in_mail"], rows["dormant_burst"]
    assert (stalled["sf_account_id"], stalled["account_name"], stalled["score"]) == ("001QUIET", "Quiet", 1.0)
    assert stalled["evidence"]["open_opportunities"] == 1 and stalled["evidence"]["last_touch_at"] is None
    assert stalled["reason"] == "1 open opportunity and no touch ever recorded"
    assert mail["sf_account_id"] == "001MAIL" and mail["evidence"]["email"] == "new.person@mail.example"
    assert mail["evidence"]["messages"] == 2 and mail["score"] == pytest.approx(0.6)
    assert burst["sf_account_id"] == "001BURST" and burst["evidence"]["recent_touches"] == 4
    assert burst["evidence"]["touches_before"] == 0 and burst["score"] == pytest.approx(0.6)
    assert all(r["status"] == "open" and r["model_version"] == "rules@1" for r in rows.values())

    again = recommend_accounts(RecommendationRequest(), runtime)
    assert again["recommendations"] == 3
    (count,) = wh.query(f"SELECT COUNT(*) AS n FROM `{wh.dataset}.account_recommendations`")
    assert count["n"] == 3


def test_thresholds_are_settings(warehouse, settings):
    """With a higher message threshold the mail rule stays silent; a touched account is not stalled."""
    company(warehouse)
    stricter = settings.model_copy(update={"recommendation_new_contact_min_messages": 3,
                                           "recommendation_burst_min_touches": 5})
    summary = recommend_accounts(RecommendationRequest(), Runtime.around(stricter, warehouse))
    assert summary["by_rule"] == {"stalled_opportunity": 1}
