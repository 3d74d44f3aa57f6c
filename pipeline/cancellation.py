"""Stopping a run cleanly: Ctrl-C (SIGINT) and SIGTERM become exceptions that close the run as `cancelled`.

A process must install its own handlers: one started in the background by a non-interactive shell inherits
SIGINT ignored (Python then installs no KeyboardInterrupt handler), and Python's default for SIGTERM is to
die at once, with the run left `running` and its lease held. Cloud Run and Cloud Functions stop instances
with SIGTERM.
"""
from __future__ import annotations

import signal
import threading
from types import FrameType


class RunCancelled(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so no `except Exception` fallback swallows it."""

    def __init__(self, signal_name: str = "SIGTERM"):
        super().__init__(f"stopped by {signal_name}")
        self.signal_name = signal_name


# What ends a run as `cancelled` rather than `failed`.
CANCELLING = (KeyboardInterrupt, RunCancelled)


def cancel_reason(stop: BaseException) -> str:
    """The text recorded for a cancelled run."""
    if isinstance(stop, KeyboardInterrupt):
        return "stopped by SIGINT (Ctrl-C)"
    return str(stop)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise RunCancelled(signal.Signals(signum).name)


def install_stop_handlers() -> None:
    """SIGINT raises KeyboardInterrupt and SIGTERM RunCancelled in the main thread, whatever the process
    inherited. Only the main thread may install handlers: elsewhere (a server's worker thread) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
