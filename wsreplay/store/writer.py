"""The segment writer: events in, a capture directory out.

Layout of a capture directory written by :class:`CaptureWriter`::

    <out>/<capture_id>-00000.parquet   sealed segments (zstd, dictionary encoded)
    <out>/<capture_id>-00001.arrows    the segment being written (Arrow IPC stream)

Rows are buffered in memory and appended to the current ``.arrows`` stream as
one record batch at least every ``flush_interval`` seconds (a background
thread does it when the caller does not), then fsync'ed: a crash loses at
most the last interval. A segment is sealed into Parquet when it grows past
``rotate_bytes`` or ``rotate_seconds``, and on :meth:`CaptureWriter.close`.
Sealing writes ``.parquet.tmp``, renames it, then deletes the stream, so every
moment of a crash leaves something :func:`wsreplay.recover` can finish.

A live writer holds an exclusive ``flock`` on each stream segment from its
creation until it is sealed and deleted (the background sealer keeps the
writer's lock), and on each ``.parquet.tmp`` while it writes it; ``recover``
leaves locked files alone. The lock goes with the process: a crashed
writer holds none.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..events import new_id
from ..exceptions import CaptureError
from ..schema import SCHEMA, conform_table, rows_to_table
from .segments import STREAM_OPTIONS, STREAM_SUFFIX, create_locked, seal_stream

__all__ = ["CaptureWriter", "WriterStats"]


class WriterStats:
    """Counters of a writer (read them any time; updated under the writer's lock).

    ``bytes_written`` is the size of the segment being written; ``bytes_total``
    counts every byte appended to segment streams since the writer started
    (a counter for live metrics). ``failing`` is true from a refused write
    until the next flush that succeeds.
    """

    def __init__(self) -> None:
        self.rows_written = 0
        self.rows_pending = 0
        self.bytes_written = 0
        self.bytes_total = 0
        self.segments_sealed = 0
        self.flushes = 0
        self.write_errors = 0
        self.failing = False
        self.last_error: str | None = None
        self.last_flush_monotonic = time.monotonic()

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict."""
        return dict(vars(self))


class CaptureWriter:
    """Write capture events into a directory of segments.

    Parameters
    ----------
    out : path
        Capture directory (created if missing).
    capture_id : str, optional
        Id of this recording run; a new one by default. Segment files are named after it.
    flush_interval : float
        Seconds; buffered rows reach the disk at least this often. ``0`` flushes on every write.
    rotate_bytes : int
        Seal the current segment once its stream file is this large.
    rotate_seconds : float
        Seal the current segment once it is this old.
    autoflush : bool
        Run a background thread that flushes every ``flush_interval`` (default
        ``True``); without it the caller must call :meth:`flush`.

    Notes
    -----
    Thread-safe: drivers on an asyncio loop and the flusher thread may call it
    concurrently. If the disk refuses a write (full, read-only), rows are kept
    in memory, ``stats.write_errors`` counts the failures, ``on_error`` is
    called, and the next flush tries again: recording continues when space
    returns.

    Examples
    --------
    >>> import tempfile
    >>> from wsreplay.events import ConnectionLog
    >>> out = tempfile.mkdtemp()
    >>> log = ConnectionLog("demo", "/ws/client/")
    >>> with CaptureWriter(out, capture_id="demo") as writer:
    ...     writer.write(log.open(1_700_000_000_000_000_000))
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        *,
        capture_id: str | None = None,
        flush_interval: float = 1.0,
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_seconds: float = 3600.0,
        autoflush: bool = True,
        on_error: Any = None,
    ) -> None:
        if flush_interval < 0:
            raise ValueError("flush_interval must be >= 0 seconds")
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaptureError(f"cannot create capture directory {self.out}: {exc.strerror}") from exc
        if not os.access(self.out, os.W_OK):
            raise CaptureError(f"capture directory {self.out} is not writable")
        if capture_id is not None and (not capture_id or any(c in capture_id for c in "/\\\0")):
            # segment files are named after it: a separator would put them outside *out*
            raise CaptureError(f"capture id {capture_id!r} must be a plain name (no '/', '\\' or NUL)")
        self.capture_id = capture_id or new_id()
        self.flush_interval = flush_interval
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.on_error = on_error
        self.stats = WriterStats()
        self._lock = threading.RLock()
        self._pending: list[dict[str, Any]] = []
        self._pending_tables: list[pa.Table] = []
        self._segment_no = self._first_free_segment()
        self._sink: Any = None
        self._stream: Any = None
        self._segment_path: Path | None = None
        self._segment_started = 0.0
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sealers: list[threading.Thread] = []
        if autoflush and flush_interval > 0:
            self._thread = threading.Thread(target=self._flush_loop, name="wsreplay-flush", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ public

    def write(self, row: dict[str, Any]) -> None:
        """Queue one event row (a dict keyed by column name)."""
        with self._lock:
            self._check_open()
            self._pending.append(row)
            self.stats.rows_pending += 1
            if self.flush_interval == 0:
                self.flush()

    def write_many(self, rows: Iterable[dict[str, Any]]) -> None:
        """Queue several event rows."""
        with self._lock:
            self._check_open()
            before = len(self._pending)
            self._pending.extend(rows)
            self.stats.rows_pending += len(self._pending) - before
            if self.flush_interval == 0:
                self.flush()

    def write_table(self, table: pa.Table) -> None:
        """Queue a whole table of events (columns are conformed to the schema).

        The fast path for generated captures: no per-row Python work.
        """
        table = conform_table(table)
        with self._lock:
            self._check_open()
            self._pending_tables.append(table)
            self.stats.rows_pending += table.num_rows
            if self.flush_interval == 0:
                self.flush()

    def flush(self) -> bool:
        """Write buffered rows to the current segment and fsync it.

        Returns
        -------
        bool
            ``True`` if everything buffered is on disk, ``False`` if the disk
            refused (rows stay buffered for the next try).
        """
        with self._lock:
            if not self._pending and not self._pending_tables:
                self.stats.last_flush_monotonic = time.monotonic()
                return True
            try:
                tables = list(self._pending_tables)
                if self._pending:
                    tables.append(rows_to_table(self._pending))
                self._ensure_stream()
                for table in tables:
                    self._stream.write_table(table)
                self._sink.flush()
                os.fsync(self._sink.fileno())
            except OSError as exc:
                self._abandon_stream()
                self._fail(exc)
                self.stats.failing = True
                return False
            written = sum(t.num_rows for t in tables)
            self._pending.clear()
            self._pending_tables.clear()
            self.stats.rows_written += written
            self.stats.rows_pending = 0
            self.stats.flushes += 1
            self.stats.failing = False
            self.stats.last_flush_monotonic = time.monotonic()
            assert self._segment_path is not None
            size = self._segment_path.stat().st_size
            self.stats.bytes_total += size - self.stats.bytes_written
            self.stats.bytes_written = size
            if size >= self.rotate_bytes or time.monotonic() - self._segment_started >= self.rotate_seconds:
                # Sealing a full segment takes seconds: do it off this lock, so flushes (and the
                # flush-interval promise of a crash) go on into the next segment meanwhile.
                closed = self._close_stream()
                if closed is not None:
                    sealer = threading.Thread(target=self._seal_file, args=closed, name="wsreplay-seal", daemon=True)
                    self._sealers = [t for t in self._sealers if t.is_alive()]
                    self._sealers.append(sealer)
                    sealer.start()
            return True

    def rotate(self) -> None:
        """Flush, then seal the current segment into Parquet."""
        with self._lock:
            if self.flush():
                self._seal()

    def close(self) -> None:
        """Flush and seal everything; the writer cannot be used afterwards."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        for sealer in self._sealers:
            sealer.join()
        with self._lock:
            if self._closed:
                return
            ok = self.flush()
            if ok:
                self._seal()
            self._closed = True
            if not ok:
                raise CaptureError(
                    f"could not write {self.stats.rows_pending} buffered events to {self.out}: {self.stats.last_error}"
                )

    @property
    def segment_path(self) -> Path | None:
        """Path of the segment being written (``None`` between segments)."""
        return self._segment_path

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- private

    def _check_open(self) -> None:
        if self._closed:
            raise CaptureError("this CaptureWriter is closed")

    def _first_free_segment(self) -> int:
        numbers = []
        for p in self.out.glob(f"{self.capture_id}-*.*"):
            stem = p.name.split(".", 1)[0]
            tail = stem.rsplit("-", 1)[-1]
            if tail.isdigit():
                numbers.append(int(tail))
        return max(numbers, default=-1) + 1

    def _ensure_stream(self) -> None:
        if self._stream is not None:
            return
        path = self.out / f"{self.capture_id}-{self._segment_no:05d}{STREAM_SUFFIX}"
        # `wsreplay recover` leaves a segment alone while a live writer holds its lock.
        sink = create_locked(path)
        try:
            self._stream = pa.ipc.new_stream(sink, SCHEMA, options=STREAM_OPTIONS)
        except BaseException:
            sink.close()
            raise
        self._sink = sink
        self._segment_path = path
        self._segment_started = time.monotonic()
        self.stats.bytes_written = 0

    def _abandon_stream(self) -> None:
        # A failed write may have left half a batch in the stream: never append after
        # it. The readers stop at the last whole batch; the next flush starts a segment.
        for closable in (self._stream, self._sink):
            try:
                if closable is not None:
                    closable.close()
            except Exception:
                pass
        self._stream = self._sink = None
        if self._segment_path is not None:
            self._segment_path = None
            self._segment_no += 1

    def _seal(self) -> None:
        closed = self._close_stream()
        if closed is not None:
            self._seal_file(*closed)

    def _close_stream(self) -> tuple[Path, int] | None:
        """End the current segment's stream (the next flush starts a new one).

        Returns its path and a descriptor that keeps holding the segment's lock
        (a duplicate of the stream's: same open file, same ``flock``) until it
        is sealed, so `wsreplay recover` leaves it to the sealer.
        """
        if self._stream is None:
            return None
        path = self._segment_path
        assert path is not None
        lock = os.dup(self._sink.fileno())
        try:
            self._stream.close()
            self._sink.close()
        except OSError as exc:
            self._fail(exc)
        self._stream = self._sink = None
        self._segment_path = None
        self._segment_no += 1
        return path, lock

    def _seal_file(self, path: Path, lock: int) -> None:
        """Seal a closed stream segment into Parquet, then drop its lock (any thread; a crash leaves it to recover)."""
        try:
            seal_stream(path, path.with_suffix(".parquet"))
            path.unlink()
            self.stats.segments_sealed += 1
        except OSError as exc:
            # The stream stays on disk; `wsreplay recover` (or load) still reads it.
            self._fail(exc)
        finally:
            os.close(lock)

    def _fail(self, exc: OSError) -> None:
        self.stats.write_errors += 1
        self.stats.last_error = f"{exc.strerror or exc} ({self.out})"
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:
                pass

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval / 2):
            try:
                self.flush()
            except Exception as exc:
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
