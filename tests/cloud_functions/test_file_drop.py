"""File drops: CRM exports and mbox archives recognised, loaded once, resumable."""
from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest

from cloud_functions.file_drop import sync as drop_sync
from cloud_functions.file_drop.storage import local_file
from cloud_functions.file_drop.sync import FilePosition, import_drop
from tests.cloud_functions.crm_exports import VARIANTS, deal_values, write_all, write_export


def _deals(warehouse, export) -> list:
    rows = warehouse.query(f"SELECT * FROM {warehouse.dataset}.crm_deals WHERE drop_name = @name ORDER BY row_number",
                           {"name": str(export.path.resolve())})
    return [deal_values(row) for row in rows]


class TestGeneratedExports:
    def test_every_export_is_recognised_and_every_row_loaded_or_rejected(self, runtime, tmp_path):
        """66 exports (6 formats x 11 encodings, delimiters, locales): each recognised as its CRM, each good row
        loaded with its values, the bad row rejected naming the amount."""
        exports = write_all(tmp_path / "drops")
        assert len(exports) >= 60
        for export in exports:
            summary = import_drop(local_file(export.path), runtime)
            label = f"{export.crm} {export.variant.name}"
            assert summary["drop_status"] == "loaded", label
            assert summary["details"]["crm"] == export.crm, (label, summary["details"]["reason"])
            assert summary["rows_rejected"] == export.rejected_rows, label
            assert _deals(runtime.warehouse, export) == export.deals, label
        rejects = runtime.warehouse.query(
            f"SELECT reason FROM {runtime.warehouse.dataset}.rejected_records WHERE source = 'file_drop'")
        assert len(rejects) == len(exports)
        assert all(r["reason"].startswith("amount") and "n/a pending" in r["reason"] for r in rejects)

    def test_unmapped_columns_are_kept_in_the_raw_row_and_listed(self, runtime, tmp_path):
        """A column no field reads stays in raw_row and is listed in the run's details and file_drops."""
        export = write_export(tmp_path, "zoho", VARIANTS[0], seed=1)
        summary = import_drop(local_file(export.path), runtime)
        assert summary["details"]["unmapped_columns"] == ["Lead Source"]
        (row,) = runtime.warehouse.query(f"SELECT raw_row FROM {runtime.warehouse.dataset}.crm_deals "
                                         f"WHERE row_number = 1")
        assert row["raw_row"]["Lead Source"] == "Web"
        (drop,) = runtime.warehouse.query(f"SELECT crm, confidence, reason, status, details "
                                          f"FROM {runtime.warehouse.dataset}.file_drops")
        assert (drop["crm"], drop["status"]) == ("zoho", "loaded") and drop["confidence"] == 1.0
        assert "Lead Source" in drop["details"]["unmapped_columns"] and "signature headers" in drop["reason"]

    def test_a_generic_file_maps_what_it_can_and_says_what_it_could_not(self, runtime, tmp_path):
        """Headers no CRM writes: generic, the reason names the fields not found, the rows still load."""
        path = tmp_path / "partner" / "pipeline.csv"
        path.parent.mkdir()
        path.write_text("Opportunity,Customer,Notes\nBig one,Initech,call back\n")
        summary = import_drop(local_file(path), runtime)
        assert summary["details"]["crm"] == "generic" and summary["rows_by_table"] == {"crm_deals": 1, "crm_companies": 1}
        assert "not found: amount, stage, close_date" in summary["details"]["reason"]
        assert summary["details"]["unmapped_columns"] == ["Notes"]


class TestOverride:
    def test_a_mapping_override_names_the_crm_and_columns(self, runtime, tmp_path, monkeypatch):
        """FILE_DROP_MAPPINGS for a file pattern sets the CRM and a column the detector cannot know."""
        path = tmp_path / "legacy" / "export.csv"
        path.parent.mkdir()
        path.write_text("Potential;Client;Sum;Due\nRenewal;Initech;1.500,00;03/04/2026\n")
        monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(update={"file_drop_mappings": {
            "*/legacy/*.csv": {"crm": "vtiger", "columns": {"deal_name": "Potential", "account_name": "Client",
                                                            "amount": "Sum", "close_date": "Due"},
                               "day_first": True}}}))
        summary = import_drop(local_file(path), runtime)
        assert summary["details"]["crm"] == "vtiger" and "FILE_DROP_MAPPINGS" in summary["details"]["reason"]
        (row,) = runtime.warehouse.query(f"SELECT amount, close_date FROM {runtime.warehouse.dataset}.crm_deals")
        assert (row["amount"], row["close_date"]) == (Decimal("1500"), date(2026, 4, 3))


class TestOnce:
    def test_the_same_content_dropped_twice_loads_once(self, runtime, tmp_path):
        """A second drop of the same content (another name) loads nothing and is recorded as a duplicate."""
        export = write_export(tmp_path, "hubspot", VARIANTS[0], seed=3)
        copy = tmp_path / "again" / "copy.csv"
        copy.parent.mkdir()
        copy.write_bytes(export.path.read_bytes())
        first = import_drop(local_file(export.path), runtime)
        second = import_drop(local_file(copy), runtime)
        assert (first["drop_status"], second["drop_status"]) == ("loaded", "duplicate")
        assert second["rows_loaded"] == 0 and second["details"]["already_loaded_by"] == first["run_id"]
        ds = runtime.warehouse.dataset
        (count,) = runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {ds}.crm_deals")
        assert count["n"] == len(export.deals)
        statuses = {r["name"]: r["status"] for r in runtime.warehouse.query(f"SELECT name, status FROM {ds}.file_drops")}
        assert sorted(statuses.values()) == ["duplicate", "loaded"]

    def test_a_drop_while_an_import_of_it_runs_loads_nothing(self, runtime, tmp_path, monkeypatch):
        """The same content dropped while its first import runs: the second is skipped (busy), one load."""
        export = write_export(tmp_path, "salesforce", VARIANTS[0], seed=4)
        reading, release = threading.Event(), threading.Event()
        real_pages = drop_sync.crm_pages

        def slow_pages(*args, **kwargs):
            for page in real_pages(*args, **kwargs):
                reading.set()
                assert release.wait(30)
                yield page

        monkeypatch.setattr(drop_sync, "crm_pages", slow_pages)
        results = {}
        first = threading.Thread(target=lambda: results.update(first=import_drop(local_file(export.path), runtime)))
        first.start()
        assert reading.wait(30)
        monkeypatch.setattr(drop_sync, "crm_pages", real_pages)
        second = import_drop(local_file(export.path), runtime)
        release.set()
        first.join(30)
        assert (results["first"]["drop_status"], second["drop_status"]) == ("loaded", "busy")
        (count,) = runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {runtime.warehouse.dataset}.crm_deals")
        assert count["n"] == len(export.deals)


class TestResume:
    def test_a_run_out_of_time_resumes_at_its_byte_offset(self, runtime, tmp_path, monkeypatch):
        """Past its time budget an import stops partial at a page's end; the next run reads on from that offset
        and the rows are each loaded once."""
        export = write_export(tmp_path, "pipedrive", VARIANTS[5], seed=5)  # UTF-16: offsets in two-byte units
        settings = runtime.settings.model_copy(update={"file_drop_page_rows": 4, "run_time_budget_seconds": 0})
        monkeypatch.setattr(runtime, "settings", settings)
        first = import_drop(local_file(export.path), runtime)
        assert first["status"] == "partial" and first["drop_status"] == "partial"
        position = FilePosition.parse(first["watermark_after"])
        assert position is not None and position.rows == 4 and not position.done
        runs = [first]
        while runs[-1]["status"] == "partial":
            runs.append(import_drop(local_file(export.path), runtime))
        assert runs[-1]["drop_status"] == "loaded" and FilePosition.parse(runs[-1]["watermark_after"]).done
        assert sum(run["rows_rejected"] for run in runs) == 1
        assert _deals(runtime.warehouse, export) == export.deals


class TestUnreadable:
    @pytest.mark.parametrize("content, reason", [
        (b"PK\x03\x04 binary", "zip archive"), (b"", "empty file"), (b"just one line without delimiters\n", "not delimited text"),
    ])
    def test_a_file_that_cannot_be_read_is_recorded_with_its_reason(self, runtime, tmp_path, content, reason):
        """An unreadable file is a run with the file rejected for its reason and a file_drops row saying it."""
        path = tmp_path / "deals.xlsx"
        path.write_bytes(content)
        summary = import_drop(local_file(path), runtime)
        assert summary["drop_status"] == "unreadable" and summary["rows_rejected"] == 1
        ds = runtime.warehouse.dataset
        (reject,) = runtime.warehouse.query(f"SELECT reason FROM {ds}.rejected_records WHERE run_id = @r",
                                            {"r": summary["run_id"]})
        assert reason in reject["reason"]
        (drop,) = runtime.warehouse.query(f"SELECT status, reason FROM {ds}.file_drops")
        assert drop["status"] == "unreadable" and reason in drop["reason"]



def _mbox(count: int, newline: bytes = b"\n") -> bytes:
    """A Takeout-like mbox of count messages (the last without the blank line after it)."""
    parts = []
    for n in range(count):
        lines = [f"From {1000 + n}@xxx Mon Jan 0{1 + n % 9} 10:00:00 +0000 2026", f"X-GM-MSGID: {170000 + n}",
                 f"X-GM-THRID: {170000 + n}", "X-Gmail-Labels: Inbox", f"From: Dana <dana{n}@customer.example>",
                 "To: alex@ourcompany.example", f"Subject: note {n}", f"Date: Mon, 0{1 + n % 9} Jan 2026 10:00:00 +0000",
                 f"Message-ID: <m{n}@customer.example>", "", f"body {n}", ">From the start, a quoted line", ""]
        parts.append(newline.join(line.encode() for line in lines))
    return b"".join(parts).rstrip(newline) + newline


class TestMbox:
    @pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
    def test_entries_are_the_messages_the_mailbox_module_reads(self, tmp_path, newline):
        """mbox_entries splits and strips messages as mailbox.mbox does (get_bytes, get_from), from any entry's offset."""
        import mailbox

        from cloud_functions.file_drop.mbox_stream import mbox_entries

        path = tmp_path / "all.mbox"
        path.write_bytes(_mbox(5, newline))
        box = mailbox.mbox(str(path), create=False)
        expected = [(box.get_message(key).get_from(), box.get_bytes(key)) for key in box.iterkeys()]
        with path.open("rb") as handle:
            entries = list(mbox_entries(handle, 0))
        assert [(e.from_line, e.raw) for e in entries] == expected
        with path.open("rb") as handle:
            handle.seek(entries[2].start)
            assert [e.raw for e in mbox_entries(handle, entries[2].start)] == [raw for _f, raw in expected[2:]]

    def test_an_mbox_drop_loads_the_mailbox_its_path_names_once(self, runtime, tmp_path):
        """An mbox under a folder named for a mailbox loads into gmail_messages for it; dropped again, nothing."""
        path = tmp_path / "mbox" / "Alex@OurCompany.example" / "all.mbox"
        path.parent.mkdir(parents=True)
        path.write_bytes(_mbox(7))
        first = import_drop(local_file(path), runtime)
        again = tmp_path / "later" / "alex@ourcompany.example" / "copy.mbox"
        again.parent.mkdir(parents=True)
        again.write_bytes(path.read_bytes())
        second = import_drop(local_file(again), runtime)
        assert (first["kind"], first["drop_status"], second["drop_status"]) == ("mbox", "loaded", "duplicate")
        rows = runtime.warehouse.query(f"SELECT mailbox, COUNT(*) AS n FROM {runtime.warehouse.dataset}.gmail_messages "
                                       f"GROUP BY mailbox")
        assert rows == [{"mailbox": "alex@ourcompany.example", "n": 7}]

    def test_a_large_mbox_resumes_where_its_run_stopped(self, runtime, tmp_path, monkeypatch):
        """An mbox import out of time stops partial after a page; the next run goes on from there, no duplicates."""
        monkeypatch.setattr(drop_sync, "MBOX_PAGE", 3)
        monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(update={"run_time_budget_seconds": 0}))
        path = tmp_path / "alex@ourcompany.example.mbox"
        path.write_bytes(_mbox(8))
        runs = [import_drop(local_file(path), runtime)]
        while runs[-1]["status"] == "partial":
            runs.append(import_drop(local_file(path), runtime))
        assert len(runs) == 3 and runs[-1]["drop_status"] == "loaded"
        assert [run["rows_by_table"].get("gmail_messages") for run in runs] == [3, 3, 2]
        (count,) = runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {runtime.warehouse.dataset}.gmail_messages")
        assert count["n"] == 8

    def test_an_mbox_whose_path_names_no_mailbox_is_refused_with_the_reason(self, runtime, tmp_path):
        """An mbox dropped without a mailbox in its path is recorded unreadable, saying where to drop it."""
        path = tmp_path / "takeout.mbox"
        path.write_bytes(_mbox(1))
        summary = import_drop(local_file(path), runtime)
        assert summary["drop_status"] == "unreadable" and "names no mailbox" in summary["reason"]


def _deliver(url: str, event: dict):
    """POSTs a Cloud Storage finalize event as Eventarc delivers it (CloudEvents binary mode)."""
    import requests

    headers = {"ce-id": f"evt-{event['generation']}", "ce-specversion": "1.0",
               "ce-type": "google.cloud.storage.object.v1.finalized",
               "ce-source": f"//storage.googleapis.com/projects/_/buckets/{event['bucket']}",
               "ce-subject": f"objects/{event['name']}", "ce-time": event["timeCreated"],
               "Content-Type": "application/json"}
    return requests.post(url, json=event, headers=headers, timeout=120)


class TestEntryPoint:
    def test_a_finalized_object_is_read_from_cloud_storage_and_loaded_once(self, runtime, function_server, tmp_path,
                                                                          monkeypatch):
        """The file_drop function, served by functions-framework, reads the event's object generation over the
        Cloud Storage JSON API, loads its deals with the object's lineage, and a redelivery loads nothing."""
        from sandbox.cloud_storage import CloudStorageSandbox

        export = write_export(tmp_path, "hubspot", VARIANTS[2], seed=9)
        with CloudStorageSandbox() as storage:
            monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(
                update={"storage_api_endpoint": storage.url}))
            event = storage.state.put("drops", "crm/acme-hubspot/deals 2026.csv", export.path.read_bytes())
            server = function_server("file_drop")
            assert _deliver(server.url, event).status_code == 200
            assert _deliver(server.url, event).status_code == 200
        ds = runtime.warehouse.dataset
        rows = runtime.warehouse.query(f"SELECT * FROM {ds}.crm_deals ORDER BY row_number")
        assert [deal_values(row) for row in rows] == export.deals
        assert {(r["drop_bucket"], r["drop_name"], r["drop_generation"], r["deal_key"].split(":")[0]) for r in rows} == {
            ("drops", "crm/acme-hubspot/deals 2026.csv", event["generation"], "acme-hubspot")}
        (drop,) = runtime.warehouse.query(f"SELECT status, checksum, size_bytes FROM {ds}.file_drops")
        assert drop == {"status": "loaded", "checksum": local_file(export.path).checksum,
                        "size_bytes": export.path.stat().st_size}

    def test_an_unfinished_import_fails_the_event_and_its_retries_finish_it(self, runtime, function_server, tmp_path,
                                                                           monkeypatch):
        """Past its time budget the function answers an error (Eventarc retries); each retry resumes at the
        offset reached, until the file is done; every row loaded once."""
        from sandbox.cloud_storage import CloudStorageSandbox

        export = write_export(tmp_path, "zoho", VARIANTS[6], seed=10)
        with CloudStorageSandbox() as storage:
            monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(update={
                "storage_api_endpoint": storage.url, "file_drop_page_rows": 3, "run_time_budget_seconds": 0}))
            event = storage.state.put("drops", "crm/zoho/deals.csv", export.path.read_bytes())
            server = function_server("file_drop")
            statuses = [_deliver(server.url, event).status_code for _ in range(5)]
        assert statuses == [500, 500, 500, 200, 200]
        assert _deals_of(runtime.warehouse) == export.deals


def _deals_of(warehouse) -> list:
    return [deal_values(r) for r in warehouse.query(f"SELECT * FROM {warehouse.dataset}.crm_deals ORDER BY row_number")]
