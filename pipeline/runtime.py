"""What every function invocation shares in a process: settings, warehouse, error publisher, secrets.

Created once per process (Cloud Functions reuses instances across invocations) and passed down;
tests build their own Runtime instead of touching the process-wide one.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from config.secrets import SecretStore
from config.settings import Settings, get_settings
from observability.logger import configure_logging
from observability.monitoring import ErrorPublisher
from warehouse import Warehouse, open_warehouse


@dataclass
class Runtime:
    settings: Settings
    warehouse: Warehouse
    publisher: ErrorPublisher
    secrets: SecretStore

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        """A runtime whose warehouse has every table.

        The embedded warehouse creates what is missing (milliseconds); on BigQuery the tables and views
        belong to Terraform (or `run_local init` with WAREHOUSE=bigquery), so a cold start spends no
        API calls or DDL jobs on them.
        """
        warehouse = open_warehouse(settings)
        if settings.warehouse == "duckdb":
            warehouse.ensure_schema()
        return cls.around(settings, warehouse)

    @classmethod
    def around(cls, settings: Settings, warehouse: Warehouse) -> "Runtime":
        """A runtime over a warehouse opened elsewhere, with the settings' error sink and secrets."""
        return cls(settings, warehouse, ErrorPublisher(settings), SecretStore(settings))


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime, created on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            settings = get_settings()
            configure_logging(settings.log_level)
            _runtime = Runtime.from_settings(settings)
        return _runtime


def set_runtime(runtime: Runtime) -> None:
    """Makes runtime the process-wide one (the local runner points the entry points at its sandboxes)."""
    global _runtime
    with _lock:
        _runtime = runtime
