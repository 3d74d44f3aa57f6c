"""docs/SETUP.md, the first-deploy guide: its secrets are the deployment's, its commands of this repository run."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.functions import deployment
from config.schedules import load_jobs
from config.sources import registered

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "SETUP.md"
# A secret's name starts with its source's (zoom-client-id); every registered source's name counts.
SECRET_NAME = re.compile(rf"\b((?:{'|'.join(registered())})-[a-z]+(?:-[a-z]+)*)\b")


def guide_commands() -> list[str]:
    """Each command of the guide's sh blocks, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), re.S)
    text = "\n".join(re.sub(r"\\\n\s*", " ", block) for block in blocks)
    return [line.strip() for line in text.splitlines() if line.strip()]


def repository_commands() -> list[list[str]]:
    """The guide's commands that are this repository's (scripts/*.sh, python -m ...), written inline or in blocks,
    cut to the program and its subcommands, ready for --help."""
    inline = re.findall(r"`((?:scripts/\S+\.sh|(?:\.venv/bin/)?python -m [\w.]+)[^`]*)`", GUIDE.read_text())
    found = []
    for command in [*guide_commands(), *inline]:
        if not re.match(r"(scripts/|(\.venv/bin/)?python -m )", command):
            continue  # gcloud, terraform, bq, curl: not runnable here
        words = shlex.split(command)
        if words[0].startswith("scripts/") and words[0].endswith(".sh"):
            found.append(["bash", words[0]])
        elif words[0] in ("python", ".venv/bin/python") and words[1:2] == ["-m"]:
            program = [sys.executable, "-m", words[2]]
            program += [w for w in words[3:] if re.fullmatch(r"[a-z][a-z_-]*", w)][:1]
            found.append(program)
    return found


def test_every_secret_named_is_one_both_deploy_paths_create():
    """Every secret the guide names is in functions.yaml (which setup_secrets.sh and Terraform read; their own
    tests hold them to it), and the guide says what goes in each of them."""
    jobs = {job.name for job in load_jobs()[1]}  # salesforce-incremental-sync and the like are jobs
    named = set(SECRET_NAME.findall(GUIDE.read_text())) - jobs
    secrets = set(deployment().secrets)
    assert named - secrets == set(), "the guide names secrets nobody creates"
    assert secrets - named == set(), "the guide leaves secrets unexplained"
    table = {m for m in re.findall(r"^\| `([a-z-]+)` \|", GUIDE.read_text(), re.M)}
    assert table == secrets


def test_the_guide_shows_the_repository_commands():
    """The guide walks through both deploy scripts, the scheduler script and `check` (so the next test has
    something to run)."""
    programs = {" ".join(p[1:]) if p[0] == "bash" else " ".join(p[2:]) for p in repository_commands()}
    assert {"scripts/setup_secrets.sh", "scripts/deploy_functions.sh", "scripts.setup_cloud_scheduler",
            "scripts.run_local check"} <= programs


@pytest.mark.parametrize("program", repository_commands(), ids=lambda p: " ".join(p[1:] if p[0] == "bash" else p[2:]))
def test_every_repository_command_answers_help(program):
    """Each command of this repository the guide shows exists and answers --help."""
    result = subprocess.run([shutil.which(program[0]) or program[0], *program[1:], "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_the_gmail_scope_is_the_one_the_code_asks_for():
    """The guide's Gmail scope is the code's, and it says where in the Admin console to grant it."""
    from cloud_functions.gmail_sync.auth import SCOPES

    text = GUIDE.read_text()
    assert SCOPES == ["https://www.googleapis.com/auth/gmail.readonly"] and SCOPES[0] in text
    assert "Security > Access and data control > API controls > Manage Domain Wide Delegation" in text


def test_readme_links_the_guide():
    """README's deploy section sends a first deploy to the guide."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying to Google Cloud"):readme.index("## Troubleshooting")]
    assert "docs/SETUP.md" in section
