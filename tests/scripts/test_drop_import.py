"""`run_local import`: dropped files loaded from the command line and from a watched folder."""
from __future__ import annotations

from tests.cloud_functions.crm_exports import VARIANTS, write_export
from tests.scripts.test_run_local import run_local


class TestImportCommand:
    def test_files_are_recognised_loaded_and_an_unreadable_one_fails_the_command(self, tmp_path):
        """Each file's line says its CRM, confidence, why and its counts; an unreadable file is exit 1 naming it,
        after the others loaded; importing again loads nothing (duplicate)."""
        hubspot = write_export(tmp_path / "drops", "hubspot", VARIANTS[3], seed=1).path
        pipedrive = write_export(tmp_path / "drops", "pipedrive", VARIANTS[9], seed=2).path
        broken = tmp_path / "drops" / "report.xlsx"
        broken.write_bytes(b"PK\x03\x04 not a csv")
        result = run_local(tmp_path, "import", str(hubspot), str(broken), str(pipedrive))
        assert result.returncode == 1
        assert "could not read" in result.stderr and "report.xlsx" in result.stderr and "zip archive" in result.stderr
        assert "hubspot (100%) loaded, loaded" in result.stdout and "pipedrive (100%) loaded" in result.stdout
        assert "why: HubSpot: 6 of 6 signature headers" in result.stdout
        again = run_local(tmp_path, "import", str(hubspot))
        assert again.returncode == 0 and "hubspot (100%) duplicate, loaded 0" in again.stdout

    def test_an_mbox_is_imported_for_the_mailbox_given(self, tmp_path):
        """`import FILE --mailbox A` loads an mbox into that mailbox's Gmail rows."""
        from tests.cloud_functions.test_file_drop import _mbox

        path = tmp_path / "takeout.mbox"
        path.write_bytes(_mbox(4))
        result = run_local(tmp_path, "import", str(path), "--mailbox", "Sam@OurCompany.example")
        assert result.returncode == 0, result.stderr
        assert "mbox loaded, loaded" in result.stdout and "mbox of sam@ourcompany.example" in result.stdout


class TestWatch:
    def test_a_file_that_appears_is_imported_once_its_size_holds(self, runtime, tmp_path, monkeypatch):
        """The watcher imports a new file on the poll after its size stopped changing, and each version once."""
        import scripts.drop_import as drop_import

        monkeypatch.setattr(drop_import, "POLL_SECONDS", 0.01)
        folder = tmp_path / "drops"
        export = write_export(folder, "zoho", VARIANTS[4], seed=3)
        lines: list[str] = []
        drop_import.watch(folder, runtime, polls=3, say=lines.append)
        assert sum("zoho (100%) loaded" in line for line in lines) == 1
        (count,) = runtime.warehouse.query(f"SELECT COUNT(*) AS n FROM {runtime.warehouse.dataset}.crm_deals")
        assert count["n"] == len(export.deals)
