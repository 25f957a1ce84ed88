"""Work one item ahead in a background thread: the next item is made while the caller uses this one.

For pipelines whose two halves mostly run outside the GIL (Parquet decoding,
Arrow kernels and compression on one side, numpy on the other), so that they
overlap on a machine with two cores or more: the report reads the next outpost
group while it analyses one, and splitting a capture into buckets reads the
next row group while it sorts and writes one. Memory: one item more than the
caller holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

__all__ = ["ahead"]

T = TypeVar("T")
_END = object()


def ahead(items: Iterable[T], *, name: str) -> Iterator[T]:
    """The items of *items* in order, each made in a thread named *name* while the caller works on the one before.

    An exception raised making an item is raised here, when that item is due.
    Closing the iterator early waits for the item being made, then stops.
    """
    it = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=name) as pool:
        pending = pool.submit(next, it, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(next, it, _END)
            yield cast(T, item)
            del item
