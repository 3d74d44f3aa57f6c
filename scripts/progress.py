"""Progress of the local runner's syncs on a terminal: per stream, rows merged and rows per second.

Fed by the runner's own log records (pipeline.runner's "run started", each page's record with its
rows_loaded, "run finished"; the run's source and stream come from the log context), so the pipeline
knows nothing about terminals.
tqdm draws the bars on stderr, and only when it is a terminal: piped output stays plain.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

from tqdm import tqdm

from observability.logger import current_context

RUNNER_LOGGER = "pipeline.runner"


class SyncProgress(logging.Handler):
    """A tqdm bar per running stream, advanced by each merged page."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._bars: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        context = current_context()
        run_id = context.get("run_id")
        if run_id is None:
            return
        message = record.getMessage()
        if message == "run started":
            self._bars[run_id] = tqdm(desc=f"{context.get('source')} {context.get('stream')}", unit="rows",
                                      unit_scale=True, leave=False, disable=None, dynamic_ncols=True)
        elif message == "run finished" and run_id in self._bars:
            self._bars.pop(run_id).close()
        elif run_id in self._bars and "rows_loaded" in (fields := getattr(record, "json_fields", {})):  # a page
            bar = self._bars[run_id]
            bar.update(fields["rows_loaded"] - bar.n)


@contextlib.contextmanager
def show_progress() -> Iterator[None]:
    """Shows sync progress while the block runs."""
    logger = logging.getLogger(RUNNER_LOGGER)
    handler, level = SyncProgress(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
