"""The meeting sources in queue mode: work messages on the Pub/Sub emulator, workers landing rows, the merger
writing them (as the other sources, pipeline/worker.py)."""
from __future__ import annotations

from sandbox.meet import MeetSandbox
from sandbox.zoom import ZoomSandbox
from scripts.fan_out import LocalFanOut
from tests.helpers import point_at
from tests.pipeline.test_fan_out import queue_runtime  # noqa: F401  (the fixture)

DS = "sales_intelligence"


def test_zoom_and_meet_run_as_work_messages(queue_runtime, monkeypatch):  # noqa: F811
    """One work message each; the workers land, the merger writes: every meeting once, both runs successful."""
    with ZoomSandbox(10, spacing_hours=8) as zoom, MeetSandbox(10, spacing_hours=8) as meet:
        point_at(queue_runtime, zoom, monkeypatch)
        point_at(queue_runtime, meet, monkeypatch)
        with LocalFanOut(queue_runtime, ["zoom", "meet"], workers=2) as fan:
            assert fan.enqueue("zoom", "full") == ["meetings"]
            assert fan.enqueue("meet", "full") == ["conferences"]
            assert fan.wait_until_done(timeout=120)
            fan.drain()
    rows = queue_runtime.warehouse.query(f"SELECT source, COUNT(*) AS n FROM {DS}.meetings GROUP BY source")
    assert {r["source"]: r["n"] for r in rows} == {"zoom": 10, "meet": 10}
    finished = queue_runtime.warehouse.query(
        f"SELECT source, status FROM {DS}.etl_runs WHERE source IN ('zoom', 'meet') AND status != 'running'")
    assert sorted((r["source"], r["status"]) for r in finished) == [("meet", "success"), ("zoom", "success")]
