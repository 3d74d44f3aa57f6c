"""05_apply writes decisions scanning only the partitions it changes, on both warehouses."""
from __future__ import annotations

import re
from datetime import timedelta

import duckdb
import pytest

from entity_resolution.matcher import ResolutionRequest, resolve_entities
from pipeline.runtime import Runtime
from tests.entity_resolution.test_matcher import ACCOUNTS, CONTACTS, T0, add_mail, crm_rows


@pytest.mark.emulator
@pytest.mark.parametrize("which", ["duckdb", "bigquery"])
def test_apply_updates_only_the_changed_partitions_and_nothing_on_a_quiet_run(which, request):
    """The UPDATE bounds sent_at to the days holding new rows; a run with nothing new runs no UPDATE."""
    wh = request.getfixturevalue("warehouse" if which == "duckdb" else "bigquery_warehouse")
    settings = request.getfixturevalue("settings" if which == "duckdb" else "bigquery_settings")
    wh.merge("sf_accounts", crm_rows(ACCOUNTS))
    wh.merge("sf_contacts", crm_rows(CONTACTS))
    add_mail(wh, "jane@acme.com")
    wh.merge("gmail_participants", [{"mailbox": "alex@ourcompany.example", "message_id": "m2", "role": "to",
                                     "email": "jane@acme.com", "domain": "acme.com",
                                     "sent_at": T0 + timedelta(days=30)}])
    statements: list[str] = []
    execute = wh.execute

    def recording(sql, params=None):
        statements.append(sql)
        return execute(sql, params)

    wh.execute = recording
    runtime = Runtime.around(settings, wh)
    first = resolve_entities(ResolutionRequest(), runtime)
    assert first["rows_updated"]["gmail_participants"] == 2
    (update,) = [s for s in statements if re.search(r"^UPDATE \S*gmail_participants", s, re.M)]
    assert re.search(r"t\.sent_at >= TIMESTAMP '2025-01-01 00:00:00\+00:00' AND t\.sent_at < TIMESTAMP "
                     r"'2025-01-02 00:00:00\+00:00'", update)
    assert "TIMESTAMP '2025-01-31 00:00:00+00:00'" in update and " OR " in update
    statements.clear()
    second = resolve_entities(ResolutionRequest(), runtime)
    assert second["rows_updated"] == {"gmail_participants": 0, "hubspot_sequence_enrollments": 0, "dialpad_calls": 0,
                                      "meeting_participants": 0, "crm_deals": 0}
    assert not [s for s in statements if re.search(r"^UPDATE \S*(gmail_participants|hubspot_sequence_enrollments|dialpad_calls)", s, re.M)]
    rows = wh.query(f"SELECT sf_contact_id FROM `{wh.dataset}.gmail_participants`")
    assert [r["sf_contact_id"] for r in rows] == ["003JANE", "003JANE"]


def test_a_re_resolved_value_whose_outcome_stands_touches_no_partition(warehouse, settings):
    """A CRM change that leaves a value's match as it was re-resolves it but writes (and scans) nothing."""
    from datetime import datetime, timezone

    warehouse.merge("sf_accounts", crm_rows(ACCOUNTS))
    warehouse.merge("sf_contacts", crm_rows(CONTACTS))
    add_mail(warehouse, "jane@acme.com")
    runtime = Runtime.around(settings, warehouse)
    resolve_entities(ResolutionRequest(), runtime)
    # Jane's contact changes (a new title), not her address: her value is re-resolved to the same contact.
    warehouse.merge("sf_contacts", crm_rows([{**CONTACTS[0], "title": "CTO"}],
                                            {"system_modstamp": datetime.now(timezone.utc)}))
    statements: list[str] = []
    execute = warehouse.execute
    warehouse.execute = lambda sql, params=None: statements.append(sql) or execute(sql, params)
    summary = resolve_entities(ResolutionRequest(), runtime)
    assert summary["values_examined"] >= 1 and summary["rows_updated"]["gmail_participants"] == 0
    assert not [s for s in statements if re.search(r"^UPDATE \S*gmail_participants", s, re.M)]


def test_an_update_leaves_duckdbs_optimizer_settings_as_they_were(warehouse):
    """The DuckDB warehouse turns off the optimizer that swaps a join's sides for an UPDATE only (its target
    is scanned, row ids in order), and turns it on again after, a failing UPDATE included."""
    import pytest

    def setting():

        return warehouse.query("SELECT current_setting('disabled_optimizers') AS s")[0]["s"]

    warehouse.merge("sf_accounts", crm_rows(ACCOUNTS))
    updated = warehouse.execute(f"UPDATE {warehouse.dataset}.sf_accounts AS a SET name = b.name "
                                f"FROM {warehouse.dataset}.sf_accounts AS b WHERE a.id = b.id")
    assert updated == len(ACCOUNTS) and setting() == ""
    with pytest.raises(duckdb.BinderException):
        warehouse.execute(f"UPDATE {warehouse.dataset}.sf_accounts SET no_such_column = 1")
    assert setting() == ""
