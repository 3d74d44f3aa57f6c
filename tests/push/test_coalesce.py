"""superseded(): a push message is skipped only when a run of its stream started after it was published."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pipeline.etl_runs import RunRecord, RunTracker
from pipeline.work_queue import WorkMessage
from push.coalesce import note_run_started, superseded

NOW = datetime.now(timezone.utc)


def push(published: datetime, reason: str = "push", stream: str = "a@example.com") -> WorkMessage:
    return WorkMessage("gmail", stream, reason=reason, published_at=published.isoformat())


def run_row(warehouse, started: datetime, status: str, stream: str = "a@example.com") -> None:
    record = RunRecord(run_id=f"gmail-{started.timestamp()}-{status}", source="gmail", stream=stream,
                       sync_type="incremental", trigger="test")
    record.started_at = started
    tracker = RunTracker(warehouse)
    tracker.open(record)
    if status != "running":
        tracker.close(record, status)


class TestSuperseded:
    @pytest.mark.parametrize("status,expected", [("success", True), ("partial", True), ("running", True),
                                                 ("failed", False), ("skipped", False)])
    def test_a_later_run_covers_a_push_unless_it_read_nothing(self, warehouse, status, expected):
        """A run started after the message was published supersedes it when it is running or read the source."""
        run_row(warehouse, NOW, status)
        assert superseded(push(NOW - timedelta(seconds=5)), warehouse) is expected

    def test_an_earlier_run_or_another_stream_does_not(self, warehouse):
        """A run that started before the message, or a run of another mailbox, leaves the message to run."""
        run_row(warehouse, NOW - timedelta(seconds=10), "success")
        run_row(warehouse, NOW, "success", stream="b@example.com")
        assert not superseded(push(NOW - timedelta(seconds=5)), warehouse)

    def test_only_push_messages_coalesce(self, warehouse):
        """A scheduled, manual or continuation message runs whatever ran since."""
        run_row(warehouse, NOW, "success")
        assert not any(superseded(push(NOW - timedelta(seconds=5), reason), warehouse)
                       for reason in ("schedule", "manual", "continuation"))

    def test_runs_this_process_started_need_no_query(self):
        """A run this process started after the message supersedes it without asking any warehouse; on a
        warehouse whose queries bill (BigQuery) nothing else is asked."""
        class Billed:
            dataset = "d"

            def query(self, *_args):
                raise AssertionError("a billed query was made")

        note_run_started("gmail", "a@example.com", NOW)
        assert superseded(push(NOW - timedelta(seconds=1)), Billed())
        assert not superseded(push(NOW + timedelta(seconds=1)), Billed())
