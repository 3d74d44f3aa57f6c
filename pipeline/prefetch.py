"""Reads ahead: the next pages are fetched in a background thread while the current one is merged."""
from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
from typing import Iterable, Iterator, TypeVar

from pipeline.cancellation import cancellation_for

T = TypeVar("T")
_DONE = object()


@contextlib.contextmanager
def prefetched(source: Iterable[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """Iterates `source` in a background thread, at most `depth` items ahead.

    An exception in the source is raised where the item would have been. Leaving the block early
    stops the reader after the item in hand and closes the source (its finally blocks run); leaving it on
    SIGINT or SIGTERM (pipeline.cancellation) does not wait for the reader.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def read() -> None:
        iterator = iter(source)
        try:
            for item in iterator:
                if not _put(items, (item, None), stop):
                    return
            _put(items, (_DONE, None), stop)
        except BaseException as error:  # handed to the consumer, which re-raises it
            _put(items, (_DONE, error), stop)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    context = contextvars.copy_context()  # the reader logs with the run's context
    reader = threading.Thread(target=context.run, args=(read,), name="prefetch", daemon=True)
    reader.start()

    def consume() -> Iterator[T]:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item

    cancelled = False
    try:
        yield consume()
    except BaseException as error:
        # SIGINT/SIGTERM: the process is stopping, and the reader (a daemon) may be inside a request that
        # lasts its whole timeout; waiting for it would hold the stop hostage.
        cancelled = cancellation_for(error) is not None
        raise
    finally:
        stop.set()
        while reader.is_alive() and not cancelled:
            try:
                items.get(timeout=0.05)  # unblock a reader waiting on a full queue
            except queue.Empty:
                pass
            reader.join(timeout=0.05)


def _put(items: queue.Queue, entry: tuple, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            items.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
