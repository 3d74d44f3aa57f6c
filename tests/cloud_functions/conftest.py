"""Fixtures the source tests share."""
from __future__ import annotations

import pytest

from pipeline.runtime import Runtime


@pytest.fixture(params=["duckdb", pytest.param("bigquery", marks=pytest.mark.emulator)])
def org_runtime(request, settings, monkeypatch):
    """A runtime on DuckDB or on the BigQuery emulator."""
    import pipeline.runtime

    wh = request.getfixturevalue("warehouse" if request.param == "duckdb" else "bigquery_warehouse")
    rt = Runtime.around(wh.__dict__.get("_settings", settings), wh)
    monkeypatch.setattr(pipeline.runtime, "_runtime", rt)
    return rt
