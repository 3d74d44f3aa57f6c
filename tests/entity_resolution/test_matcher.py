"""Entity resolution on DuckDB, running the very SQL text BigQuery runs."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from entity_resolution.matcher import ResolutionRequest, record_review, resolve_entities
from tests.helpers import merged_by_a_run
from transform.email_normalizer import email_domain

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
DS = "sales_intelligence"

ACCOUNTS = [
    {"id": "001ACME", "name": "Acme", "domain": "acme.com", "phone_e164": "+14155550100"},
    {"id": "001BETA", "name": "Beta", "domain": "beta.io", "phone_e164": None},
    {"id": "001GMAIL", "name": "Wrongly gmail", "domain": "gmail.com", "phone_e164": None},
]
CONTACTS = [
    {"id": "003JANE", "account_id": "001ACME", "email": "jane@acme.com", "phone_e164": "+14155550123",
     "mobile_phone_e164": "+14155559999"},
    {"id": "003JOHN", "account_id": "001ACME", "email": "john.doe@gmail.com", "phone_e164": "+14155550124"},
    {"id": "003TWIN1", "account_id": "001ACME", "email": "twin@acme.com", "phone_e164": "+14155550130"},
    {"id": "003TWIN2", "account_id": "001ACME", "email": "twin@acme.com", "phone_e164": "+14155550130"},
    {"id": "003SPLIT1", "account_id": "001ACME", "email": "shared@partner.org", "phone_e164": "+14155550140"},
    {"id": "003SPLIT2", "account_id": "001BETA", "email": "shared@partner.org", "phone_e164": "+14155550140"},
    {"id": "003INFO", "account_id": "001BETA", "email": "info@beta.io", "phone_e164": None},
    {"id": "003RAW", "account_id": "001BETA", "email": None, "phone_e164": None, "phone": "(212) 555-0199 old",
     "phone_country_code": "+1"},
    {"id": "003CONV", "account_id": "001BETA", "email": "converted@beta.io", "phone_e164": None},
    {"id": "003GONE", "account_id": "001BETA", "email": "deleted@beta.io", "phone_e164": None, "is_deleted": True},
]
LEADS = [
    {"id": "00QLEAD", "email": "lead@prospect.com", "phone_e164": "+14155550150"},
    {"id": "00QCONV", "email": "old-lead@beta.io", "is_converted": True, "converted_contact_id": "003CONV",
     "converted_account_id": "001BETA"},
    {"id": "00QJANE", "email": "jane@acme.com", "phone_e164": None},
]


def crm_rows(rows, extra=None):
    """CRM rows as the Salesforce sync writes them (email domain beside the email)."""
    return [{"is_deleted": False, "system_modstamp": T0, **r, **(extra or {}),
             **({"domain": email_domain(r["email"])} if "email" in r else {})} for r in rows]


@pytest.fixture
def crm(warehouse):
    warehouse.merge("sf_accounts", crm_rows(ACCOUNTS))
    warehouse.merge("sf_contacts", crm_rows(CONTACTS))
    warehouse.merge("sf_leads", crm_rows(LEADS))
    return warehouse


def mail_rows(*emails, message="m1", sent_at=T0):
    return [{"mailbox": "alex@ourcompany.example", "message_id": message, "role": "to", "email": e,
             "domain": email_domain(e), "sent_at": sent_at} for e in emails]


def add_mail(warehouse, *emails, message="m1"):
    """Mail written before any resolution run (a first run reads every partition)."""
    warehouse.merge("gmail_participants", mail_rows(*emails, message=message))


def add_calls(warehouse, *numbers):
    warehouse.merge("dialpad_calls", [{"call_id": f"call-{n}", "started_at": T0, "external_number_e164": n}
                                      for n in numbers])


def resolve(runtime, **request):
    return resolve_entities(ResolutionRequest(**request), runtime)


def participant(warehouse, email):
    (row,) = warehouse.query(
        f"SELECT sf_contact_id, sf_lead_id, sf_account_id, match_method, match_confidence, matched_at "
        f"FROM {DS}.gmail_participants WHERE email = @email", {"email": email})
    return row


def call(warehouse, number):
    (row,) = warehouse.query(
        f"SELECT sf_contact_id, sf_lead_id, sf_account_id, match_method FROM {DS}.dialpad_calls "
        f"WHERE external_number_e164 = @n", {"n": number})
    return row


def candidates(warehouse, value):
    return warehouse.query(f"SELECT candidate_type, candidate_id, reason, match_method, status "
                           f"FROM {DS}.entity_match_candidates WHERE value = @v ORDER BY candidate_id", {"v": value})


class TestEmailMethods:
    @pytest.mark.parametrize("email, contact, lead, account, method", [
        ("jane@acme.com", "003JANE", None, "001ACME", "email_exact"),        # contact wins over the lead with it
        ("lead@prospect.com", None, "00QLEAD", None, "email_exact"),         # a lead when no contact has it
        ("old-lead@beta.io", "003CONV", None, "001BETA", "email_exact"),     # converted lead -> its contact
        ("johndoe+news@googlemail.com", "003JOHN", None, "001ACME", "gmail_canonical"),
        ("j.o.h.n.doe@gmail.com", "003JOHN", None, "001ACME", "gmail_canonical"),
        ("someone.new@acme.com", None, None, "001ACME", "email_domain"),     # account only
        ("stranger@gmail.com", None, None, None, None),                      # free mail: never by domain
        ("info@beta.io", None, None, "001BETA", "role_address"),             # role: account at most
        ("sales@acme.com", None, None, "001ACME", "email_domain"),
        ("deleted@beta.io", None, None, "001BETA", "email_domain"),          # deleted contacts never match
        ("nobody@unknown.example", None, None, None, None),
    ])
    def test_email_is_matched_by_the_strongest_method(self, crm, runtime, email, contact, lead, account, method):
        """Each email method, in precedence order, with the right ids and method recorded."""
        add_mail(crm, email)
        resolve(runtime)
        row = participant(crm, email)
        assert (row["sf_contact_id"], row["sf_lead_id"], row["sf_account_id"], row["match_method"]) == (
            contact, lead, account, method)
        assert row["matched_at"] is not None
        if method:
            assert row["match_confidence"] >= 0.8

    def test_dots_and_tags_matter_outside_gmail(self, crm, runtime):
        """j.ane@acme.com and jane+x@acme.com are other people at Acme: account only."""
        add_mail(crm, "j.ane@acme.com", "jane+x@acme.com")
        resolve(runtime)
        for email in ("j.ane@acme.com", "jane+x@acme.com"):
            assert participant(crm, email)["sf_contact_id"] is None
            assert participant(crm, email)["match_method"] == "email_domain"

    def test_free_mail_override_list(self, crm, runtime):
        """A domain listed in settings as free mail is never matched to an account by domain."""
        runtime.settings = runtime.settings.model_copy(update={"free_mail_domains_extra": ["acme.com"]})
        add_mail(crm, "someone.new@acme.com")
        resolve(runtime)
        assert participant(crm, "someone.new@acme.com")["sf_account_id"] is None


class TestPhoneMethods:
    @pytest.mark.parametrize("number, contact, lead, account, method", [
        ("+14155550123", "003JANE", None, "001ACME", "phone_exact"),
        ("+14155559999", "003JANE", None, "001ACME", "phone_exact"),      # mobile
        ("+14155550150", None, "00QLEAD", None, "phone_exact"),           # lead
        ("+14155550100", None, None, "001ACME", "phone_exact"),           # account switchboard
        ("+12125550199", None, None, None, None),                         # last ten digits: suggestion only
        ("+19995550000", None, None, None, None),
    ])
    def test_phone_is_matched_by_the_strongest_method(self, crm, runtime, number, contact, lead, account, method):
        """Exact E.164 to contact, then lead, then account phone; last-ten-digits never auto-links."""
        add_calls(crm, number)
        resolve(runtime)
        assert tuple(call(crm, number).values()) == (contact, lead, account, method)

    def test_last_ten_digits_becomes_a_suggestion(self, crm, runtime):
        """A number matching only a raw CRM phone's last ten digits is suggested for review."""
        add_calls(crm, "+12125550199")
        summary = resolve(runtime)
        assert summary["suggested"] == 1
        assert candidates(crm, "+12125550199") == [{"candidate_type": "contact", "candidate_id": "003RAW",
                                                    "reason": "suggestion", "match_method": "phone_last10",
                                                    "status": "open"}]


def meeting_people(*people, meeting="zoom-1", started_at=T0):
    """Meeting participants as a meeting source writes them: an email, or (a dial-in) a number."""
    return [{"source": "zoom", "meeting_id": meeting, "participant_key": email or phone, "started_at": started_at,
             "email": email, "domain": email_domain(email), "phone_e164": phone} for email, phone in people]


def add_meeting_people(warehouse, *people):
    warehouse.merge("meeting_participants", meeting_people(*people))


def meeting_person(warehouse, key):
    (row,) = warehouse.query(
        f"SELECT sf_contact_id, sf_lead_id, sf_account_id, match_method, match_confidence IS NOT NULL AS confident "
        f"FROM {DS}.meeting_participants WHERE participant_key = @key", {"key": key})
    return tuple(row.values())


class TestMeetingParticipants:
    def test_addresses_and_dial_in_numbers_are_matched_like_mail_and_calls(self, crm, runtime):
        """A participant's email and a dial-in's number are matched by the same methods, method and confidence set."""
        add_meeting_people(crm, ("jane@acme.com", None), ("someone.new@beta.io", None), (None, "+14155550150"),
                           (None, "+19995550000"))
        summary = resolve(runtime)
        assert meeting_person(crm, "jane@acme.com") == ("003JANE", None, "001ACME", "email_exact", True)
        assert meeting_person(crm, "someone.new@beta.io") == (None, None, "001BETA", "email_domain", True)
        assert meeting_person(crm, "+14155550150") == (None, "00QLEAD", None, "phone_exact", True)
        assert meeting_person(crm, "+19995550000")[3] is None
        assert summary["rows_updated"]["meeting_participants"] == 4

    def test_new_meeting_rows_are_found_incrementally_and_a_rerun_changes_nothing(self, crm, runtime):
        """Participants written after a run are matched by the next incremental run; a third run updates nothing."""
        add_mail(crm, "jane@acme.com")
        resolve(runtime)
        merged_by_a_run(runtime, "meeting_participants", meeting_people(("john.doe@gmail.com", None), meeting="zoom-2",
                                                                        started_at=T0 + timedelta(days=3)))
        resolve(runtime)
        assert meeting_person(crm, "john.doe@gmail.com")[0] == "003JOHN"
        assert resolve(runtime)["rows_updated"]["meeting_participants"] == 0


class TestAmbiguity:
    def test_same_account_twins_link_the_account_only(self, crm, runtime):
        """Two contacts with one address: no contact linked, both reviewed, their shared account linked."""
        add_mail(crm, "twin@acme.com")
        add_calls(crm, "+14155550130")
        summary = resolve(runtime)
        row = participant(crm, "twin@acme.com")
        assert (row["sf_contact_id"], row["sf_account_id"]) == (None, "001ACME")
        assert [c["candidate_id"] for c in candidates(crm, "twin@acme.com")] == ["003TWIN1", "003TWIN2"]
        assert {c["reason"] for c in candidates(crm, "twin@acme.com")} == {"ambiguous"}
        assert call(crm, "+14155550130")["sf_contact_id"] is None
        assert summary["ambiguous"] == 2

    def test_candidates_at_different_accounts_link_nothing(self, crm, runtime):
        """An address shared across accounts links nothing at all; both candidates go to review."""
        add_mail(crm, "shared@partner.org")
        resolve(runtime)
        row = participant(crm, "shared@partner.org")
        assert (row["sf_contact_id"], row["sf_account_id"], row["match_method"]) == (None, None, None)
        assert len(candidates(crm, "shared@partner.org")) == 2


class TestReviewDecisions:
    def test_manual_mapping_overrides_every_method(self, crm, runtime):
        """An approved manual mapping wins over an exact match."""
        record_review(crm, value_type="email", value="jane@acme.com", candidate_type="lead", candidate_id="00QJANE",
                      decision="approved", reviewer="analyst@ourcompany.example")
        add_mail(crm, "jane@acme.com")
        resolve(runtime)
        row = participant(crm, "jane@acme.com")
        assert (row["sf_contact_id"], row["sf_lead_id"], row["match_method"]) == (None, "00QJANE", "manual")

    def test_approved_suggestion_survives_a_full_rerun(self, crm, runtime):
        """Approving the last-ten-digits suggestion links it, and a full re-run keeps the link."""
        add_calls(crm, "+12125550199")
        resolve(runtime)
        record_review(crm, value_type="phone", value="+12125550199", candidate_type="contact",
                      candidate_id="003RAW", decision="approved", reviewer="analyst")
        assert candidates(crm, "+12125550199")[0]["status"] == "approved"
        resolve(runtime)
        assert call(crm, "+12125550199")["sf_contact_id"] == "003RAW"
        resolve(runtime, sync_type="full")
        assert call(crm, "+12125550199") == {"sf_contact_id": "003RAW", "sf_lead_id": None,
                                             "sf_account_id": None, "match_method": "manual"}

    def test_rejected_candidate_is_never_linked(self, crm, runtime):
        """Rejecting one twin leaves the other as a unique match."""
        record_review(crm, value_type="email", value="twin@acme.com", candidate_type="contact",
                      candidate_id="003TWIN2", decision="rejected", reviewer="analyst")
        add_mail(crm, "twin@acme.com")
        resolve(runtime, sync_type="full")
        assert participant(crm, "twin@acme.com")["sf_contact_id"] == "003TWIN1"


class TestRuns:
    def test_second_run_changes_nothing(self, crm, runtime):
        """A second incremental and a full re-run leave every row as it was, matched_at included."""
        add_mail(crm, "jane@acme.com", "someone.new@acme.com", "twin@acme.com", "nobody@unknown.example")
        add_calls(crm, "+14155550123", "+19995550000")
        resolve(runtime)
        before = crm.query(f"SELECT * FROM {DS}.gmail_participants ORDER BY email")
        calls_before = crm.query(f"SELECT * FROM {DS}.dialpad_calls ORDER BY call_id")
        assert resolve(runtime)["values_examined"] == 0
        full = resolve(runtime, sync_type="full")
        assert full["rows_updated"] == {"gmail_participants": 0, "hubspot_sequence_enrollments": 0, "dialpad_calls": 0,
                                        "meeting_participants": 0, "crm_deals": 0}
        assert crm.query(f"SELECT * FROM {DS}.gmail_participants ORDER BY email") == before
        assert crm.query(f"SELECT * FROM {DS}.dialpad_calls ORDER BY call_id") == calls_before

    def test_incremental_touches_only_new_rows(self, crm, runtime):
        """After new mail only the new rows are resolved; older rows keep their matched_at."""
        add_mail(crm, "jane@acme.com", "nobody@unknown.example", message="old")
        resolve(runtime)
        old = {r["email"]: r["matched_at"] for r in crm.query(
            f"SELECT email, matched_at FROM {DS}.gmail_participants")}
        merged_by_a_run(runtime, "gmail_participants", mail_rows("jane@acme.com", "lead@prospect.com", message="new"))
        summary = resolve(runtime)
        assert summary["values_examined"] == 2 and summary["rows_updated"]["gmail_participants"] == 2
        rows = crm.query(f"SELECT message_id, email, matched_at, sf_contact_id, sf_lead_id FROM {DS}.gmail_participants")
        for row in rows:
            if row["message_id"] == "old":
                assert row["matched_at"] == old[row["email"]]
        assert {(r["message_id"], r["email"]): r["sf_contact_id"] or r["sf_lead_id"] for r in rows if r["message_id"] == "new"} == {
            ("new", "jane@acme.com"): "003JANE", ("new", "lead@prospect.com"): "00QLEAD"}

    def test_crm_change_re_resolves_existing_rows(self, crm, runtime):
        """A contact added after the last run links the rows that were unmatched before."""
        add_mail(crm, "nobody@unknown.example")
        resolve(runtime)
        assert participant(crm, "nobody@unknown.example")["sf_contact_id"] is None
        crm.merge("sf_contacts", crm_rows([{"id": "003NEW", "account_id": "001BETA", "email": "nobody@unknown.example"}],
                                          {"ingested_at": datetime.now(timezone.utc) + timedelta(seconds=1)}))
        resolve(runtime)
        assert participant(crm, "nobody@unknown.example")["sf_contact_id"] == "003NEW"

    def test_run_is_recorded_in_etl_runs(self, crm, runtime):
        """The summary is in etl_runs, by method."""
        add_mail(crm, "jane@acme.com", "someone.new@acme.com")
        summary = resolve(runtime)
        (run,) = crm.query(f"SELECT source, status, rows_fetched, details FROM {DS}.etl_runs")
        assert (run["source"], run["status"], run["rows_fetched"]) == ("entity_resolution", "success", 2)
        assert summary["linked_by_method"] == {"email_exact": 1, "email_domain": 1}

    def test_batch_size_limits_a_run_and_the_next_continues(self, crm, runtime):
        """With batch_size the run stops partial; the next run resolves the rest and rewrites nothing done."""
        add_mail(crm, "jane@acme.com", "lead@prospect.com", "someone.new@acme.com")
        first = resolve(runtime, batch_size=2)
        assert first["status"] == "partial" and first["rows_updated"]["gmail_participants"] == 2
        second = resolve(runtime)
        assert second["status"] == "success" and second["rows_updated"]["gmail_participants"] == 1
        assert crm.query(f"SELECT COUNT(*) AS n FROM {DS}.gmail_participants WHERE matched_at IS NULL") == [{"n": 0}]

    def test_only_the_requested_entity_type(self, crm, runtime):
        """entity_type=phone leaves emails alone."""
        add_mail(crm, "jane@acme.com")
        add_calls(crm, "+14155550123")
        resolve(runtime, entity_type="phone")
        assert participant(crm, "jane@acme.com")["matched_at"] is None
        assert call(crm, "+14155550123")["sf_contact_id"] == "003JANE"


class TestHttpEntry:
    def test_entry_point_answers_the_summary(self, crm, runtime, function_server):
        """The functions-framework entry point runs a pass and answers its summary."""
        add_mail(crm, "jane@acme.com")
        response = function_server("entity_resolution").post({"sync_type": "full"})
        assert response.status_code == 200
        assert response.json()["linked_by_method"] == {"email_exact": 1}
        assert response.json()["sync_type"] == "full"

    def test_mode_is_still_read_as_sync_type(self, crm, runtime, function_server):
        """A body from a scheduler job made before sync_type (its name was mode) still runs, as that sync type."""
        response = function_server("entity_resolution").post({"mode": "full"})
        assert response.status_code == 200 and response.json()["sync_type"] == "full"

    @pytest.mark.parametrize("body", [{"sync_type": "sometimes"}, {"entity_type": "fax"}, {"batch_size": 0},
                                      {"mode": "full", "sync_type": "full"}, {"objects": "all"}])
    def test_bad_body_is_400(self, runtime, function_server, body):
        """Invalid bodies are refused before anything runs."""
        assert function_server("entity_resolution").post(body).status_code == 400


class TestAnalystViews:
    def test_views_show_timeline_unmatched_and_quality(self, crm, runtime):
        """v_contact_activity, v_unmatched_addresses and v_match_quality answer from resolved rows."""
        add_mail(crm, "jane@acme.com", "nobody@unknown.example", "nobody@unknown.example".replace("nobody", "other"))
        add_mail(crm, "nobody@unknown.example", message="m2")
        add_calls(crm, "+14155550123", "+19995550000")
        resolve(runtime)
        timeline = crm.query(f"SELECT activity_type, sf_contact_id FROM {DS}.v_contact_activity ORDER BY activity_type")
        assert timeline == [{"activity_type": "call", "sf_contact_id": "003JANE"},
                            {"activity_type": "email", "sf_contact_id": "003JANE"}]
        unmatched = crm.query(f"SELECT value, occurrences FROM {DS}.v_unmatched_addresses ORDER BY occurrences DESC, value")
        assert unmatched == [{"value": "nobody@unknown.example", "occurrences": 2},
                             {"value": "+19995550000", "occurrences": 1},
                             {"value": "other@unknown.example", "occurrences": 1}]
        quality = crm.query(f"SELECT source, match_method, row_count, share_of_day FROM {DS}.v_match_quality "
                            f"ORDER BY source, match_method")
        assert quality == [
            {"source": "dialpad", "match_method": "phone_exact", "row_count": 1, "share_of_day": 0.5},
            {"source": "dialpad", "match_method": "unmatched", "row_count": 1, "share_of_day": 0.5},
            {"source": "gmail", "match_method": "email_exact", "row_count": 1, "share_of_day": 0.25},
            {"source": "gmail", "match_method": "unmatched", "row_count": 3, "share_of_day": 0.75}]


class TestInternalAddresses:
    def test_without_mailboxes_set_the_synced_mailboxes_are_ours_in_every_mode(self, crm, runtime):
        """With neither INTERNAL_DOMAINS nor MAILBOXES set where resolution runs, the synced mailboxes' domains
        are ours: a full re-resolve keeps our own people internal, as the incremental run did."""
        runtime.settings = runtime.settings.model_copy(update={"mailboxes": [], "internal_domains": []})
        crm.merge("gmail_messages", [{"mailbox": "alex@ourcompany.example", "message_id": "m1", "sent_at": T0,
                                      "is_deleted": False}])
        add_mail(crm, "sam@ourcompany.example", "jane@acme.com")
        for mode in ("incremental", "full"):
            resolve(runtime, sync_type=mode)
            assert participant(crm, "sam@ourcompany.example")["match_method"] == "internal", mode

    def test_our_own_people_are_internal_not_unmatched(self, crm, runtime):
        """Addresses at the mailboxes' domains are marked internal, never matched, never lead candidates."""
        runtime.settings = runtime.settings.model_copy(update={"mailboxes": ["alex@ourcompany.example"]})
        add_mail(crm, "sam@ourcompany.example", "jane@acme.com")
        summary = resolve(runtime)
        row = participant(crm, "sam@ourcompany.example")
        assert (row["match_method"], row["sf_contact_id"], row["sf_account_id"]) == ("internal", None, None)
        assert summary["internal"] == 1 and summary["linked_by_method"] == {"email_exact": 1}
        unmatched = crm.query(f"SELECT value FROM {DS}.v_unmatched_addresses")
        assert {"value": "sam@ourcompany.example"} not in unmatched


def salesforce_rows(warehouse, object_name, records):
    """CRM records written through the Salesforce transform (phones read in each record's country)."""
    from cloud_functions.salesforce_sync.records import OBJECTS

    stamp = "2025-01-01T00:00:00.000+0000"
    rows, rejected = OBJECTS[object_name].transform(
        [{"IsDeleted": False, "SystemModstamp": stamp, **r} for r in records], "US")
    assert rejected == []
    warehouse.merge(OBJECTS[object_name].table, rows)


class TestInternationalNumbers:
    def test_national_forms_link_in_the_records_own_country(self, warehouse, runtime):
        """A call from +49 40 35497232 finds the German contact whose number is written "040 35497232"."""
        salesforce_rows(warehouse, "Account", [{"Id": "001DE", "BillingCountry": "Deutschland"},
                                               {"Id": "001AU", "BillingCountry": "Australia"}])
        salesforce_rows(warehouse, "Contact", [
            {"Id": "003HH", "AccountId": "001DE", "MailingCountry": "Germany", "Phone": "040 35497232"},
            {"Id": "003MEL", "AccountId": "001AU", "Account": {"BillingCountry": "AU"}, "Phone": "(03) 1347 6290"},
            {"Id": "003MAN", "AccountId": "001DE", "MailingCountry": "UK", "MobilePhone": "0161.469.8254"}])
        add_calls(warehouse, "+494035497232", "+61313476290", "+441614698254")
        resolve(runtime)
        assert call(warehouse, "+494035497232")["sf_contact_id"] == "003HH"
        assert call(warehouse, "+61313476290")["sf_contact_id"] == "003MEL"  # the account's country
        assert call(warehouse, "+441614698254")["sf_contact_id"] == "003MAN"

    def test_a_shared_line_written_differently_links_the_account(self, warehouse, runtime):
        """One office line on three contacts, written three ways: the account is linked, no contact."""
        salesforce_rows(warehouse, "Contact", [
            {"Id": "003A", "AccountId": "001DE", "MailingCountry": "DE", "Phone": "040 35497232"},
            {"Id": "003B", "AccountId": "001DE", "MailingCountry": "Germany", "Phone": "+49 (0)40 3549 7232"},
            {"Id": "003C", "AccountId": "001DE", "MailingCountry": "deu", "Phone": "0049 40 35497232"}])
        add_calls(warehouse, "+494035497232")
        resolve(runtime)
        assert tuple(call(warehouse, "+494035497232").values()) == (None, None, "001DE", "phone_exact")

    def test_trailing_digits_are_no_suggestion_without_a_country(self, crm, runtime):
        """A raw number on a record of unknown country gives no last-ten-digits suggestion (no "+0" code)."""
        crm.execute(f"UPDATE {DS}.sf_contacts SET phone_country_code = NULL WHERE id = '003RAW'")
        add_calls(crm, "+12125550199")
        assert resolve(runtime)["suggested"] == 0
        assert candidates(crm, "+12125550199") == []


class TestDeletedAndSubdomains:
    def test_a_lead_converted_into_a_deleted_contact_links_nothing(self, crm, runtime):
        """The converted lead's deleted contact is never linked; the address falls to the account domain."""
        crm.merge("sf_leads", crm_rows([{"id": "00QGONE", "email": "gone@beta.io", "is_converted": True,
                                         "converted_contact_id": "003GONE", "converted_account_id": "001BETA"}]))
        add_mail(crm, "gone@beta.io")
        resolve(runtime)
        row = participant(crm, "gone@beta.io")
        assert (row["sf_contact_id"], row["sf_lead_id"], row["sf_account_id"], row["match_method"]) == (
            None, None, "001BETA", "email_domain")

    def test_a_subdomain_of_an_account_domain_is_a_suggestion(self, crm, runtime):
        """eu.acme.com is suggested for Acme (acme.com), never linked."""
        add_mail(crm, "jo@eu.acme.com", "ops@mail.eu.beta.io")
        summary = resolve(runtime)
        assert summary["suggested"] == 2
        assert participant(crm, "jo@eu.acme.com")["sf_account_id"] is None
        assert candidates(crm, "jo@eu.acme.com") == [{"candidate_type": "account", "candidate_id": "001ACME",
                                                      "reason": "suggestion", "match_method": "email_subdomain",
                                                      "status": "open"}]
        assert candidates(crm, "ops@mail.eu.beta.io")[0]["candidate_id"] == "001BETA"
