"""What the benchmarks' child processes measure about themselves, and the environment they run in."""
from __future__ import annotations


def peak_mb() -> float:
    """This process's own peak resident memory in MB (VmHWM of its address space).

    Not getrusage's ru_maxrss: Linux keeps that across fork and exec, so a child started by a parent that
    held 1.4 GB of generated rows reported 1.4 GB whatever it used itself.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


class RuntimePackagesOnly:
    """Refuses pandas: it is here for dlt and Splink only, and pyarrow imports it (~35 MB, 0.3 s) whenever it
    is importable, which the pipeline's own environment (requirements.txt) never allows."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] == "pandas":
            raise ModuleNotFoundError("pandas is not a runtime requirement of the pipeline")
