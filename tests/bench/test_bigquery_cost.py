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
        """Folding less often bills less: fewer MERGEs, each at least 10 MB for the staged rows and the target."""
        days = [cost.push_day(pilot, sizes, 3, interval) for interval in (900, 1800, 3600, 7200)]
        folds = [day["folds"] for day in days]
        assert folds == sorted(folds, reverse=True) and folds[0] > 3 * folds[-1]
        merges = [day["merges"] for day in days]
        assert merges[0] == pytest.approx(2 * merges[1], rel=0.15)

    def test_every_fold_merge_bills_its_staged_rows_and_its_target(self, pilot, sizes):
        """A fold MERGE references two tables, each billed at least 10 MB; a table folds at most once an interval."""
        org, runs = cost.push_org(pilot, sizes, 3)
        for flows in cost.fresh_flows(org, runs).values():
            fold = cost.fold_bill(org, flows, 3600, cost.random.Random(1))
            assert 0 < fold["folds"] <= 24
            assert fold["billed"] / fold["merges"] >= 2 * cost.MIN_BILLED

    def test_a_fold_scans_the_partitions_its_rows_touch_not_the_table(self, pilot, sizes):
        """New mail folds into today's partition (the 10 MB minimums); rows spread over the history scan more."""
        org, runs = cost.push_org(pilot, sizes, 3)
        today = cost.FreshFlow("gmail_participants", runs["gmail"], [(900.0, 1, 0, 1460)])
        fold = cost.fold_bill(org, [today], 3600, cost.random.Random(1))
        assert fold["billed"] / fold["merges"] == pytest.approx(2 * cost.MIN_BILLED)
        anywhere = cost.FreshFlow("gmail_participants", runs["gmail"], [(900.0, 0, 0, 1460)])
        spread = cost.fold_bill(org, [anywhere], 3600, cost.random.Random(1))
        assert spread["billed"] > 1.2 * fold["billed"]
        assert spread["billed"] / spread["merges"] < org.tables["gmail_participants"].bytes

    def test_a_fold_merges_each_column_set_once(self, pilot, sizes):
        """Task, Event and EmailMessage rows interleave in sf_activities_fresh: a fold MERGEs each set once, so at
        most three MERGEs a fold, fewer a day the longer the interval."""
        org, runs = cost.push_org(pilot, sizes, 3)
        flows = cost.fresh_flows(org, runs)["sf_activities"]
        assert len(flows) == 3
        hourly, daily = (cost.fold_bill(org, flows, i, cost.random.Random(1)) for i in (3600, 86400))
        assert hourly["merges"] <= 3 * hourly["folds"] <= 3 * 24 and daily["merges"] <= 3
        assert daily["merges"] < hourly["merges"] / 10

    def test_fresh_tables_are_the_tables_push_writes(self, pilot, sizes):
        """Every table a push run writes has a fresh table that is folded (its run records: push_runs); nothing
        else is, etl_runs least of all."""
        org, runs = cost.push_org(pilot, sizes, 3)
        salesforce = {cost.OBJECTS[name].table for name in cost.SF_OBJECTS}
        assert set(cost.fresh_flows(org, runs)) == {
            "gmail_messages", "gmail_participants", "gmail_sync_state", *salesforce, "dialpad_calls",
            "dialpad_transcripts", "hubspot_sequence_enrollments", "sync_state", "push_runs"}

    def test_push_runs_holds_thirty_days_of_push_runs_and_etl_runs_the_schedules_runs(self, pilot, sizes):
        """push_runs: the push runs a day over its 30 days of partitions; etl_runs: the schedules' runs only."""
        org, runs = cost.push_org(pilot, sizes, 3)
        assert org.tables["push_runs"].partitions == 30
        assert org.tables["push_runs"].rows == pytest.approx(30 * sum(runs.values()))
        scheduled = sum(c * cost.runs_per_fire(j, pilot) for j, c in cost.runs_per_day().items())
        assert org.tables["etl_runs"].rows == pytest.approx(scheduled * org.tables["etl_runs"].partitions)

    def test_push_bills_its_folds_and_its_runs_reads_only(self, pilot, sizes):
        """Push's day: the folds' MERGEs and the runs' few queries; landing, loads and deferred cycles bill nothing."""
        day = cost.push_day(pilot, sizes, 3, 7200)
        assert day["total"] == pytest.approx(day["folds"] + day["runs"])
        assert day["folds"] == pytest.approx(sum(t["billed"] for t in day["by_table"].values()))
        assert 0 < day["runs"] < 1 * GB


class TestLoads:
    @pytest.mark.parametrize("interval", cost.FOLD_INTERVALS)
    def test_loads_per_fresh_table_stay_within_bigquerys_limit(self, pilot, sizes, interval):
        """Appends within the budget (1,400 a day) and the folds' truncations: at most 1,500 a table."""
        loads = cost.fresh_loads(pilot, sizes, interval)
        assert max(row["total"] for row in loads.values()) <= cost.TABLE_LOADS_PER_DAY
        assert max(row["appends"] for row in loads.values()) == cost.FRESH_LOADS_PER_DAY

    def test_cycles_over_the_budget_are_deferred_not_merged(self, pilot, sizes):
        """push_runs and sync_state have rows in most cycles: those past the budget wait for a token; push_runs still
        folds once an interval, one MERGE a fold."""
        loads = cost.fresh_loads(pilot, sizes, 7200)
        for table in ("push_runs", "sync_state"):
            assert loads[table]["appends"] == cost.FRESH_LOADS_PER_DAY < loads[table]["demand"]
            assert loads[table]["deferred"] == pytest.approx(loads[table]["demand"] - cost.FRESH_LOADS_PER_DAY)
        folds = cost.push_day(pilot, sizes, 3, 7200)["by_table"]
        assert folds["push_runs"]["merges"] == pytest.approx(folds["push_runs"]["folds"]) and folds["push_runs"]["folds"] <= 12

    def test_a_quiet_table_is_loaded_once_per_cycle_with_rows(self, pilot, sizes):
        """A table landed rarely gets a load per cycle holding its rows, never deferred."""
        loads = cost.fresh_loads(pilot, sizes, 3600)["dialpad_transcripts"]
        assert loads["appends"] == pytest.approx(loads["demand"]) and loads["deferred"] == 0
        assert loads["demand"] <= loads["landings"]


class TestSchedulesWithPush:
    def test_runs_rows_in_etl_runs_make_the_schedules_reads_of_it_bill_more(self, pilot, sizes):
        """Runs' rows in etl_runs are read by the schedules' statements over etl_runs (why push's go elsewhere)."""
        today = cost.simulate_day(pilot, sizes, 3, True, queue=True)
        grown = cost.simulate_day(pilot, sizes, 3, True, queue=True, extra_runs=6_000)
        assert grown.total > today.total

    def test_incremental_runs_that_find_nothing_new_bill_less(self, pilot, sizes):
        """With push on, the hourly Gmail and 6-hourly Salesforce runs find nothing: their data MERGEs go."""
        today = cost.simulate_day(pilot, sizes, 3, True, queue=True)
        quiet = cost.simulate_day(pilot, sizes, 3, True, queue=True, pushed=True)
        assert quiet.total < today.total
        assert quiet.by_job["gmail-incremental-sync"][0] < today.by_job["gmail-incremental-sync"][0]
        assert quiet.by_job["dialpad-sync"] == today.by_job["dialpad-sync"]

    def test_salesforces_look_back_re_reads_each_object_once_a_run(self, pilot, sizes):
        """Push brought every change, yet the inclusive look-back re-reads the record at each cursor and the
        look-back's: a MERGE per object a run (4 runs a day), each at least 20 MB."""
        records = cost.salesforce_lookback_rows(pilot)
        assert set(records) == set(cost.OBJECTS) and min(records.values()) >= 1
        contacts = cost.salesforce_object_changes(pilot)["Contact"] * cost.SF_LOOKBACK_SECONDS / cost.DAY_SECONDS
        assert records["Contact"] == pytest.approx(1 + contacts)
        quiet = cost.simulate_day(pilot, sizes, 3, True, queue=True, pushed=True)
        rereads = [v for k, v in quiet.by_statement.items() if k.startswith("salesforce-incremental-sync: merge sf_")]
        fires = cost.runs_per_day()["salesforce-incremental-sync"]
        assert sum(v[0] for v in rereads) == pytest.approx(len(records) * fires)
        assert sum(v[1] for v in rereads) >= len(records) * fires * 2 * cost.MIN_BILLED
