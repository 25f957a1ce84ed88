"""What analysis calls on the same frames share: their outpost rows and their outage timelines.

``outages`` and ``uptime`` are two views of one computation (the up/down
timeline of :mod:`wsreplay.analysis.coverage`), and every outpost analysis
starts by reading the same columns into flat arrays (:class:`OutpostRows`).
A notebook calls them one after the other on the same frames, so the latest
frames' rows and timelines are kept here and reused:
``wsreplay.outages(frames)`` then ``wsreplay.uptime(frames)`` computes the
timeline once, and ``wsreplay.ack_latency(frames)`` reuses the rows (and
their grouping by connection).

Why a cache keyed on the frames rather than an object both functions share:
the public API stays ``outages(frames, ...)`` / ``uptime(frames, ...)`` (pure
functions of the frames, ``df.pipe`` works), and users get the saving
without changing their code.

**Safe when the frames change.** The key is not the DataFrame object but the
memory of the columns the analyses read (the data pointer of each column's
values, with the row count and the column names): a reassigned column, a
filtered, sorted or concatenated frame has other buffers, so another key.
In-place writes (``frames.loc[i, "ts"] = ...``) are caught by pandas'
copy-on-write (always on from pandas 3): the cache holds a shallow copy of
those columns, so a later write to the caller's frames copies the column
first, and its buffer (and so the key) changes. Two frames that share their
buffers (``frames[cols]``) hold the same values, and share the entry.
Without copy-on-write (pandas 2 with it off) nothing is cached.

**Bounded.** One entry (the latest frames) is kept, and dropped when the frames
that made it are garbage-collected, or by :func:`clear`. Its size is about
that of the analysis columns (the rows' arrays and their grouping by
connection), plus the small timelines.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import numpy as np
import pandas as pd

from ._rows import OutpostRows, outpost_rows

__all__ = ["shared", "rows_of", "clear", "fingerprint", "KEY_COLUMNS"]

T = TypeVar("T")

#: The columns the outpost analyses may read (their buffers make the key).
KEY_COLUMNS: Final = (
    "ts",
    "conn_id",
    "outpost_uuid",
    "instance_uuid",
    "endpoint",
    "event",
    "direction",
    "instruction",
    "instruction_name",
    "close_code",
    "version",
    "build_hash",
    "hostname",
    "parse_error",
    "payload",
    "payload_bytes",
)


def _copy_on_write() -> bool:
    if int(pd.__version__.split(".", 1)[0]) >= 3:
        return True
    try:
        return bool(pd.get_option("mode.copy_on_write") is True)
    except (KeyError, ValueError):  # pragma: no cover - very old pandas
        return False


def _buffers(values: Any) -> tuple[int, ...]:
    """Addresses of the buffers behind a column's values (``id`` for other kinds of arrays)."""
    parts: list[Any]
    if isinstance(values, pd.Categorical):
        parts = [values.codes]
    elif hasattr(values, "_data") and hasattr(values, "_mask"):  # nullable ints, bools, floats
        parts = [values._data, values._mask]
    elif hasattr(values, "_ndarray"):  # datetimes, numpy-backed
        parts = [values._ndarray]
    elif hasattr(values, "_pa_array"):  # pyarrow-backed (strings): immutable, identified by their buffers
        chunks = values._pa_array.chunks
        return tuple(b.address for chunk in chunks for b in chunk.buffers() if b is not None) or (id(values),)
    else:
        return (id(values),)
    return tuple(int(p.__array_interface__["data"][0]) for p in parts if isinstance(p, np.ndarray))


def fingerprint(frames: pd.DataFrame) -> tuple[Hashable, ...]:
    """The key of *frames*: row count, and name and buffers of each column in :data:`KEY_COLUMNS`."""
    present = [c for c in KEY_COLUMNS if c in frames.columns]
    return (len(frames), *((c, str(frames[c].dtype), _buffers(frames[c].array)) for c in present))


@dataclass
class _Entry:
    key: tuple[Hashable, ...]
    snapshot: pd.DataFrame  # keeps copy-on-write copying the caller's columns before they change
    values: dict[Hashable, Any] = field(default_factory=dict)


_lock = threading.Lock()
_entry: _Entry | None = None


def clear() -> None:
    """Forget what is kept (the latest frames' rows and timelines)."""
    global _entry
    with _lock:
        _entry = None


def _drop(key: tuple[Hashable, ...]) -> None:
    global _entry
    with _lock:
        if _entry is not None and _entry.key == key:
            _entry = None


def shared(frames: pd.DataFrame, name: Hashable, compute: Callable[[], T]) -> T:
    """``compute()``, or what it returned for the same *name* on frames with the same values.

    *name* must hold every parameter the result depends on besides the
    frames (e.g. ``("coverage", level, factor, ...)``). The result must not
    be modified by its users.
    """
    global _entry
    if not _copy_on_write():
        return compute()
    key = fingerprint(frames)
    with _lock:
        entry = _entry if _entry is not None and _entry.key == key else None
        if entry is not None and name in entry.values:
            return entry.values[name]  # type: ignore[no-any-return]
    value = compute()
    with _lock:
        if _entry is None or _entry.key != key:
            present = [c for c in KEY_COLUMNS if c in frames.columns]
            _entry = _Entry(key, frames[present].copy(deep=False))
            weakref.finalize(frames, _drop, key)
        _entry.values[name] = value
    return value


def rows_of(frames: pd.DataFrame, fn: str) -> OutpostRows:
    """The :class:`OutpostRows` of *frames*, shared between analysis calls (see the module docstring)."""
    return shared(frames, "rows", lambda: outpost_rows(frames, fn))
