"""The resolution mirror: pushed rows resolved in process as the scheduled entity resolution resolves them."""
from __future__ import annotations

from datetime import timedelta

import pytest

from entity_resolution.matcher import ResolutionRequest, record_review, resolve_entities
from entity_resolution.mirror import ResolutionMirror, match_columns, mirror_columns
from observability.logger import log_context
from pipeline.runtime import Runtime
from tests.entity_resolution.test_matcher import ACCOUNTS, CONTACTS, LEADS, T0, crm_rows
from transform.email_normalizer import email_domain
from warehouse.fresh import ensure_fresh, fresh_name, fresh_rows

DS = "sales_intelligence"
MAILBOX = "alex@ourcompany.example"
# One of each way a value is decided: contact email, lead email, converted lead, Gmail canonical, account by
# domain, role address, free mail, internal address, ambiguous, manual mapping (approved, rejected), unknown.
EMAILS = ["jane@acme.com", "lead@prospect.com", "old-lead@beta.io", "j.o.h.n.doe+x@gmail.com", "someone.new@acme.com",
          "info@beta.io", "stranger@gmail.com", "bob@ourcompany.example", "twin@acme.com", "shared@partner.org",
          "mapped@elsewhere.example", "rejected@acme.com", "nobody@unknown.example"]
# Contact phone, contact mobile, lead phone, account switchboard, twins (one account), last ten digits, unknown.
NUMBERS = ["+14155550123", "+14155559999", "+14155550150", "+14155550100", "+14155550130", "+12125550199",
           "+19995550000"]


def pushed_rows():
    """Rows of every kind of matched table, as the merger holds them (no match columns)."""
    return {
        "gmail_participants": [{"mailbox": MAILBOX, "message_id": f"m{i}", "role": "to", "email": e,
                                "domain": email_domain(e), "sent_at": T0} for i, e in enumerate(EMAILS)],
        "dialpad_calls": [{"call_id": f"call-{n}", "started_at": T0, "external_number_e164": n} for n in NUMBERS],
        "crm_deals": [{"deal_key": f"d{i}", "source_crm": "pipedrive", "deal_name": f"Deal {i}", "close_date": T0.date(),
                       "contact_email": e, "contact_domain": email_domain(e), "contact_phone_e164": n}
                      for i, (e, n) in enumerate(zip(EMAILS, NUMBERS))],
        "meeting_participants": [{"source": "zoom", "meeting_id": "z1", "participant_key": n, "started_at": T0,
                                  "phone_e164": n} for n in NUMBERS[:3]],
    }


def seed_crm(warehouse):
    """The CRM side, a synced mailbox, and two reviewers' decisions."""
    warehouse.merge("sf_accounts", crm_rows(ACCOUNTS))
    warehouse.merge("sf_contacts", crm_rows(CONTACTS))
    warehouse.merge("sf_leads", crm_rows(LEADS))
    warehouse.merge("gmail_sync_state", [{"mailbox": MAILBOX, "updated_at": T0}])
    warehouse.merge("gmail_messages", [{"mailbox": MAILBOX, "message_id": "m0", "sent_at": T0, "is_deleted": False}])
    for value, candidate, decision in (("mapped@elsewhere.example", "003JANE", "approved"),
                                       ("rejected@acme.com", "001ACME", "rejected")):
        record_review(warehouse, value_type="email", value=value, candidate_type="contact" if candidate[:3] == "003"
                      else "account", candidate_id=candidate, decision=decision, reviewer="reviewer@ourcompany.example")


def resolved_for_real(warehouse, settings, rows_by_table):
    """The same rows merged into the warehouse and resolved by the scheduled entry point; read back by key."""
    for table, rows in rows_by_table.items():
        warehouse.merge(table, rows)
    resolve_entities(ResolutionRequest(sync_type="incremental"), Runtime.around(settings, warehouse))
    return {table: warehouse.read_rows(table) for table in rows_by_table}


def decisions(table, rows):
    """Per row, its match columns but matched_at (a time), and whether matched_at is set."""
    keys = {"gmail_participants": "message_id", "dialpad_calls": "call_id", "crm_deals": "deal_key",
            "meeting_participants": "participant_key"}
    columns = [c for c in match_columns(table) if not c.endswith("matched_at")]
    return {row[keys[table]]: ({c: row[c] for c in columns},
                               all(row[c] is not None for c in match_columns(table) if c.endswith("matched_at")))
            for row in rows}


@pytest.fixture
def source(warehouse):
    seed_crm(warehouse)
    return warehouse


def email_answer(mirror, email):
    """The mirror's answer for one address of a pushed message: contact, account, method."""
    pushed = {"mailbox": MAILBOX, "message_id": "p1", "role": "from", "email": email, "domain": email_domain(email),
              "sent_at": T0}
    (row,) = mirror.resolve({"gmail_participants": [pushed]})["gmail_participants"]
    return row["sf_contact_id"], row["sf_account_id"], row["match_method"]


class TestSameAnswerAsTheScheduledRun:
    def test_every_kind_of_value_is_decided_as_the_scheduled_run_decides(self, source, settings):
        """Contact, lead, domain, free-mail, internal, ambiguous, manual, phone and unknown values: equal answers."""
        mirror = ResolutionMirror(source, settings)
        answered = mirror.resolve(pushed_rows())
        real = resolved_for_real(source, settings, pushed_rows())
        for table, rows in pushed_rows().items():
            assert [{k: r[k] for k in rows[0]} for r in answered[table]] == rows  # the rows given, in order
            assert decisions(table, answered[table]) == decisions(table, real[table]), table
        linked = decisions("gmail_participants", answered["gmail_participants"])
        assert linked["m0"][0]["sf_contact_id"] == "003JANE"           # not vacuous: some link, some internal
        assert linked["m7"][0]["match_method"] == "internal"
        assert linked["m10"][0]["match_method"] == "manual"

    def test_review_candidates_stay_out_of_the_warehouse(self, source, settings):
        """Ambiguous and suggested values leave no review candidate (in the mirror or the source)."""
        mirror = ResolutionMirror(source, settings)
        mirror.resolve(pushed_rows())
        for warehouse in (mirror.warehouse, source):
            assert warehouse.query(f"SELECT COUNT(*) AS n FROM {DS}.entity_match_candidates")[0]["n"] == 0
        assert mirror.warehouse.query(f"SELECT COUNT(*) AS n FROM {DS}.gmail_participants")[0]["n"] == 0

    def test_internal_domains_from_settings_when_given(self, source, settings):
        """INTERNAL_DOMAINS decides what is ours, as in the scheduled run."""
        mirror = ResolutionMirror(source, settings.model_copy(update={"internal_domains": ["acme.com"]}))
        assert email_answer(mirror, "jane@acme.com") == (None, None, "internal")

    def test_match_columns_a_row_carries_are_decided_again(self, source, settings):
        """A pushed row arriving with stale match columns is resolved as a row never examined."""
        stale = {"call_id": "c1", "started_at": T0, "external_number_e164": "+14155550150", "sf_contact_id": "003OLD",
                 "match_method": "phone_exact", "matched_at": T0}
        (row,) = ResolutionMirror(source, settings).resolve({"dialpad_calls": [stale]})["dialpad_calls"]
        assert (row["sf_contact_id"], row["sf_lead_id"], row["call_id"]) == (None, "00QLEAD", "c1")
        assert row["matched_at"] > T0

    def test_a_table_entity_resolution_does_not_match_is_refused(self, source, settings):
        """Only matched tables are resolved."""
        with pytest.raises(ValueError, match="sf_contacts"):
            ResolutionMirror(source, settings).resolve({"sf_contacts": [{"id": "003X"}]})


class TestKeptCurrent:
    def test_an_applied_contact_is_matchable_without_a_refresh(self, source, settings):
        """A contact the merger lands is matched by its address at once; the source is not read again."""
        mirror = ResolutionMirror(source, settings)
        assert email_answer(mirror, "new.person@gamma.example") == (None, None, None)
        reads = []
        source.read_rows = lambda *a, **k: reads.append(a) or []  # type: ignore[method-assign]
        mirror.apply("sf_contacts", crm_rows([{"id": "003NEW", "account_id": "001BETA",
                                               "email": "new.person@gamma.example", "first_name": "New"}]))
        assert email_answer(mirror, "new.person@gamma.example") == ("003NEW", "001BETA", "email_exact")
        assert reads == []

    def test_rows_of_tables_the_mirror_does_not_hold_are_ignored(self, source, settings):
        """apply() takes whatever the merger lands and keeps only the CRM side; mirrors() and resolves() say which."""
        mirror = ResolutionMirror(source, settings)
        mirror.apply("dialpad_calls", [{"call_id": "c", "started_at": T0, "external_number_e164": "+14155550123"}])
        assert mirror.warehouse.read_rows("dialpad_calls") == []
        assert (mirror.mirrors("sf_leads"), mirror.mirrors("dialpad_calls")) == (True, False)
        assert (mirror.resolves("crm_deals"), mirror.resolves("sf_leads")) == (True, False)

    def test_it_refreshes_when_older_than_refresh_seconds(self, source, settings):
        """A contact written to the warehouse by a scheduled run is seen after refresh_seconds, not before."""
        stale, fresh = ResolutionMirror(source, settings), ResolutionMirror(source, settings, refresh_seconds=0)
        for mirror in (stale, fresh):
            assert email_answer(mirror, "late@gamma.example")[0] is None
        source.merge("sf_contacts", crm_rows([{"id": "003LATE", "account_id": None, "email": "late@gamma.example"}]))
        assert email_answer(stale, "late@gamma.example")[0] is None
        assert email_answer(fresh, "late@gamma.example")[0] == "003LATE"

    def test_applied_rows_outlive_a_refresh_until_the_fold(self, source, settings):
        """A pushed contact not yet folded into sf_contacts stays matchable across the next refresh."""
        mirror = ResolutionMirror(source, settings)
        mirror.refresh()
        mirror.apply("sf_contacts", crm_rows([{"id": "003NEW", "account_id": None, "email": "new@gamma.example"}]))
        mirror.refresh()
        assert email_answer(mirror, "new@gamma.example")[0] == "003NEW"

    def test_pushed_rows_not_folded_yet_are_read_from_the_fresh_table(self, source, settings):
        """A refresh reads `sf_contacts_fresh` too: a pushed contact waiting for its fold is matchable."""
        ensure_fresh(source, "sf_contacts", {})
        pushed = crm_rows([{"id": "003PUSH", "account_id": "001BETA", "email": "pushed@gamma.example"}])
        source.append(fresh_name("sf_contacts"), fresh_rows(pushed, landed_ns=1), batch_id="push")
        mirror = ResolutionMirror(source, settings)
        assert mirror.refresh()["sf_contacts_fresh"] == 1
        assert email_answer(mirror, "pushed@gamma.example") == ("003PUSH", "001BETA", "email_exact")
        assert email_answer(mirror, "jane@acme.com")[0] == "003JANE"  # the table's rows are still there

    def test_a_newer_version_applied_wins_and_an_older_one_does_not(self, source, settings):
        """apply() merges by system_modstamp: a contact's new address replaces its old one; a replay does not."""
        mirror = ResolutionMirror(source, settings)
        moved = crm_rows([{"id": "003JANE", "account_id": "001ACME", "email": "jane@newco.example"}])
        moved[0]["system_modstamp"] = T0 + timedelta(hours=1)
        mirror.apply("sf_contacts", moved)
        mirror.apply("sf_contacts", crm_rows([CONTACTS[0]]))
        assert email_answer(mirror, "jane@newco.example")[0] == "003JANE"
        assert email_answer(mirror, "jane@acme.com")[0] is None


class TestMirrorColumns:
    def test_the_mirror_holds_only_what_resolution_reads(self, source, settings):
        """CRM tables keep the columns resolution's SQL names and their merge key and version: no names, titles."""
        mirror = ResolutionMirror(source, settings)
        for table, columns in mirror_columns().items():
            assert set(mirror.warehouse.table_columns(table)) == set(columns)
        assert {"email", "is_deleted", "system_modstamp", "phone_country_code"} <= set(mirror_columns()["sf_contacts"])
        assert "first_name" not in mirror_columns()["sf_contacts"]

    def test_match_columns_are_what_05_apply_sets(self):
        """crm_deals' phone match is written to its phone_ columns."""
        assert match_columns("dialpad_calls") == ["sf_contact_id", "sf_lead_id", "sf_account_id", "match_method",
                                                  "match_confidence", "matched_at"]
        assert "phone_sf_contact_id" in match_columns("crm_deals") and "sf_contact_id" in match_columns("crm_deals")


class TestOnBigQuery:
    def test_refresh_reads_the_crm_side_without_a_query_job(self, bigquery_warehouse, bigquery_settings):
        """On BigQuery the mirror reads by tabledata.list only (free) and answers as the scheduled run would."""
        seed_crm(bigquery_warehouse)
        jobs = []
        query = bigquery_warehouse.client.query
        bigquery_warehouse.client.query = lambda *a, **k: jobs.append(a) or query(*a, **k)
        mirror = ResolutionMirror(bigquery_warehouse, bigquery_settings)
        with log_context(run_id="push-1"):
            read = mirror.refresh()
            answered = mirror.resolve(pushed_rows())
        assert jobs == []
        ledger = bigquery_warehouse.ledger.take("push-1")
        assert set(ledger["jobs"]) == {f"list {t}" for t in [*mirror_columns(), "gmail_sync_state"]}
        assert read["sf_contacts"] == len(CONTACTS)
        bigquery_warehouse.client.query = query
        real = resolved_for_real(bigquery_warehouse, bigquery_settings, pushed_rows())
        for table in pushed_rows():
            assert decisions(table, answered[table]) == decisions(table, real[table]), table
