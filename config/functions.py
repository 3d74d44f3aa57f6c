"""The deployment: the registered sources' functions and secrets (config/sources.py) and config/functions.yaml's
(the functions that are no source, the fixed and chosen settings), for the deploy scripts and the tests.

`python -m config.functions` prints one line per function: entry point, memory, timeout seconds, max
instances, trigger (`http`, `storage` or `topic:<name>`) and access (`private` or `public`) (what
scripts/deploy_functions.sh reads; Terraform reads the same YAML files itself). `secrets` prints the
secret names, `environment` the fixed settings as NAME=VALUE, `settings` the names each deployment sets.
"""
from __future__ import annotations

import argparse
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from config.sources import registered

FUNCTIONS_FILE = Path(__file__).with_name("functions.yaml")


class FunctionSize(NamedTuple):
    entry_point: str
    memory: str  # Cloud Functions' form: 512Mi, 1Gi
    timeout_seconds: int  # also the function's FUNCTION_TIMEOUT_SECONDS
    max_instances: int
    trigger: str = "http"  # or storage: Eventarc, on each object finalized in the drop bucket
    public: bool = False  # invocable without a Google identity (the two webhooks only)


class Deployment(NamedTuple):
    """What both deploy paths deploy: the functions, the secrets they read, their fixed and chosen settings."""

    functions: dict[str, FunctionSize]
    secrets: tuple[str, ...]
    environment: dict[str, str]
    settings: tuple[str, ...]


@lru_cache(maxsize=4)
def _read(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def function_sizes(path: Path = FUNCTIONS_FILE) -> dict[str, FunctionSize]:
    """Entry point => its size and limits: the registered sources' (in their folders' order), then the file's."""
    sources = registered().values()
    # A source's worker (queue mode): its sync function's size, one instance unless functions.yaml gives it the
    # count config/quotas.py derives from the API's quota.
    workers = {source.worker.rpartition(".")[2]: {**source.function, "max_instances": 1} for source in sources
               if source.worker}
    entries = {**{source.entry_point: source.function for source in sources}, **workers, **_read(path)["functions"]}
    return {name: FunctionSize(name, str(spec["memory"]), int(spec["timeout_seconds"]), int(spec["max_instances"]),
                               str(spec.get("trigger", "http")), bool(spec.get("public", False)))
            for name, spec in entries.items()}


def deployment(path: Path = FUNCTIONS_FILE) -> Deployment:
    """The whole deployment, typed: the file's and the registered sources'."""
    data = _read(path)
    secrets = [name for source in registered().values() for name in source.secrets] + list(data["secrets"] or [])
    return Deployment(function_sizes(path), tuple(dict.fromkeys(secrets)),
                      {name: str(value) for name, value in data["environment"].items()}, tuple(data["settings"]))


def _lines(what: str) -> list[str]:
    config = deployment()
    if what == "secrets":
        return list(config.secrets)
    if what == "environment":
        return [f"{name}={value}" for name, value in config.environment.items()]
    if what == "settings":
        return list(config.settings)
    return [f"{s.entry_point} {s.memory} {s.timeout_seconds} {s.max_instances} {s.trigger} "
            f"{'public' if s.public else 'private'}"
            for s in config.functions.values()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.functions", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="sizes", choices=["sizes", "secrets", "environment", "settings"],
                        help="sizes (default): entry point, memory, timeout, max instances, trigger per function")
    print("\n".join(_lines(parser.parse_args(argv).what)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
