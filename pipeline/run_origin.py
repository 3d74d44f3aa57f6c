"""Whether the run under way was asked for by a push (a notification, a webhook, the Salesforce probe).

A push run reads the source within a minute of the change, so everything it does is multiplied by the rate of
change (about 7,000 pushes a day at the pilot's rate): it must bill no BigQuery bytes. Its rows go to the fresh
tier (warehouse/fresh.py: free load jobs into `<table>_fresh`, folded into the tables on a slower cycle), and the
sources skip or cache what they would otherwise look up in the warehouse on each run (README "Push freshness").

pipeline.worker.run_work marks a push message's run with `push_run()`; anything during the run asks
`in_push_run()`. A context variable: each worker thread (and each run) has its own.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

_push_run: contextvars.ContextVar[bool] = contextvars.ContextVar("push_run", default=False)


@contextlib.contextmanager
def push_run(active: bool = True) -> Iterator[None]:
    """Marks the block as a push run (or not, with active=False)."""
    token = _push_run.set(active)
    try:
        yield
    finally:
        _push_run.reset(token)


def in_push_run() -> bool:
    """True inside push_run(): the run under way was asked for by a push."""
    return _push_run.get()
