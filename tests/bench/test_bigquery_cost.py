"""The cost model's push section (bench/bigquery_cost.py, section 6): push runs, the fresh tier's folds and loads."""
from __future__ import annotations

import pytest

from bench import bigquery_cost as cost
from warehouse.schemas import table_spec

GB = cost.GB


@pytest.fixture(scope="module")
def sizes() -> dict[str, dict[str, float]]:
    """Row sizes as a measurement gives them: 20 bytes a column, the sandbox's counts."""
    tables = {p.stem for p in (cost.ROOT / "bigquery" / "schemas").glob("*.json")}
    measured = {t: {c: 20.0 for c in table_spec(t).column_names} for t in tables}
    measured["_counts"] = {"gmail_messages": 300.0, "gmail_participants": 900.0, "dialpad_calls": 200.0,
                           "dialpad_transcripts": 91.0, "meetings": 100.0, "meeting_participants": 300.0}
    return measured


@pytest.fixture(scope="module")
def pilot() -> cost.Profile:
    return cost.Profile()


class TestPushRuns:
    @pytest.mark.parametrize("pushes", [10.0, 1_000.0, 100_000.0, 10_000_000.0])
    def test_a_stream_runs_at_most_once_per_push_and_per_run_length(self, pushes):
        """Coalescing: never more runs than pushes, never more than one per run length."""
        runs = cost.coalesced_runs(pushes, 5.0)
        assert runs <= pushes
        assert runs <= cost.DAY_SECONDS / 5.0

    def test_rare_pushes_are_a_run_each_and_a_flood_one_per_run_length(self):
        """Rare pushes each get their run; a flood is bounded by the run length."""
        assert cost.coalesced_runs(10.0, 5.0) == pytest.approx(10.0, rel=1e-3)
        assert cost.coalesced_runs(1e9, 5.0) == pytest.approx(cost.DAY_SECONDS / 5.0, rel=1e-2)

    def test_a_salesforce_object_runs_at_most_once_per_probe(self):
        """The probe asks every 30 s: at most 2,880 runs a day per object, one per change when changes are rare."""
        assert cost.probed_runs(1e7) == pytest.approx(cost.DAY_SECONDS / cost.PROBE_SECONDS)
        assert cost.probed_runs(10.0) == pytest.approx(10.0, rel=1e-2)

    def test_salesforce_changes_are_the_pushed_rate_split_per_object(self, pilot):
        """The per-object changes sum to what Salesforce pushes (5,700 a day at the pilot's rate)."""
        changes = cost.salesforce_object_changes(pilot)
        assert sum(changes.values()) == pytest.approx(cost.push_event_rates(pilot)["salesforce"]) == 5_700
        assert set(changes) == set(cost.PROBED)

    def test_an_opportunity_run_brings_its_history_objects_runs(self, pilot):
        """Each Opportunity run is followed by OpportunityHistory's and OpportunityFieldHistory's."""
        runs = cost.push_runs(pilot)
        assert runs["OpportunityHistory"] == runs["OpportunityFieldHistory"] == runs["Opportunity"] > 0


class TestFolds:
    def test_the_folds_bill_falls_as_the_interval_grows(self, pilot, sizes):
        """Folding less often bills less: fewer MERGEs, each at least 10 MB for the fresh table and the target."""
        days = [cost.push_day(pilot, sizes, 3, interval) for interval in (900, 1800, 3600, 7200)]
        folds = [day["folds"] for day in days]
        assert folds == sorted(folds, reverse=True) and folds[0] > 3 * folds[-1]
        merges = [day["merges"] for day in days]
        assert merges[0] == pytest.approx(2 * merges[1], rel=0.1)

    def test_every_fold_bills_its_fresh_table_and_its_target(self, pilot, sizes):
        """A fold is one MERGE per table and column set, reading <table>_fresh: two references at 10 MB or more."""
        org, runs = cost.push_org(pilot, sizes, 3)
        for flow in cost.fresh_flows(org, runs):
            folds, billed = cost.fold_bill(org, flow, 3600, cost.random.Random(1))
            assert 0 < folds <= 24
            assert billed / folds >= 2 * cost.MIN_BILLED

    def test_a_fold_scans_the_partitions_its_rows_touch_not_the_table(self, pilot, sizes):
        """New mail folds into today's partition (the 10 MB minimums); rows spread over the history scan more."""
        org, runs = cost.push_org(pilot, sizes, 3)
        today = cost.FreshFlow("gmail_participants", runs["gmail"], [(900.0, 1, 0, 1460)])
        folds, billed = cost.fold_bill(org, today, 3600, cost.random.Random(1))
        assert billed / folds == pytest.approx(2 * cost.MIN_BILLED)
        anywhere = cost.FreshFlow("gmail_participants", runs["gmail"], [(900.0, 0, 0, 1460)])
        folds, spread = cost.fold_bill(org, anywhere, 3600, cost.random.Random(1))
        assert spread > 1.2 * billed
        assert spread / folds < org.tables["gmail_participants"].bytes

    def test_fresh_tables_are_the_tables_push_writes(self, pilot, sizes):
        """Every table a push run writes has a fresh table that is folded; nothing else is."""
        org, runs = cost.push_org(pilot, sizes, 3)
        tables = {flow.table for flow in cost.fresh_flows(org, runs)}
        salesforce = {cost.OBJECTS[name].table for name in cost.SF_OBJECTS}
        assert tables == {"gmail_messages", "gmail_participants", "gmail_sync_state", *salesforce, "dialpad_calls",
                          "dialpad_transcripts", "hubspot_sequence_enrollments", "sync_state", "etl_runs"}


class TestLoads:
    @pytest.mark.parametrize("interval", cost.FOLD_INTERVALS)
    def test_loads_per_fresh_table_stay_within_bigquerys_limit(self, pilot, sizes, interval):
        """Appends (one per cycle at most, one per 62 s on average) and the folds' truncations: <= 1,500 a table."""
        loads = cost.fresh_loads(pilot, sizes, interval)
        assert max(row["total"] for row in loads.values()) <= cost.TABLE_LOADS_PER_DAY

    def test_the_token_bucket_caps_appends_when_runs_are_many(self, sizes):
        """At 50 mailboxes every cycle holds mail, yet a fresh table gets one load per 62 s on average."""
        loads = cost.fresh_loads(cost.Profile(mailboxes=50, messages_per_mailbox_day=2_000), sizes, 3600)
        assert loads["gmail_messages"]["cycles"] > cost.DAY_SECONDS / cost.FRESH_LOAD_SECONDS
        assert loads["gmail_messages"]["appends"] == pytest.approx(cost.DAY_SECONDS / cost.FRESH_LOAD_SECONDS)


class TestSchedulesWithPush:
    def test_push_runs_rows_in_etl_runs_make_the_schedules_reads_of_it_bill_more(self, pilot, sizes):
        """The push runs' etl_runs rows are read by the schedules' statements over etl_runs."""
        today = cost.simulate_day(pilot, sizes, 3, True, queue=True)
        grown = cost.simulate_day(pilot, sizes, 3, True, queue=True, extra_runs=6_000)
        assert grown.total > today.total
        assert cost._grown_statements(today, grown, least=0.0)

    def test_incremental_runs_that_find_nothing_new_bill_less(self, pilot, sizes):
        """With push on, the hourly Gmail and 6-hourly Salesforce runs find nothing: their data MERGEs go."""
        today = cost.simulate_day(pilot, sizes, 3, True, queue=True)
        quiet = cost.simulate_day(pilot, sizes, 3, True, queue=True, pushed=True)
        assert quiet.total < today.total
        assert quiet.by_job["gmail-incremental-sync"][0] < today.by_job["gmail-incremental-sync"][0]
        assert quiet.by_job["dialpad-sync"] == today.by_job["dialpad-sync"]
