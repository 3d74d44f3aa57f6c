"""Creates or updates the Cloud Scheduler jobs of config/schedules.yaml (the Terraform-free path).

    python scripts/setup_cloud_scheduler.py --project P [--region R] [--dry-run]

Each job POSTs its JSON body to its function's URL with an OIDC token of the scheduler service
account. A job whose function is not exported by main.py yet is skipped and said so.
"""
from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEDULES = ROOT / "config" / "schedules.yaml"


def load_jobs() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(defaults with time_zone, jobs) from schedules.yaml."""
    data = yaml.safe_load(SCHEDULES.read_text())
    return {**data.get("defaults", {}), "time_zone": data["time_zone"]}, data["jobs"]


def exported_entry_points() -> set[str]:
    sys.path.insert(0, str(ROOT))
    return set(importlib.import_module("main").__all__)


def gcloud_command(job: dict[str, Any], defaults: dict[str, Any], project: str, region: str, uri: str,
                   invoker: str, verb: str) -> list[str]:
    retry = {**defaults.get("retry", {}), **job.get("retry", {})}
    return ["gcloud", "scheduler", "jobs", verb, "http", job["name"], f"--project={project}", f"--location={region}",
            f"--schedule={job['schedule']}", f"--time-zone={defaults['time_zone']}", f"--uri={uri}",
            "--http-method=POST", f"--message-body={json.dumps(job['body'])}",
            "--headers=Content-Type=application/json", f"--oidc-service-account-email={invoker}",
            f"--oidc-token-audience={uri}",
            f"--attempt-deadline={job.get('attempt_deadline', defaults['attempt_deadline'])}",
            f"--max-retry-attempts={retry['retry_count']}", f"--min-backoff={retry['min_backoff']}",
            f"--max-backoff={retry['max_backoff']}", f"--max-doublings={retry['max_doublings']}",
            f"--description={job.get('description', '')}"]


def function_uri(name: str, project: str, region: str) -> str:
    out = subprocess.run(["gcloud", "functions", "describe", name.replace("_", "-"), "--gen2", f"--project={project}",
                          f"--region={region}", "--format=value(serviceConfig.uri)"], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"setup_cloud_scheduler: function {name} is not deployed in {project}/{region}: "
                         f"run scripts/deploy_functions.sh {name} first")
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", default=None)
    parser.add_argument("--region", default="us-central1")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done, change nothing")
    args = parser.parse_args(argv)
    defaults, jobs = load_jobs()
    entry_points = exported_entry_points()
    project = args.project or "PROJECT"
    if not args.dry_run:
        if shutil.which("gcloud") is None:
            raise SystemExit("setup_cloud_scheduler: gcloud is not installed: https://cloud.google.com/sdk/docs/install")
        if not args.project:
            raise SystemExit("setup_cloud_scheduler: --project is required")
    invoker = f"sales-intel-scheduler@{project}.iam.gserviceaccount.com"
    for job in jobs:
        if job["function"] not in entry_points:
            print(f"skip   {job['name']:<28} {job['schedule']:<14} -> {job['function']} (not exported by main.py yet)")
            continue
        if args.dry_run:
            uri = f"<URL of function {job['function'].replace('_', '-')}>"
            print(f"create {job['name']:<28} {job['schedule']:<14} -> {job['function']} "
                  f"POST {json.dumps(job['body'])}")
            print("       " + " ".join(gcloud_command(job, defaults, project, args.region, uri, invoker, "create")))
            continue
        uri = function_uri(job["function"], project, args.region)
        exists = subprocess.run(["gcloud", "scheduler", "jobs", "describe", job["name"], f"--project={project}",
                                 f"--location={args.region}"], capture_output=True).returncode == 0
        verb = "update" if exists else "create"
        subprocess.run(gcloud_command(job, defaults, project, args.region, uri, invoker, verb), check=True)
        print(f"{verb}d {job['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
