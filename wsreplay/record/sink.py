"""Getting capture rows from the relay to the disk without slowing the relay down.

The event loop only appends each row to a deque (no lock, no I/O). A
background thread hands the rows to the :class:`~wsreplay.store.CaptureWriter`
and flushes it every half ``flush_interval``, so an event reaches the disk at
most ``flush_interval`` after it happened, and a slow disk never stalls a frame.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from ..schema import rows_to_table
from ..store.writer import CaptureWriter

__all__ = ["RowSink"]

#: Rows converted to Arrow per call: each conversion holds the GIL, so small
#: chunks keep the event loop's pauses short (a few hundred microseconds each).
_CHUNK = 128


class RowSink:
    """A thread-safe, lock-free-on-the-hot-path buffer in front of a :class:`CaptureWriter`.

    Parameters
    ----------
    writer : CaptureWriter
        Created with ``autoflush=False``: this sink flushes it.
    flush_interval : float
        Seconds; rows are on disk at most this long after :meth:`put`.
    """

    def __init__(self, writer: CaptureWriter, *, flush_interval: float) -> None:
        self.writer = writer
        self.flush_interval = flush_interval
        self.rows_put = 0
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._drain_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wsreplay-record-flush", daemon=True)
        self._thread.start()

    def put(self, row: dict[str, Any]) -> None:
        """Queue one row (called on the event loop; never blocks)."""
        self._queue.append(row)
        self.rows_put += 1

    @property
    def pending(self) -> int:
        """Rows queued and not yet handed to the writer, plus those the writer holds."""
        return len(self._queue) + self.writer.stats.rows_pending

    @property
    def flush_lag(self) -> float:
        """Seconds since the last flush that left nothing behind."""
        return time.monotonic() - self.writer.stats.last_flush_monotonic

    def flush(self) -> bool:
        """Hand every queued row to the writer and flush it to disk (any thread)."""
        with self._drain_lock:
            rows = []
            popleft = self._queue.popleft
            try:
                while True:
                    rows.append(popleft())
            except IndexError:
                pass
            for start in range(0, len(rows), _CHUNK):
                self.writer.write_table(rows_to_table(rows[start : start + _CHUNK]))
            return self.writer.flush()

    def close(self) -> None:
        """Stop the thread, write everything and seal the segment."""
        self._stop.set()
        self._thread.join()
        self.flush()
        self.writer.close()

    def _loop(self) -> None:
        period = max(self.flush_interval / 2, 0.005)
        while not self._stop.wait(period):
            try:
                self.flush()
            except Exception as exc:  # keep recording; the writer counts disk errors itself
                self.writer.stats.last_error = f"{type(exc).__name__}: {exc}"
