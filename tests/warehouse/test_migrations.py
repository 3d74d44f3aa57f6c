"""bigquery/migrations: one-off upgrades of a dataset made by an older release, run as written (transpiled on DuckDB)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from scripts.analyst_sql import statements

MIGRATIONS = Path(__file__).resolve().parents[2] / "bigquery" / "migrations"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
LINE = ("STRUCT('{0}' AS content, 'Sam' AS name, CAST(NULL AS TIMESTAMP) AS time, CAST(NULL AS STRING) AS type, "
        "CAST(NULL AS STRING) AS user_id, CAST(NULL AS STRING) AS contact_id)")


def migrate(warehouse, name: str) -> None:
    text = (MIGRATIONS / f"{name}.sql").read_text().replace("${dataset}", warehouse.dataset)
    for statement in statements(text):
        warehouse.execute(statement)


def test_transcripts_move_out_of_an_old_dialpad_calls(warehouse):
    """An old dialpad_calls (transcripts inside): a stored transcript lands in dialpad_transcripts with its call's
    start, one already there is not copied twice, a call without one adds none; the calls keep every other
    column and lose the two transcript columns."""
    ds = warehouse.dataset
    warehouse.execute(f"ALTER TABLE {ds}.dialpad_calls ADD COLUMN transcript_lines "
                      f"ARRAY<STRUCT<content STRING, name STRING, time TIMESTAMP, type STRING, user_id STRING, "
                      f"contact_id STRING>>")
    warehouse.execute(f"ALTER TABLE {ds}.dialpad_calls ADD COLUMN transcript_text STRING")
    t1 = T0 + timedelta(days=40)
    warehouse.execute(
        f"INSERT INTO {ds}.dialpad_calls (call_id, started_at, direction, transcript_lines, transcript_text, ingested_at) "
        f"VALUES ('c1', @t0, 'inbound', [{LINE.format('Hi')}], 'Sam: Hi', @t0), ('c2', @t0, 'outbound', [], NULL, @t0), "
        f"('c3', @t1, 'inbound', [{LINE.format('Bye')}], 'Sam: Bye', @t1)", {"t0": T0, "t1": t1})
    warehouse.merge("dialpad_transcripts", [{"call_id": "c3", "started_at": t1, "transcript_text": "Sam: Bye",
                                             "transcript_lines": [{"content": "Bye", "name": "Sam"}]}])
    migrate(warehouse, "dialpad_transcripts")
    rows = warehouse.query(f"SELECT call_id, started_at, transcript_text, transcript_lines "
                           f"FROM {ds}.dialpad_transcripts ORDER BY call_id")
    assert [(r["call_id"], r["started_at"], r["transcript_text"]) for r in rows] == [
        ("c1", T0, "Sam: Hi"), ("c3", t1, "Sam: Bye")]
    assert [line["content"] for r in rows for line in r["transcript_lines"]] == ["Hi", "Bye"]
    columns = warehouse.table_columns("dialpad_calls")
    assert "transcript_text" not in columns and "transcript_lines" not in columns and "direction" in columns
    assert warehouse.query(f"SELECT call_id, direction FROM {ds}.dialpad_calls ORDER BY call_id") == [
        {"call_id": "c1", "direction": "inbound"}, {"call_id": "c2", "direction": "outbound"},
        {"call_id": "c3", "direction": "inbound"}]


def test_etl_runs_object_type_becomes_stream(warehouse):
    """An old etl_runs (its stream column named object_type): the column renamed, its rows' values kept."""
    ds = warehouse.dataset
    warehouse.execute(f"ALTER TABLE {ds}.etl_runs RENAME COLUMN stream TO object_type")
    warehouse.execute(f"INSERT INTO {ds}.etl_runs (run_id, source, object_type, status, started_at, updated_at) "
                      f"VALUES ('gmail-1', 'gmail', 'a@b.com', 'success', @t0, @t0)", {"t0": T0})
    migrate(warehouse, "etl_runs_stream")
    columns = warehouse.table_columns("etl_runs")
    assert "stream" in columns and "object_type" not in columns
    assert warehouse.query(f"SELECT run_id, stream FROM {ds}.etl_runs") == [{"run_id": "gmail-1", "stream": "a@b.com"}]


@pytest.mark.parametrize("kind", ["warehouse", pytest.param("bigquery_warehouse", marks=pytest.mark.emulator)])
def test_transcript_moments_move_out_of_the_spoken_lines(kind, request):
    """A transcript stored before moments were kept apart: its moments move to transcript_moments, its spoken lines
    are put in time order and its text is rebuilt from them, as the sync now writes it; a second run changes nothing
    (on DuckDB and on the BigQuery emulator)."""
    from cloud_functions.dialpad_sync.records import TRANSCRIPT, call_row, transcript_row

    warehouse = request.getfixturevalue(kind)
    ds = warehouse.dataset
    lines = [{"content": "hi", "name": "Ann", "time": "2018-05-08T21:33:19.300000", "type": "transcript"},
             {"content": "hello", "name": "Bo", "time": "2018-05-08T21:33:15.300000", "type": "transcript"},
             {"content": "price_inquiry", "name": "Bo", "time": "2018-05-08T21:33:17.300000", "type": "moment"},
             {"content": "untimed", "name": None, "time": None, "type": None}]
    call = {"call_id": "1001", "date_started": "1525815190000", TRANSCRIPT: {"lines": lines}}
    now = transcript_row(call, call_row(call, "US"))
    old = {**now, "transcript_lines": sorted(now["transcript_lines"] + now["transcript_moments"],
                                             key=lambda x: [y["content"] for y in lines].index(x["content"])),
           "transcript_moments": None, "transcript_text": "Ann: hi\nBo: hello\nBo: price_inquiry\n?: untimed"}
    warehouse.merge("dialpad_transcripts", [old])
    for _ in range(2):
        migrate(warehouse, "dialpad_transcript_moments")
        (row,) = warehouse.query(f"SELECT transcript_text, transcript_lines, transcript_moments FROM {ds}.dialpad_transcripts")
        assert row == {key: now[key] for key in ("transcript_text", "transcript_lines", "transcript_moments")}
