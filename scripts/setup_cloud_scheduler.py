"""Creates or updates the Cloud Scheduler jobs of config/schedules.yaml (the Terraform-free path).

    python -m scripts.setup_cloud_scheduler --project P [--region R] [--dry-run]

Each job POSTs its JSON body to its function's URL with an OIDC token of the scheduler service
account. A job naming a function main.py does not export is refused.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import main as entry_points
from config.schedules import Job, load_jobs


def gcloud_command(job: Job, time_zone: str, project: str, region: str, uri: str, invoker: str, verb: str) -> list[str]:
    retry = job.retry
    return ["gcloud", "scheduler", "jobs", verb, "http", job.name, f"--project={project}", f"--location={region}",
            f"--schedule={job.schedule}", f"--time-zone={time_zone}", f"--uri={uri}",
            "--http-method=POST", f"--message-body={json.dumps(job.body)}",
            "--headers=Content-Type=application/json", f"--oidc-service-account-email={invoker}",
            f"--oidc-token-audience={uri}",
            f"--attempt-deadline={job.attempt_deadline}",
            f"--max-retry-attempts={retry['retry_count']}", f"--min-backoff={retry['min_backoff']}",
            f"--max-backoff={retry['max_backoff']}", f"--max-doublings={retry['max_doublings']}",
            f"--description={job.description}"]


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
    time_zone, jobs = load_jobs(push=True)
    unknown = sorted({job.function for job in jobs} - set(entry_points.__all__))
    if unknown:
        raise SystemExit(f"setup_cloud_scheduler: schedules.yaml names functions main.py does not export: {unknown}")
    project = args.project or "PROJECT"
    if not args.dry_run:
        if shutil.which("gcloud") is None:
            raise SystemExit("setup_cloud_scheduler: gcloud is not installed: https://cloud.google.com/sdk/docs/install")
        if not args.project:
            raise SystemExit("setup_cloud_scheduler: --project is required")
    invoker = f"sales-intel-scheduler@{project}.iam.gserviceaccount.com"
    for job in jobs:
        if args.dry_run:
            uri = f"<URL of function {job.function.replace('_', '-')}>"
            print(f"create {job.name:<28} {job.schedule:<14} -> {job.function} POST {json.dumps(job.body)}")
            print("       " + " ".join(gcloud_command(job, time_zone, project, args.region, uri, invoker, "create")))
            continue
        uri = function_uri(job.function, project, args.region)
        exists = subprocess.run(["gcloud", "scheduler", "jobs", "describe", job.name, f"--project={project}",
                                 f"--location={args.region}"], capture_output=True).returncode == 0
        verb = "update" if exists else "create"
        subprocess.run(gcloud_command(job, time_zone, project, args.region, uri, invoker, verb), check=True)
        print(f"{verb}d {job.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
