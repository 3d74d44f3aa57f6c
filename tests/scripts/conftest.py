"""The sandbox company after one `run_local run --sandboxes` (a process, the real DuckDB file), shared by the
tests that read what a run leaves: the analyst views, the recommendations, the report."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts.test_run_local import run_local


@pytest.fixture(scope="session")
def sandbox_company(tmp_path_factory) -> Path:
    """The directory of a warehouse (wh.duckdb) filled by `run --sandboxes`; pass it to run_local."""
    tmp_path = tmp_path_factory.mktemp("company")
    done = run_local(tmp_path, "run", "--sandboxes")
    assert done.returncode == 0, done.stderr
    return tmp_path
