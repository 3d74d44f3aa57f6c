"""The Cloud Scheduler jobs: every registered source's (its source.yaml `schedule`, config/sources.py), then
config/schedules.yaml's, for the scheduler script, the local scheduler and `report`'s freshness (Terraform reads
the same YAML files itself)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from config.sources import registered

SCHEDULES = Path(__file__).with_name("schedules.yaml")


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str
    function: str
    body: dict[str, Any]
    attempt_deadline: str
    retry: dict[str, Any] = field(default_factory=dict)
    description: str = ""


def schedules(path: Path = SCHEDULES) -> dict[str, Any]:
    """schedules.yaml with every registered source's jobs (its entry point as their function) put before the file's,
    and its stale_after_hours beside the file's."""
    data = yaml.safe_load(path.read_text())
    sources = registered().values()
    jobs = [{**job, "function": source.entry_point} for source in sources for job in source.schedule["jobs"]]
    stale = {source.name: source.schedule["stale_after_hours"] for source in sources}
    return {**data, "jobs": jobs + data["jobs"],
            "freshness": {"stale_after_hours": {**stale, **data["freshness"]["stale_after_hours"]}}}


def load_jobs(path: Path = SCHEDULES, *, push: bool = False) -> tuple[str, list[Job]]:
    """(time zone, jobs) of the sources and schedules.yaml, in that order; a job's deadline and retry fall back to
    the defaults. push: schedules.yaml's push jobs too (watch renewal, probe: scheduled like the syncs, no syncs)."""
    data = schedules(path)
    defaults = data.get("defaults", {})
    return data["time_zone"], [
        Job(j["name"], j["schedule"], j["function"], j["body"], str(j.get("attempt_deadline", defaults["attempt_deadline"])),
            {**defaults.get("retry", {}), **j.get("retry", {})}, j.get("description", ""))
        for j in data["jobs"] + (data.get("push_jobs", []) if push else [])]
