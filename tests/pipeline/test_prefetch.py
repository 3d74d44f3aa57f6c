"""prefetched(): read-ahead that keeps order, surfaces errors in place and stops its reader."""
from __future__ import annotations

import pytest

from pipeline.prefetch import prefetched


def test_items_arrive_in_order():
    """Every item, in the source's order."""
    with prefetched(iter(range(100)), depth=3) as items:
        assert list(items) == list(range(100))


def test_source_error_is_raised_after_the_items_before_it():
    """An exception in the source comes after the items it yielded first."""
    def source():
        yield 1
        yield 2
        raise ConnectionAbortedError("page 3")

    got = []
    with pytest.raises(ConnectionAbortedError, match="page 3"):
        with prefetched(source()) as items:
            for item in items:
                got.append(item)
    assert got == [1, 2]


def test_leaving_early_closes_the_source():
    """Breaking out stops the reader and runs the source's cleanup; it never reads far ahead."""
    state = {"read": 0, "closed": False}

    def source():
        try:
            for i in range(1000):
                state["read"] += 1
                yield i
        finally:
            state["closed"] = True

    with prefetched(source(), depth=2) as items:
        for item in items:
            if item == 5:
                break
    assert state["closed"] and state["read"] <= 5 + 1 + 2 + 1
