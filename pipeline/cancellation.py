"""Stopping a run cleanly: Ctrl-C (SIGINT) and SIGTERM become exceptions that close the run as `cancelled`.

A process must install its own handlers: one started in the background by a non-interactive shell inherits
SIGINT ignored (Python then installs no KeyboardInterrupt handler), and Python's default for SIGTERM is to
die at once, with the run left `running` and its lease held. The local runner installs them. A deployed
function does not: Cloud Run's SIGTERM goes to the server, whose worker threads run the requests, so a run
killed there is closed as `abandoned` once its lease lapses (STREAM_LEASE_SECONDS).
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


_requested: str | None = None


def cancellation_for(error: BaseException) -> BaseException | None:
    """The cancelling exception an error stands for: the error itself when it is one, a new one when a stop
    signal arrived (the error is then what it interrupted: DuckDB turns a signal that arrives during a query into
    its own "Query interrupted"); None for an ordinary error. A process that received a stop signal is stopping,
    so every error after it stands for the stop."""
    if isinstance(error, CANCELLING):
        return error
    if _requested == "SIGINT":
        return KeyboardInterrupt()
    return RunCancelled(_requested) if _requested else None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = "SIGINT"
    raise KeyboardInterrupt


def _terminate(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = signal.Signals(signum).name
    raise RunCancelled(_requested)


def install_stop_handlers() -> None:
    """SIGINT raises KeyboardInterrupt and SIGTERM RunCancelled in the main thread, whatever the process
    inherited. Only the main thread may install handlers: elsewhere (a server's worker thread) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _terminate)
