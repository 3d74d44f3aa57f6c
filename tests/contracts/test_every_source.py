"""The contract every registered source (config/sources.py) keeps, run for each by being registered: a full run,
an incremental one that reads what changed and less than the full one, reruns that add nothing (over HTTP, through
functions-framework and main.py), runs cut at their time budget that resume to the same tables, and a poison record
rejected with the rest loaded. Each source's hooks (its small sandbox, how to change what it serves) are
tests/contracts/sources/<name>.py."""
from __future__ import annotations

import importlib
from typing import Any

import pytest

from config.sources import SourceDeclaration, registered
from tests.contracts.sources.base import SourceContract
from tests.helpers import point_at
from warehouse.schemas import table_spec

SOURCES = registered()
RESUME_ATTEMPTS = 12


@pytest.fixture(params=sorted(SOURCES))
def source(request) -> SourceDeclaration:
    return SOURCES[request.param]


def contract_of(source: SourceDeclaration) -> SourceContract:
    """The source's hooks; a registered source without them fails here, saying what to write."""
    try:
        module = importlib.import_module(f"tests.contracts.sources.{source.name}")
    except ModuleNotFoundError:
        pytest.fail(f"{source.name} is registered but has no tests/contracts/sources/{source.name}.py with a Contract "
                    f"(README, Adding a source)")
    return module.Contract()


def keys(warehouse: Any, source: SourceDeclaration) -> dict[str, set[tuple]]:
    """Per table of the source, the primary keys of its rows."""
    found = {}
    for table in source.tables:
        key = table_spec(table).primary_key
        rows = warehouse.query(f"SELECT {', '.join(key)} FROM {warehouse.dataset}.{table}")
        found[table] = {tuple(row[column] for column in key) for row in rows}
    return found


def sync(source: SourceDeclaration, runtime: Any, sync_type: str) -> dict[str, Any]:
    """The source's run function called as its entry point would call it."""
    request = source.attribute(source.request)(sync_type=sync_type, trigger="local")
    return source.attribute(source.run)(request, runtime)


def fetched(result: dict[str, Any]) -> int:
    return sum(run["rows_fetched"] for run in result["runs"])


def succeeded(result: dict[str, Any]) -> bool:
    return bool(result["runs"]) and all(run["status"] == "success" for run in result["runs"])


class TestEverySource:
    def test_full_incremental_and_reruns_over_http(self, source, runtime, monkeypatch, function_server):
        """Over HTTP: a full run loads rows; after changes upstream an incremental run reads them and less than the
        full run did; an incremental and a full rerun then add no row."""
        contract = contract_of(source)
        with contract.sandbox() as sandbox:
            point_at(runtime, sandbox, monkeypatch, **contract.settings)
            server = function_server(source.entry_point)

            def post(body: dict[str, Any]) -> dict[str, Any]:
                response = server.post(body)
                assert response.status_code == 200, response.text
                assert succeeded(response.json()), response.json()["runs"]
                return response.json()

            full = post({"sync_type": "full"})
            assert any(keys(runtime.warehouse, source).values()), "a full run loaded nothing"
            contract.add_records(sandbox)
            incremental = post({})
            assert 0 < fetched(incremental) < fetched(full)
            loaded = keys(runtime.warehouse, source)
            post({})
            assert keys(runtime.warehouse, source) == loaded
            post({"sync_type": "full"})
            assert keys(runtime.warehouse, source) == loaded

    def test_runs_cut_at_their_time_budget_resume_to_the_whole(self, source, runtime, monkeypatch, request):
        """A tiny time budget ends runs partial after a page; repeated runs reach success, and a full run after
        them adds no row (nothing was skipped)."""
        contract = contract_of(source)
        if contract.does_not_resume:
            request.applymarker(pytest.mark.xfail(reason=contract.does_not_resume, strict=True))
        with contract.sandbox() as sandbox:
            point_at(runtime, sandbox, monkeypatch, **contract.settings, **contract.cut(monkeypatch),
                     run_time_budget_seconds=0.0001)
            statuses = []
            for attempt in range(RESUME_ATTEMPTS):
                result = sync(source, runtime, "full" if attempt == 0 else "incremental")
                statuses += [run["status"] for run in result["runs"]]
                if succeeded(result):
                    break
            assert "partial" in statuses and succeeded(result), statuses
            resumed = keys(runtime.warehouse, source)
            runtime.settings = runtime.settings.model_copy(update={"run_time_budget_seconds": 3600})
            assert succeeded(sync(source, runtime, "full"))
            assert keys(runtime.warehouse, source) == resumed

    def test_a_poison_record_is_rejected_and_the_rest_loaded(self, source, runtime, monkeypatch):
        """A NUL in one record upstream: that record alone lands in rejected_records with its key, source and reason,
        and the runs succeed; the next run too (rejecting that record again at most, if it reads it again)."""
        contract = contract_of(source)
        with contract.sandbox() as sandbox:
            point_at(runtime, sandbox, monkeypatch, **contract.settings)
            assert succeeded(sync(source, runtime, "full"))
            poisoned = contract.poison(sandbox)
            result = sync(source, runtime, "incremental")
            assert succeeded(result) and sum(run["rows_rejected"] for run in result["runs"]) == 1, result["runs"]
            (rejected,) = runtime.warehouse.query(
                f"SELECT source, record_key, reason FROM {runtime.warehouse.dataset}.rejected_records")
            assert (rejected["source"], rejected["record_key"]) == (source.name, poisoned)
            assert "NUL character" in rejected["reason"], rejected["reason"]
            assert succeeded(sync(source, runtime, "incremental"))
            keys_rejected = runtime.warehouse.query(
                f"SELECT DISTINCT record_key FROM {runtime.warehouse.dataset}.rejected_records")
            assert keys_rejected == [{"record_key": poisoned}]
