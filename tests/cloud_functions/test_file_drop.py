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


class TestLineEndings:
    def test_an_old_mac_file_with_cr_only_lines_loads_and_resumes(self, runtime, tmp_path, monkeypatch):
        """Lines ending in a lone CR (Excel's "CSV (Macintosh)") are split on it, a quoted CR kept in its field,
        and a run stopped after each page resumes at the right offset."""
        path = tmp_path / "mac" / "deals.csv"
        path.parent.mkdir()
        rows = ["Deal Name,Account Name,Amount,Close Date"] + [
            f'"Deal {n}\rnote",Acme,{n}00.50,12/{10 + n}/2026' if n == 2 else f"Deal {n},Acme,{n}00.50,12/{10 + n}/2026"
            for n in range(1, 6)]
        path.write_bytes("\r".join(rows).encode() + b"\r")
        monkeypatch.setattr(runtime, "settings", runtime.settings.model_copy(
            update={"file_drop_page_rows": 2, "run_time_budget_seconds": 0}))
        runs = [import_drop(local_file(path), runtime)]
        while runs[-1]["status"] == "partial":
            runs.append(import_drop(local_file(path), runtime))
        assert "CR only" in runs[0]["details"]["format"] and len(runs) == 3
        deals = runtime.warehouse.query(f"SELECT deal_name, amount, close_date FROM {runtime.warehouse.dataset}.crm_deals "
                                        f"ORDER BY row_number")
        assert [(d["deal_name"], d["amount"], d["close_date"]) for d in deals] == [
            (f"Deal {n}" if n != 2 else "Deal 2\rnote", Decimal(f"{n}00.50"), date(2026, 12, 10 + n)) for n in range(1, 6)]


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

    def test_a_folder_placeholder_is_ignored(self, runtime, tmp_path):
        """The zero-byte `folder/` object the console creates is no file: no run, no file_drops row."""
        from cloud_functions.file_drop.sync import run_file_drop

        answer = run_file_drop({"bucket": "drops", "name": "crm/acme/", "generation": "1", "size": "0"}, runtime)
        assert answer["drop_status"] == "ignored"
        assert runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {runtime.warehouse.dataset}.etl_runs") == [{"n": 0}]


def _deals_of(warehouse) -> list:
    return [deal_values(r) for r in warehouse.query(f"SELECT * FROM {warehouse.dataset}.crm_deals ORDER BY row_number")]


class TestMatching:
    def test_deals_are_matched_flagged_and_shown_beside_opportunities(self, runtime, tmp_path):
        """Entity resolution links a deal's contact by email and another's by phone; accounts are found by the
        contact, the domain and (for review) the normalised name; a deal like an opportunity is flagged, one with
        another number is not; both sides show in v_deals_beside_opportunities."""
        from datetime import datetime, timezone

        from entity_resolution.matcher import ResolutionRequest, resolve_entities

        wh, ds = runtime.warehouse, runtime.warehouse.dataset
        t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        base = {"is_deleted": False, "system_modstamp": t0}
        wh.merge("sf_accounts", [{**base, "id": "001A", "name": "Société Générale S.A.", "domain": "socgen.example"},
                                 {**base, "id": "001B", "name": "ACME, Inc.", "domain": "acme.example"}])
        wh.merge("sf_contacts", [{**base, "id": "003A", "account_id": "001A", "email": "zoe@socgen.example",
                                  "domain": "socgen.example"},
                                 {**base, "id": "003B", "account_id": "001B", "phone_e164": "+14155550100"}])
        wh.merge("sf_opportunities", [{**base, "id": "006A", "account_id": "001A", "name": "Renewal 2027",
                                       "stage_name": "Proposal", "amount": 1000.0, "close_date": date(2027, 3, 1)},
                                      {**base, "id": "006B", "account_id": "001A", "name": "Renewal 2028",
                                       "stage_name": "Proposal", "amount": 1000.0, "close_date": date(2027, 3, 5)}])
        path = tmp_path / "acquired" / "deals.csv"
        path.parent.mkdir()
        path.write_text("Deal Name,Company Name,Deal Stage,Pipeline,Amount,Close Date,Deal Owner,Record ID,Contact Email,"
                        "Phone Number\n"
                        "Renewal 2027 (HubSpot),Societe Generale,contractsent,default,900,03/10/2027,Kim,1,ZOE@socgen.example,\n"
                        "New logo,Acme Corporation,closedwon,default,50,04/01/2027,Kim,2,,(415) 555-0100\n"
                        "Side project,Globex,closedlost,default,10,04/02/2027,Kim,3,x@globex.example,\n")
        assert import_drop(local_file(path), runtime)["drop_status"] == "loaded"
        resolve_entities(ResolutionRequest(sync_type="full"), runtime)
        deals = {r["crm_deal_id"]: r for r in wh.query(f"SELECT * FROM {ds}.crm_deals")}
        assert (deals["1"]["sf_contact_id"], deals["1"]["match_method"]) == ("003A", "email_exact")
        assert (deals["2"]["phone_sf_contact_id"], deals["2"]["phone_match_method"]) == ("003B", "phone_exact")
        matches = {(r["deal_name"], r["sf_account_id"], r["match_method"], r["needs_review"])
                   for r in wh.query(f"SELECT * FROM {ds}.v_crm_deal_account_matches")}
        assert matches == {("Renewal 2027 (HubSpot)", "001A", "contact_match", False),
                           ("New logo", "001B", "contact_match", False)}
        flags = wh.query(f"SELECT deal_name, sf_opportunity_id, review_reason FROM {ds}.v_crm_deal_opportunity_flags")
        assert [(f["deal_name"], f["sf_opportunity_id"]) for f in flags] == [("Renewal 2027 (HubSpot)", "006A")]
        assert "close dates 9 days apart" in flags[0]["review_reason"]
        beside = wh.query(f"SELECT origin, COUNT(*) AS n FROM {ds}.v_deals_beside_opportunities GROUP BY origin "
                          f"ORDER BY origin")
        assert beside == [{"origin": "hubspot", "n": 3}, {"origin": "salesforce", "n": 2}]

    def test_the_same_deal_in_two_exports_is_flagged_for_review(self, runtime, tmp_path):
        """A deal in two folders' exports (same account, similar name, close dates near) is one pair to review;
        another deal of that account with another number is not."""
        for folder, crm_headers, rows in (
                ("acquired", "Deal Name,Company Name,Deal Stage,Pipeline,Close Date,Deal Owner,Record ID",
                 ["Rollout 2027,ACME Inc.,closedwon,default,03/01/2027,Kim,1", "Rollout 2028,ACME Inc.,closedwon,default,03/01/2027,Kim,2"]),
                ("subsidiary", "Deal Name;Account Name;Closing Date;Deal Owner;Stage",
                 ["Rollout 2027 (EU);Acme GmbH;10/03/2027;Jo;Closed Won"])):
            path = tmp_path / folder / "deals.csv"
            path.parent.mkdir()
            path.write_text("\n".join([crm_headers, *rows]) + "\n")
            assert import_drop(local_file(path), runtime)["drop_status"] == "loaded"
        pairs = runtime.warehouse.query(f"SELECT deal_name, other_deal_name, source_crm, other_source_crm, review_reason "
                                        f"FROM {runtime.warehouse.dataset}.v_crm_deal_duplicates")
        assert [{p["deal_name"], p["other_deal_name"]} for p in pairs] == [{"Rollout 2027", "Rollout 2027 (EU)"}]
        assert "9 days apart" in pairs[0]["review_reason"]

    @pytest.mark.parametrize("name", ["Société Générale S.A.", "ACME, Inc.", "Müller & Söhne GmbH", "Øresund AB",
                                      "  Globex   Corporation ", "Café Olé S.L.", "Umbrella \"Health\" Ltd", "Co-op",
                                      "Philips N.V.", "Casa S.A.S."])
    def test_the_view_normalises_account_names_as_the_import_does(self, runtime, name):
        """A Salesforce account whose name normalises (in the view's SQL) as the deal's account did (in Python) is
        a name candidate for review."""
        from datetime import datetime, timezone

        from cloud_functions.file_drop.records import normalized_name

        wh, ds = runtime.warehouse, runtime.warehouse.dataset
        wh.merge("sf_accounts", [{"id": "001N", "name": name, "is_deleted": False,
                                  "system_modstamp": datetime(2026, 1, 1, tzinfo=timezone.utc)}])
        wh.merge("crm_deals", [{"deal_key": "k", "source_crm": "generic", "deal_name": "d",
                                "account_name_normalized": normalized_name(name)}])
        rows = wh.query(f"SELECT sf_account_id, needs_review FROM {ds}.v_crm_deal_account_matches")
        assert rows == [{"sf_account_id": "001N", "needs_review": True}]


class TestBothWarehouses:
    def test_an_export_loads_once_on_either_warehouse(self, org_runtime, tmp_path):
        """On DuckDB and on the BigQuery emulator (load jobs, MERGE, JSON raw rows): the deals load with their
        values and lineage, the same content dropped again loads nothing."""
        export = write_export(tmp_path, "vtiger", VARIANTS[8], seed=11)
        first = import_drop(local_file(export.path), org_runtime)
        copy = tmp_path / "again" / "deals.csv"
        copy.parent.mkdir()
        copy.write_bytes(export.path.read_bytes())
        second = import_drop(local_file(copy), org_runtime)
        assert (first["drop_status"], second["drop_status"]) == ("loaded", "duplicate")
        wh = org_runtime.warehouse
        rows = wh.query(f"SELECT * FROM {wh.dataset}.crm_deals ORDER BY row_number")
        assert [deal_values(row) for row in rows] == export.deals
        assert rows[0]["raw_row"]["potentialname"] == export.deals[0].deal_name
        statuses = sorted(r["status"] for r in wh.query(f"SELECT status FROM {wh.dataset}.file_drops"))
        assert statuses == ["duplicate", "loaded"]
