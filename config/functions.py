"""The deployed functions and their sizes (config/functions.yaml), for the deploy script and the tests.

`python -m config.functions` prints one line per function: entry point, memory, timeout seconds, max
instances (what scripts/deploy_functions.sh reads; Terraform reads the YAML itself).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import yaml

FUNCTIONS_FILE = Path(__file__).with_name("functions.yaml")


class FunctionSize(NamedTuple):
    entry_point: str
    memory: str  # Cloud Functions' form: 512Mi, 1Gi
    timeout_seconds: int  # also the function's FUNCTION_TIMEOUT_SECONDS
    max_instances: int


def function_sizes(path: Path = FUNCTIONS_FILE) -> dict[str, FunctionSize]:
    """Entry point => its size and limits, in the file's order."""
    entries = yaml.safe_load(path.read_text())["functions"]
    return {name: FunctionSize(name, str(spec["memory"]), int(spec["timeout_seconds"]), int(spec["max_instances"]))
            for name, spec in entries.items()}


if __name__ == "__main__":
    for size in function_sizes().values():
        print(size.entry_point, size.memory, size.timeout_seconds, size.max_instances)
