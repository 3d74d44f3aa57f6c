"""01_scope reads, for rows never examined, only the partitions written since the last successful run (as the
writing runs recorded them in etl_runs), and finds the rows of values whose CRM side changed wherever they are."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from entity_resolution.matcher import ResolutionRequest, _written_predicate, resolve_entities
from pipeline.etl_runs import LeaseTerms, RunRecord, RunTracker, close_abandoned_runs
from pipeline.runtime import Runtime
from tests.entity_resolution.test_matcher import ACCOUNTS, CONTACTS, T0, crm_rows, mail_rows, participant
from tests.helpers import merged_by_a_run

NEW_DAY = T0 + timedelta(days=40, hours=15)  # 2025-02-10
NEW_DAY_SPAN = ("gmail_participants.sent_at >= TIMESTAMP '2025-02-10 00:00:00+00:00' "
                "AND gmail_participants.sent_at < TIMESTAMP '2025-02-11 00:00:00+00:00'")


def recording(warehouse) -> list[str]:
    """The statements the warehouse executes from now on."""
    statements: list[str] = []
    execute = warehouse.execute
    warehouse.execute = lambda sql, params=None: statements.append(sql) or execute(sql, params)
    return statements


def scope_statement(statements: list[str]) -> str:
    (scope,) = [s for s in statements if re.search(r"CREATE OR REPLACE TABLE \S*_er_scope_", s)]
    return scope


def ended_an_hour_ago(warehouse, run_id: str) -> None:
    """Moves a writing run's end an hour back: out of the margin for clock skew before the next resolution."""
    warehouse.execute(f"UPDATE `{warehouse.dataset}.etl_runs` SET updated_at = TIMESTAMP_SUB(updated_at, INTERVAL 1 HOUR) "
                      f"WHERE run_id = @id", {"id": run_id})


def resolve(runtime, **request):
    return resolve_entities(ResolutionRequest(**request), runtime)


@pytest.fixture
def crm_runtime(request):
    which = request.param
    warehouse = request.getfixturevalue("warehouse" if which == "duckdb" else "bigquery_warehouse")
    settings = request.getfixturevalue("settings" if which == "duckdb" else "bigquery_settings")
    warehouse.merge("sf_accounts", crm_rows(ACCOUNTS))
    warehouse.merge("sf_contacts", crm_rows(CONTACTS))
    return Runtime.around(settings, warehouse)


@pytest.mark.emulator
@pytest.mark.parametrize("crm_runtime", ["duckdb", "bigquery"], indirect=True)
def test_a_run_after_one_new_day_of_mail_reads_only_that_days_partition(crm_runtime):
    """Mail written by a run on one new day after the last resolution: the scope bounds gmail_participants to that
    day for new rows and reads no partition of calls or enrollments (nothing written); the new rows are resolved
    and the old one keeps its match time."""
    runtime, wh = crm_runtime, crm_runtime.warehouse
    ended_an_hour_ago(wh, merged_by_a_run(runtime, "gmail_participants", mail_rows("jane@acme.com", message="old")))
    first = resolve(runtime)
    assert first["rows_updated"]["gmail_participants"] == 1
    (old,) = wh.query(f"SELECT matched_at FROM `{wh.dataset}.gmail_participants`")
    merged_by_a_run(runtime, "gmail_participants",
                    mail_rows("jane@acme.com", "lead@prospect.com", message="new", sent_at=NEW_DAY))
    statements = recording(wh)
    summary = resolve(runtime)
    scope = scope_statement(statements)
    assert NEW_DAY_SPAN in scope and scope.count("gmail_participants.sent_at") == 2  # that one day, nothing else
    assert "hubspot_sequence_enrollments.matched_at IS NULL AND FALSE" in scope
    assert "dialpad_calls.matched_at IS NULL AND FALSE" in scope
    assert summary["values_examined"] == 2 and summary["rows_updated"]["gmail_participants"] == 2
    rows = wh.query(f"SELECT message_id, matched_at, sf_contact_id FROM `{wh.dataset}.gmail_participants` "
                    f"WHERE email = 'jane@acme.com' ORDER BY message_id")
    assert [(r["message_id"], r["sf_contact_id"]) for r in rows] == [("new", "003JANE"), ("old", "003JANE")]
    assert rows[1]["matched_at"] == old["matched_at"]
    (run,) = wh.query(f"SELECT details FROM `{wh.dataset}.etl_runs` WHERE run_id = @id", {"id": summary["run_id"]})
    assert run["details"]["scope_partitions"]["gmail_participants"] == f"({NEW_DAY_SPAN})"


@pytest.mark.parametrize("crm_runtime", ["duckdb"], indirect=True)
def test_an_old_unmatched_value_is_re_resolved_when_its_crm_side_changes(crm_runtime):
    """An address unmatched in old mail is linked once a contact with it arrives, though only the new day's
    partition is read for new rows."""
    runtime, wh = crm_runtime, crm_runtime.warehouse
    ended_an_hour_ago(wh, merged_by_a_run(runtime, "gmail_participants",
                                          mail_rows("nobody@unknown.example", message="old")))
    resolve(runtime)
    assert participant(wh, "nobody@unknown.example")["sf_contact_id"] is None
    merged_by_a_run(runtime, "gmail_participants", mail_rows("someone@beta.io", message="new", sent_at=NEW_DAY))
    wh.merge("sf_contacts", crm_rows([{"id": "003NEW", "account_id": "001BETA", "email": "nobody@unknown.example"}],
                                     {"ingested_at": datetime.now(timezone.utc) + timedelta(seconds=1)}))
    statements = recording(wh)
    summary = resolve(runtime)
    scope = scope_statement(statements)
    assert NEW_DAY_SPAN in scope and scope.count("gmail_participants.sent_at") == 2  # the old day is not read for new rows
    assert participant(wh, "nobody@unknown.example")["sf_contact_id"] == "003NEW"
    assert participant(wh, "someone@beta.io")["sf_account_id"] == "001BETA"
    assert summary["rows_updated"]["gmail_participants"] == 2


@pytest.mark.parametrize("crm_runtime", ["duckdb"], indirect=True)
def test_after_an_abandoned_run_every_partition_is_read(crm_runtime):
    """A run killed after merging (it recorded nothing) and closed as abandoned since the last resolution: the
    next resolution reads every partition, so the rows it left are resolved."""
    runtime, wh = crm_runtime, crm_runtime.warehouse
    resolve(runtime)
    killed = RunRecord(run_id="gmail-killed", source="gmail", stream="alex@ourcompany.example",
                       sync_type="full", trigger="test", started_at=datetime.now(timezone.utc) - timedelta(hours=2))
    RunTracker(wh).open(killed)
    wh.merge("gmail_participants", mail_rows("jane@acme.com", message="left-behind", sent_at=T0 - timedelta(days=300)))
    assert close_abandoned_runs(wh, "gmail", LeaseTerms(3600, 3600)) == 1
    statements = recording(wh)
    resolve(runtime)
    assert "gmail_participants.matched_at IS NULL AND TRUE" in scope_statement(statements)
    assert participant(wh, "jane@acme.com")["sf_contact_id"] == "003JANE"


@pytest.mark.parametrize("crm_runtime", ["duckdb"], indirect=True)
def test_a_phone_only_run_leaves_the_mail_written_before_it_to_the_next_email_run(crm_runtime):
    """Mail written, then a successful phone-only resolution: the next run of emails still reads that mail's day."""
    runtime, wh = crm_runtime, crm_runtime.warehouse
    resolve(runtime)
    merged_by_a_run(runtime, "gmail_participants", mail_rows("jane@acme.com", message="new", sent_at=NEW_DAY))
    assert resolve(runtime, entity_type="phone")["status"] == "success"
    statements = recording(wh)
    resolve(runtime)
    assert NEW_DAY_SPAN in scope_statement(statements)
    assert participant(wh, "jane@acme.com")["sf_contact_id"] == "003JANE"


class TestWrittenPredicate:
    SINCE = datetime(2027, 6, 15, 12, tzinfo=timezone.utc)

    @staticmethod
    def run(*spans, status="success", minutes_after=30, has_null=False, table="dialpad_calls"):
        return {"status": status, "updated_at": TestWrittenPredicate.SINCE + timedelta(minutes=minutes_after),
                "details": {"partitions_written": {table: {"spans": [list(s) for s in spans], "has_null": has_null}}}}

    def test_spans_of_several_runs_are_joined_and_earlier_runs_ignored(self):
        """Two runs' days become one span where they touch; a run that ended long before the last resolution adds nothing."""
        runs = [self.run(("2027-06-14T00:00:00+00:00", "2027-06-15T00:00:00+00:00")),
                self.run(("2027-06-15T00:00:00+00:00", "2027-06-16T00:00:00+00:00")),
                self.run(("2020-01-01T00:00:00+00:00", "2020-01-02T00:00:00+00:00"), minutes_after=-60)]
        assert _written_predicate("dialpad_calls", "c", self.SINCE, runs) == (
            "(c.started_at >= TIMESTAMP '2027-06-14 00:00:00+00:00' AND c.started_at < TIMESTAMP '2027-06-16 00:00:00+00:00')")

    def test_nothing_written_reads_nothing_and_never_resolved_reads_everything(self):
        """No run wrote the table: FALSE; no successful resolution yet: TRUE."""
        runs = [self.run(("2027-06-14T00:00:00+00:00", "2027-06-15T00:00:00+00:00"), table="gmail_participants")]
        assert _written_predicate("dialpad_calls", "c", self.SINCE, runs) == "FALSE"
        assert _written_predicate("dialpad_calls", "c", None, runs) == "TRUE"

    def test_null_partition_unknown_values_and_abandoned_runs(self):
        """A NULL partition value adds IS NULL; a table whose values were not times, or an abandoned run: TRUE."""
        with_null = [self.run(("2027-06-14T00:00:00+00:00", "2027-06-15T00:00:00+00:00"), has_null=True)]
        assert "OR c.started_at IS NULL" in _written_predicate("dialpad_calls", "c", self.SINCE, with_null)
        unknown = [{"status": "failed", "updated_at": self.SINCE, "details": {"partitions_written": {"dialpad_calls": None}}}]
        assert _written_predicate("dialpad_calls", "c", self.SINCE, unknown) == "TRUE"
        abandoned = [{"status": "abandoned", "updated_at": self.SINCE, "details": None}]
        assert _written_predicate("dialpad_calls", "c", self.SINCE, abandoned) == "TRUE"

    def test_queue_mode_counts_runs_merged_late(self):
        """In queue mode a run's end reaches etl_runs when the merger merges it: a run that ended 20 minutes before the
        last resolution (its row merged after it started) still counts; inline it does not."""
        from config.settings import Settings
        from entity_resolution.matcher import scope_slack

        runs = [self.run(("2027-06-14T00:00:00+00:00", "2027-06-15T00:00:00+00:00"), minutes_after=-20)]
        inline = scope_slack(Settings(_env_file=None))
        queue = scope_slack(Settings(_env_file=None, dispatch="queue"))
        assert _written_predicate("dialpad_calls", "c", self.SINCE, runs, inline) == "FALSE"
        assert _written_predicate("dialpad_calls", "c", self.SINCE, runs, queue).startswith("(c.started_at >=")
