"""The source registry: one declaration per source, cloud_functions/<entry point>/source.yaml (README "Adding a
source"). A folder with that file is a registered source; nothing else lists the sources.

Derived from the declarations rather than listed by hand: the root main.py's source entry points, the work queue's
sources (pipeline/worker.py), the deployment's functions and secrets (config/functions.py
for deploy_functions.sh and setup_secrets.sh; Terraform reads the same files with fileset + yamldecode), the local
runner's sources (scripts/local_sources.py), the tables entity resolution scopes and updates (entity_resolution/
matcher.py), the Cloud Scheduler jobs and freshness (config/schedules.py), the per-source branches of v_activity_timeline (scripts/generate_views.py, checked by a test), and the
shared contract suite (tests/contracts/test_every_source.py). Only names are read here: a source's modules are
imported when something uses them, so `report` or `sql` never load the API clients.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

SOURCES_DIR = Path(__file__).resolve().parent.parent / "cloud_functions"
DECLARATION = "source.yaml"
REQUIRED = ("name", "description", "function", "secrets", "request", "run", "connection_check", "credentials",
            "sandbox", "schedule", "tables", "match")
OPTIONAL = ("list_streams", "stream_job", "worker", "timeline")


class DeclarationError(ValueError):
    """A source.yaml that cannot be used: the message names the file and what is wrong."""


@dataclass(frozen=True)
class MatchColumn:
    """A column entity resolution matches to Salesforce: an email (the table has its domain too, in `domain`) or an
    E.164 number. A table with two matched columns names each one's match columns by a prefix (`phone_matched_at`)."""

    table: str
    column: str
    kind: Literal["email", "phone"]
    prefix: str = ""
    domain: str = "domain"


@dataclass(frozen=True)
class SourceDeclaration:
    """One source as its source.yaml declares it. Module names (request, run, ...) are `module.attribute` in the
    source's own folder; `sandbox` is a full `package.module.function` (sandbox/ is not deployed)."""

    name: str
    entry_point: str  # the folder's name: the function Cloud Functions deploys
    description: str
    function: dict[str, Any]  # memory, timeout_seconds, max_instances (config/functions.yaml's form)
    secrets: tuple[str, ...]
    request: str
    run: str
    connection_check: str
    credentials: str
    list_streams: str | None  # the work queue's: the streams a request names (None: no queue mode)
    stream_job: str | None  # the work queue's: one stream's SyncJob
    worker: str | None  # the Pub/Sub-pushed worker entry point, in main.py (a name of the root main.py too)
    sandbox: str
    schedule: dict[str, Any]  # stale_after_hours, and jobs as config/schedules.yaml's less their `function`
    tables: tuple[str, ...]
    match: tuple[MatchColumn, ...]
    timeline: str | None  # a file in the folder: this source's SELECT of v_activity_timeline's columns

    @property
    def folder(self) -> Path:
        return SOURCES_DIR / self.entry_point

    def attribute(self, name: str) -> Any:
        """The object a declared `module.attribute` names in this source's folder (its module imported now)."""
        module, _, attribute = name.rpartition(".")
        return getattr(importlib.import_module(f"cloud_functions.{self.entry_point}.{module}"), attribute)

    def local_sandbox(self) -> Any:
        """The function giving the unstarted sandbox `make run` uses, from the settings."""
        module, _, attribute = self.sandbox.rpartition(".")
        return getattr(importlib.import_module(module), attribute)

    def timeline_sql(self) -> str | None:
        return (self.folder / self.timeline).read_text().strip() if self.timeline else None


def read_declaration(path: Path) -> SourceDeclaration:
    """The declaration in path; DeclarationError naming the file when a key is missing, unknown or mistyped."""
    data = yaml.safe_load(path.read_text()) or {}
    where = path.relative_to(SOURCES_DIR.parent) if path.is_relative_to(SOURCES_DIR.parent) else path
    missing = [key for key in REQUIRED if key not in data]
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if missing or unknown:
        raise DeclarationError(f"{where}: " + "; ".join(
            part for part in (missing and f"missing {', '.join(missing)}", unknown and f"unknown {', '.join(unknown)}")
            if part))
    try:
        match = tuple(MatchColumn(m["table"], m["column"], m["kind"]) for m in data["match"] or [])
    except (KeyError, TypeError) as error:
        raise DeclarationError(f"{where}: each match entry needs table, column and kind ({error})") from None
    if any(m.kind not in ("email", "phone") for m in match):
        raise DeclarationError(f"{where}: a match entry's kind is email or phone")
    if not isinstance(data["schedule"], dict) or {"stale_after_hours", "jobs"} - set(data["schedule"]):
        raise DeclarationError(f"{where}: schedule needs stale_after_hours and jobs")
    return SourceDeclaration(
        name=str(data["name"]), entry_point=path.parent.name, description=str(data["description"]),
        function=dict(data["function"]), secrets=tuple(data["secrets"] or ()), request=data["request"],
        run=data["run"], connection_check=data["connection_check"], credentials=data["credentials"],
        list_streams=data.get("list_streams"), stream_job=data.get("stream_job"), worker=data.get("worker"),
        sandbox=data["sandbox"], schedule=dict(data["schedule"]), tables=tuple(data["tables"] or ()),
        match=match, timeline=data.get("timeline"))


@lru_cache(maxsize=1)
def registered() -> dict[str, SourceDeclaration]:
    """Every registered source by name, in the order of their folders' names."""
    declarations = [read_declaration(path) for path in sorted(SOURCES_DIR.glob(f"*/{DECLARATION}"))]
    names = [d.name for d in declarations]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DeclarationError(f"two sources declare the name {', '.join(duplicates)}")
    return {d.name: d for d in declarations}


def entry_points() -> dict[str, Any]:
    """Every registered source's entry points by name (its sync's, and its worker's when it has one), for the root
    main.py: each source's main.py is imported."""
    found = {}
    for source in registered().values():
        found[source.entry_point] = source.attribute(f"main.{source.entry_point}")
        if source.worker:
            found[source.worker.rpartition(".")[2]] = source.attribute(source.worker)
    return found


def match_columns() -> list[MatchColumn]:
    """Every column entity resolution matches, source by source."""
    # Sources sharing tables (Zoom and Meet: meeting_participants) declare the same columns: each is matched once.
    return list(dict.fromkeys(column for source in registered().values() for column in source.match))
