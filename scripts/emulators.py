"""The emulators as processes: started in a session of their own, waited for on their port, stopped at the end.

One place for the test suite's fixtures (tests/conftest.py) and the local runner's queue mode (`run_local fan-out`
starts the Pub/Sub emulator when PUBSUB_EMULATOR_HOST is not set).
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, log_path: Path, timeout: float = 60.0) -> None:
    """Returns once 127.0.0.1:port accepts connections; RuntimeError with the log's end when the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}; its log ends:\n{tail}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:g} s (log: {log_path})")


@contextlib.contextmanager
def running(name: str, command: list[str], port: int, log_dir: Path | None = None) -> Iterator[None]:
    """Runs an emulator process in its own session until the block ends; its output goes to a log file."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower())
    log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"{slug}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, process, name, log_path)
        yield
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def pubsub_command(gcloud: str, port: int) -> list[str]:
    """The Pub/Sub emulator of the Google Cloud SDK on 127.0.0.1:port (it needs Java)."""
    return [gcloud, "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}", "--quiet"]
