"""The Cloud Scheduler jobs of config/schedules.yaml, for the scheduler script, the local scheduler and
`report`'s freshness (Terraform reads the YAML itself)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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


def load_jobs(path: Path = SCHEDULES, *, push: bool = False) -> tuple[str, list[Job]]:
    """(time zone, jobs) of schedules.yaml, in file order; a job's deadline and retry fall back to the defaults.
    push: the push jobs too (watch renewal, probe: scheduled like the syncs, but no syncs themselves)."""
    data = yaml.safe_load(path.read_text())
    defaults = data.get("defaults", {})
    return data["time_zone"], [
        Job(j["name"], j["schedule"], j["function"], j["body"], str(j.get("attempt_deadline", defaults["attempt_deadline"])),
            {**defaults.get("retry", {}), **j.get("retry", {})}, j.get("description", ""))
        for j in data["jobs"] + (data.get("push_jobs", []) if push else [])]
