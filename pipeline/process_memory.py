"""What a process remembers of its warehouse between runs, so a push run need not ask it.

A push run comes within a minute of each change (thousands a day): a look-up in the warehouse on each would bill
BigQuery's 10 MB minimum per table every time. A worker instance stays warm between pushes, so what its runs
learnt (rows they read, rows they wrote) is kept here, per warehouse: push runs read this memory (a cold process
asks the warehouse once), the other runs ask the warehouse as before and refresh it (pipeline.run_origin).
"""
from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, TypeVar

T = TypeVar("T")

_memories: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()
_lock = threading.RLock()  # re-entrant: a memory made may ask for another (the mirror makes its own tables)


def remembered(warehouse: Any, name: str, make: Callable[[], T]) -> T:
    """This process's memory `name` of the warehouse (the real one under a worker's landing warehouse: the rows it
    lands are the ones the merger writes there), made by make() on first use."""
    real = getattr(warehouse, "inner", warehouse)
    with _lock:
        memories = _memories.setdefault(real, {})
        if name not in memories:
            memories[name] = make()
        return memories[name]
