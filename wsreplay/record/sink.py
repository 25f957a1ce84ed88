"""Getting capture rows from the relay to the disk without slowing the relay down.

The event loop only appends each entry to a deque (no lock, no I/O, no
decoding: see :mod:`~wsreplay.record.batch`). A background thread decodes the
queued entries a batch at a time into an Arrow record batch (encoded by hand,
no pyarrow), hands it to the :class:`~wsreplay.store.CaptureWriter` and
flushes it every quarter ``flush_interval``, so an event reaches the disk at
most ``flush_interval`` after it happened, and a slow disk never stalls a frame.

Observers (``observers=``: objects with an ``observe(table)`` method) get every
batch the writer gets, on the flush thread: as a pyarrow table (which loads
pyarrow), or, for an observer with an ``observe_coded(coded)`` method and a
``CODED_COLUMNS`` tuple (the live metrics), as the
:class:`~wsreplay.record.batch.Coded` keys and values of those columns, which
needs no pyarrow. An observer that raises is counted in
:attr:`RowSink.observer_errors` and never stops the recording.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from ..events import ConnectionLog, DecodeCache
from ..store.batches import batch_to_table
from ..store.writer import CaptureWriter
from .batch import Coded, Entry, KindCache, entries_to_batch

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RowSink", "RowObserver"]

#: Entries decoded into one table at most (bounds the memory of a backlog's flush).
_BATCH = 65_536


def _warm_up() -> None:
    """Run the flush path once on a throwaway batch (first-call set-up of the decoder and the encoder).

    Paid at start, not by the first flush: on a busy machine that first flush could otherwise take
    longer than the flush interval, and a crash right then would lose more than the interval.
    """
    log = ConnectionLog("warm-up", "/ws/outpost/pk/")
    message = (log, 0, 0, "to_server", "text", b'{"instruction": 0, "args": {}}', False)
    entries_to_batch([log.open(0), message, (log, log.close(0, "to_peer", code=1000))])


class RowObserver(Protocol):
    """Gets each decoded capture table the sink writes (on the flush thread)."""

    def observe(self, table: pa.Table) -> None: ...


class RowSink:
    """A thread-safe, lock-free-on-the-hot-path buffer in front of a :class:`CaptureWriter`.

    Parameters
    ----------
    writer : CaptureWriter
        Created with ``autoflush=False``: this sink flushes it.
    flush_interval : float
        Seconds; rows are on disk at most this long after :meth:`put`.
    observers : iterable of RowObserver, optional
        Each gets ``observe(table)`` with every table handed to the writer, on
        the flush thread. An observer that raises never stops the capture: the
        error is counted in :attr:`observer_errors` (last one in
        :attr:`last_observer_error`).
    """

    def __init__(self, writer: CaptureWriter, *, flush_interval: float, observers: Iterable[RowObserver] = ()) -> None:
        self.writer = writer
        self.flush_interval = flush_interval
        self.observers = list(observers)
        self.observer_errors = 0
        self.last_observer_error: str | None = None
        self._queue: collections.deque[Entry] = collections.deque()
        #: Queue one row or message entry (called on the event loop; never blocks). It is the deque's own
        #: ``append``: no Python frame per relayed message.
        self.put: Callable[[Entry], None] = self._queue.append
        self._cache: DecodeCache = {}
        self._kinds = KindCache()  # message kinds and their columns, built once across flushes
        # the columns observers that take coded batches read (no pyarrow for them)
        names = [c for o in self.observers for c in getattr(o, "CODED_COLUMNS", ()) if hasattr(o, "observe_coded")]
        self._coded_columns = tuple(dict.fromkeys(names))
        self._drain_lock = threading.Lock()
        _warm_up()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wsreplay-record-flush", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Rows queued and not yet handed to the writer, plus those the writer holds."""
        return len(self._queue) + self.writer.stats.rows_pending

    @property
    def flush_lag(self) -> float:
        """Seconds since the last flush that left nothing behind."""
        return time.monotonic() - self.writer.stats.last_flush_monotonic

    def flush(self) -> bool:
        """Decode every queued entry, hand the rows to the writer and flush it to disk (any thread)."""
        with self._drain_lock:
            entries: list[Entry] = []
            popleft = self._queue.popleft
            try:
                while True:
                    entries.append(popleft())
            except IndexError:
                pass
            for start in range(0, len(entries), _BATCH):
                chunk = entries[start : start + _BATCH]
                coded = Coded(self._coded_columns) if self._coded_columns else None
                message = entries_to_batch(chunk, self._cache, self._kinds, coded)
                self.writer.write_batch(message, len(chunk))
                if self.observers:
                    self._observe(message, coded)
            return self.writer.flush()

    def close(self) -> None:
        """Stop the thread, write everything and seal the segment."""
        self._stop.set()
        self._thread.join()
        self.flush()
        self.writer.close()

    def _observe(self, message: bytes, coded: Coded | None) -> None:
        table: pa.Table | None = None
        for observer in self.observers:
            try:
                observe_coded = getattr(observer, "observe_coded", None)
                if observe_coded is not None and coded is not None:
                    observe_coded(coded)
                    continue
                if table is None:
                    table = batch_to_table(message)
                observer.observe(table)
            except Exception as exc:  # an observer never stops the recording
                self.observer_errors += 1
                self.last_observer_error = f"{type(observer).__name__}: {type(exc).__name__}: {exc}"

    def _loop(self) -> None:
        # Flushes start on a fixed cadence of a quarter interval (not a pause after each flush), so an
        # event waits at most a quarter interval for a flush to start and the rest of the interval is
        # left for the flush itself, on a machine whose other work delays this thread.
        period = max(self.flush_interval / 4, 0.005)
        next_start = time.monotonic() + period
        while not self._stop.wait(max(0.0, next_start - time.monotonic())):
            next_start = max(next_start + period, time.monotonic())
            try:
                self.flush()
            except Exception as exc:  # keep recording; the writer counts disk errors itself
                self.writer.stats.last_error = f"{type(exc).__name__}: {exc}"
