"""The schema files: complete, consistent, and create_tables.sql generated from them."""
from __future__ import annotations

import json

import pytest
from google.cloud import bigquery

from warehouse.schemas import SCHEMA_DIR, VIEWS_DIR, activity_timeline_sql, create_tables_sql, load_table_specs

DESIGN_TABLES = {
    "gmail_messages", "gmail_participants", "gmail_sync_state", "sf_accounts", "sf_contacts", "sf_leads",
    "sf_opportunities", "sf_activities", "dialpad_calls", "hubspot_sequences", "account_recommendations",
    "etl_runs", "manual_mappings", "sync_state", "rejected_records", "entity_match_candidates",
}
MATCH_COLUMNS = ("sf_contact_id", "sf_lead_id", "sf_account_id", "match_method", "match_confidence", "matched_at")


def test_every_design_table_has_a_schema():
    """Every table the pipeline writes is declared."""
    assert DESIGN_TABLES <= set(load_table_specs())


def test_create_tables_sql_is_fresh():
    """create_tables.sql is what the generator makes today (run `make schemas` when this fails)."""
    assert (SCHEMA_DIR / "create_tables.sql").read_text() == create_tables_sql()


def test_activity_timeline_is_fresh():
    """bigquery/views/v_activity_timeline.sql is what `make schemas` writes from its template and every registered
    source's timeline.sql: a source's branch cannot be added by hand, nor forgotten."""
    assert (VIEWS_DIR / "v_activity_timeline.sql").read_text() == activity_timeline_sql()


def test_fresh_tier_files_are_fresh():
    """bigquery/fresh/ (what Terraform creates the fresh tier from) is what `make schemas` writes today: every pushed
    table's <table>_fresh.json and <table>_live.sql, and nothing else."""
    from warehouse.fresh import generated_files

    folder = SCHEMA_DIR.parent / "fresh"
    files = generated_files()
    assert {p.name for p in folder.iterdir()} == set(files)
    assert all((folder / name).read_text() == text for name, text in files.items())


@pytest.mark.parametrize("name", sorted(DESIGN_TABLES))
def test_schema_file_is_valid_bigquery_json(name):
    """Each file parses as BigQuery SchemaFields with a description on every column."""
    data = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    fields = [bigquery.SchemaField.from_api_repr(c) for c in data]
    assert fields and all(f.description for f in fields)


@pytest.mark.parametrize("table", ["gmail_participants", "dialpad_calls"])
def test_matched_tables_carry_the_match_columns(table):
    """Entity resolution writes its result into these columns."""
    assert set(MATCH_COLUMNS) <= set(load_table_specs()[table].column_names)


@pytest.mark.parametrize("table, columns", [
    ("sf_contacts", {"email", "email_raw", "phone", "phone_e164", "mobile_phone_e164", "domain"}),
    ("sf_leads", {"email", "phone_e164", "is_converted", "converted_contact_id"}),
    ("sf_accounts", {"website", "domain", "phone_e164"}),
    ("gmail_participants", {"email", "domain", "display_name"}),
    ("dialpad_calls", {"external_number", "external_number_e164"}),
])
def test_normalised_columns_sit_next_to_raw_ones(table, columns):
    """The join columns entity resolution needs exist."""
    assert columns <= set(load_table_specs()[table].column_names)


def test_keys_are_required_columns():
    """MERGE keys can never be NULL (a NULL key would never match and duplicate rows)."""
    for spec in load_table_specs().values():
        for key in spec.primary_key:
            assert spec.column(key).mode == "REQUIRED", f"{spec.name}.{key}"
