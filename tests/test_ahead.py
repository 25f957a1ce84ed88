"""Working one item ahead in a background thread (wsreplay/_ahead.py)."""

from __future__ import annotations

import threading
import time

import pytest

from wsreplay._ahead import ahead


def test_items_come_in_order_each_made_in_the_background_while_the_caller_works():
    made: list[tuple[int, str, float]] = []

    def produce():
        for i in range(5):
            made.append((i, threading.current_thread().name, time.monotonic()))
            yield i

    got = []
    for item in ahead(produce(), name="test-ahead"):
        time.sleep(0.05)  # the caller's work: the next item is made meanwhile
        got.append((item, time.monotonic()))
    assert [i for i, _ in got] == [0, 1, 2, 3, 4]
    assert all(name.startswith("test-ahead") for _, name, _ in made)
    # item k+1 was made before the caller finished with item k
    assert all(made[k + 1][2] < got[k][1] for k in range(4))


def test_an_error_making_an_item_is_raised_when_that_item_is_due():
    def produce():
        yield 1
        raise ValueError("row group 2 is damaged")

    it = ahead(produce(), name="test-ahead")
    assert next(it) == 1
    with pytest.raises(ValueError, match="row group 2"):
        next(it)


def test_closing_early_stops_without_making_the_rest():
    made = []

    def produce():
        for i in range(100):
            made.append(i)
            yield i

    it = ahead(produce(), name="test-ahead")
    assert next(it) == 0
    it.close()
    assert len(made) <= 3
    assert list(ahead([], name="test-ahead")) == []
