"""The source registry (config/sources.py): every declaration usable, and everything derived from it agreeing."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import main
from config.functions import deployment
from config.schedules import load_jobs, schedules
from config.sources import DeclarationError, SourceDeclaration, read_declaration, registered
from entity_resolution.match_tables import matched, scope_parts
from scripts.local_sources import SOURCES as LOCAL_SOURCES
from warehouse.schemas import load_table_specs

SOURCES = registered()


@pytest.fixture(params=sorted(SOURCES))
def source(request) -> SourceDeclaration:
    return SOURCES[request.param]


class TestDeclarations:
    def test_every_name_a_declaration_gives_resolves(self, source):
        """The request model, run function, connection check, credentials check, sandbox factory (and the work
        queue's stream lister, stream job and worker when given) exist under the names declared."""
        names = [source.request, source.run, source.connection_check, source.credentials]
        queue = [source.list_streams, source.stream_job, source.worker]
        assert all(callable(source.attribute(name)) for name in names + [n for n in queue if n])
        assert callable(source.local_sandbox())

    def test_the_work_queue_finds_the_declared_functions(self, source):
        """pipeline/worker.py reaches a queue-mode source's declared stream lister and stream job in one module."""
        from pipeline.worker import source_module

        if not source.list_streams:
            pytest.skip(f"{source.name} has no queue mode")
        module = source_module(source.name)
        assert module.requested_streams is source.attribute(source.list_streams)
        assert module.stream_job is source.attribute(source.stream_job)

    def test_tables_and_match_columns_exist(self, source):
        """Each declared table has a schema; each matched column is in its table, with the match columns (and a
        domain for emails) entity resolution writes."""
        specs = load_table_specs()
        assert set(source.tables) <= set(specs), set(source.tables) - set(specs)
        for match in source.match:
            columns = {column.name for column in specs[match.table].columns}
            needed = {match.column, "sf_contact_id", "sf_lead_id", "sf_account_id", "match_method", "matched_at"}
            assert needed | ({"domain"} if match.kind == "email" else set()) <= columns, match

    def test_a_source_is_deployed_exported_scheduled_and_local(self, source):
        """Its function and secrets are in the deployment, main.py exports its entry point, a scheduler job calls it
        and it has a freshness, and the local runner drives it."""
        assert source.entry_point in deployment().functions and set(source.secrets) <= set(deployment().secrets)
        assert source.entry_point in main.__all__
        assert source.entry_point in {job.function for job in load_jobs()[1]}
        assert source.name in schedules()["freshness"]["stale_after_hours"]
        assert LOCAL_SOURCES[source.name].declaration == source

    def test_its_matched_tables_are_in_the_resolution_scope(self, source):
        """01_scope.sql's parts read every table the source declares as matched, and only the values of its column."""
        parts = scope_parts("ds", {m.table: "TRUE" for m in matched()})  # the sources' and the file drops'
        for match in source.match:
            kind = "email" if match.kind == "email" else "phone"
            assert f"FROM ds.{match.table} AS {match.table}" in parts[f"new_{kind}_rows"]
            assert f"{match.table}.{match.column} AS value" in parts[f"{kind}_rows"]


class TestReading:
    def test_a_declaration_missing_a_key_or_with_an_unknown_one_is_refused(self, tmp_path):
        """A missing key, or a misspelt one, is an error naming the file and the keys."""
        folder = tmp_path / "zoom_sync"
        folder.mkdir()
        good = yaml.safe_load((SOURCES["hubspot"].folder / "source.yaml").read_text())
        path = Path(folder / "source.yaml")
        path.write_text(yaml.safe_dump({**{k: v for k, v in good.items() if k != "run"}, "shedule": "daily"}))
        with pytest.raises(DeclarationError, match=r"source.yaml: missing run; unknown shedule"):
            read_declaration(path)

    def test_a_match_of_another_kind_is_refused(self, tmp_path):
        """A match column is an email or a phone number: anything else is an error, not a silent skip."""
        good = yaml.safe_load((SOURCES["hubspot"].folder / "source.yaml").read_text())
        path = tmp_path / "source.yaml"
        path.write_text(yaml.safe_dump({**good, "match": [{"table": "t", "column": "c", "kind": "fax"}]}))
        with pytest.raises(DeclarationError, match="email or phone"):
            read_declaration(path)
