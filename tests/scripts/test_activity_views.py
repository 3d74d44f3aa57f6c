"""The analyst views over the sandbox company after `run_local run` (a process, the real DuckDB file): the
timeline holds every activity once per person, the per-account view agrees with it, and the day's
recommendations are there, each explained by its evidence."""
from __future__ import annotations

import pytest

from config.settings import DEFAULT_ROLE_LOCALS
from warehouse import DuckDBWarehouse

DS = "sales_intelligence"


@pytest.fixture(scope="module")
def company(sandbox_company):
    wh = DuckDBWarehouse(sandbox_company / "wh.duckdb", DS)
    yield wh
    wh.close()


def ids(wh, sql: str) -> list[str]:
    return sorted(r["id"] for r in wh.query(sql))


def test_timeline_has_every_activity_once_per_person(company):
    """Salesforce activities, calls, messages (one per Message-ID) and enrollments: each there, once per person."""
    (dupes,) = company.query(
        f"SELECT COUNT(*) - COUNT(DISTINCT CONCAT(source, activity_id, '|', COALESCE(person_address, ''), '|', "
        f"COALESCE(sf_contact_id, ''), COALESCE(sf_lead_id, ''))) AS n FROM {DS}.v_activity_timeline")
    assert dupes["n"] == 0
    timeline = "SELECT DISTINCT activity_id AS id FROM " + DS + ".v_activity_timeline WHERE source = "
    assert ids(company, timeline + "'salesforce'") == ids(
        company, f"SELECT id FROM {DS}.sf_activities WHERE NOT is_deleted")
    assert len(ids(company, timeline + "'salesforce'")) == 1900
    assert ids(company, timeline + "'dialpad'") == ids(company, f"SELECT call_id AS id FROM {DS}.dialpad_calls")
    assert ids(company, timeline + "'hubspot'") == ids(
        company, f"SELECT enrollment_id AS id FROM {DS}.hubspot_sequence_enrollments")
    assert ids(company, timeline + "'gmail'") == ids(
        company, f"SELECT DISTINCT COALESCE(m.rfc822_message_id, m.message_id) AS id FROM {DS}.gmail_messages AS m "
                 f"JOIN {DS}.gmail_participants AS p USING (mailbox, message_id) "
                 f"WHERE NOT COALESCE(m.is_deleted, FALSE) AND p.email != p.mailbox "
                 f"AND COALESCE(p.match_method, '') != 'internal'")


def test_enrollments_are_matched_by_entity_resolution(company):
    """An enrollment whose address is one live contact's (not a role address, which links an account at most)
    carries that contact, with its name and account, in the timeline."""
    rows = company.query(
        f"SELECT t.sf_contact_id, t.contact_name, t.account_name, c.id AS expected FROM {DS}.v_activity_timeline AS t "
        f"JOIN {DS}.sf_contacts AS c ON c.email = t.person_address WHERE t.source = 'hubspot' AND NOT c.is_deleted "
        f"AND c.email IN (SELECT email FROM {DS}.sf_contacts WHERE NOT is_deleted GROUP BY email HAVING COUNT(*) = 1) "
        f"AND SPLIT(c.email, '@')[OFFSET(0)] NOT IN UNNEST(@role_locals)", {"role_locals": list(DEFAULT_ROLE_LOCALS)})
    assert rows and [r for r in rows if not (r["sf_contact_id"] == r["expected"] and r["contact_name"]
                                             and r["account_name"])] == []


def test_engagement_by_account_agrees_with_the_timeline(company):
    """An account's last touch and 90-day touches are those of its timeline rows; open opportunities are counted."""
    (account,) = company.query(
        f"SELECT * FROM {DS}.v_engagement_by_account WHERE open_opportunities > 0 "
        f"ORDER BY touches_90d DESC, sf_account_id LIMIT 1")
    (timeline,) = company.query(
        f"SELECT MAX(occurred_at) AS last_touch_at, COUNT(DISTINCT IF(occurred_at >= TIMESTAMP_SUB("
        f"CURRENT_TIMESTAMP(), INTERVAL 90 DAY), activity_id, NULL)) AS touches_90d FROM {DS}.v_activity_timeline "
        f"WHERE sf_account_id = @id AND occurred_at <= CURRENT_TIMESTAMP()", {"id": account["sf_account_id"]})
    assert (account["last_touch_at"], account["touches_90d"]) == (timeline["last_touch_at"], timeline["touches_90d"])
    (opportunities,) = company.query(
        f"SELECT COUNT(*) AS n FROM {DS}.sf_opportunities WHERE account_id = @id AND NOT is_deleted AND NOT is_closed",
        {"id": account["sf_account_id"]})
    assert account["open_opportunities"] == opportunities["n"] > 0


def test_recommendations_are_written_and_explained(company):
    """`run` leaves recommendations; each names an account and carries its evidence and a score in [0, 1]."""
    rows = company.query(f"SELECT * FROM {DS}.account_recommendations")
    assert rows
    for row in rows:
        assert row["account_name"] and row["reason"] and 0 <= row["score"] <= 1
        if row["recommendation_type"] == "new_contact_in_mail":
            assert row["evidence"]["messages"] >= row["evidence"]["threshold_messages"]
            assert row["evidence"]["email"] in row["reason"]


def test_stage_paths_end_where_each_opportunity_stands(company):
    """Every live opportunity has a stage path whose current stage is its stage now, entered after the one before."""
    rows = company.query(
        f"SELECT p.opportunity_id, p.stage_name, o.stage_name AS stage_now, p.stage_number "
        f"FROM {DS}.v_opportunity_stage_path AS p JOIN {DS}.sf_opportunities AS o ON o.id = p.opportunity_id "
        f"WHERE p.is_current_stage")
    assert sorted(r["opportunity_id"] for r in rows) == ids(
        company, f"SELECT id FROM {DS}.sf_opportunities WHERE NOT is_deleted")
    assert [r for r in rows if r["stage_name"] != r["stage_now"]] == []
    assert {r["stage_number"] for r in rows} == {1, 2, 3, 4, 5}
    (backwards,) = company.query(f"SELECT COUNT(*) AS n FROM {DS}.v_opportunity_stage_path WHERE left_at < entered_at")
    assert backwards["n"] == 0
