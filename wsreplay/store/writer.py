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

The stream is written without pyarrow (:mod:`~wsreplay.store.batches`): rows
and the recorder's batches are encoded by hand, tables from callers that have
pyarrow are serialised by it. Sealing needs pyarrow's Parquet writer: a process
that has not loaded pyarrow (the recorder) seals in a short-lived child process
(``python -m wsreplay.store.sealer``, which inherits the segment's lock), so its
own memory never holds pyarrow's libraries.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from ..events import new_id
from ..exceptions import CaptureError
from .batches import SCHEMA_MESSAGE, rows_to_batch, table_to_batches
from .files import STREAM_SUFFIX, create_locked
from .ipc import EOS

if TYPE_CHECKING:
    import pyarrow as pa

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
    seal : {"auto", "thread", "process"}
        Where a full segment is sealed into Parquet: a thread of this process, or
        a child process (this one then never imports pyarrow). ``"auto"``: a
        thread if pyarrow is loaded here already, else a child process.

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
        seal: Literal["auto", "thread", "process"] = "auto",
    ) -> None:
        if flush_interval < 0:
            raise ValueError("flush_interval must be >= 0 seconds")
        if seal not in ("auto", "thread", "process"):
            raise ValueError(f"seal must be 'auto', 'thread' or 'process', not {seal!r}")
        self.seal = seal
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
        self._pending_batches: list[tuple[bytes, int]] = []  # record batch messages and their rows
        self._segment_no = self._first_free_segment()
        self._sink: BinaryIO | None = None
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
        from ..schema import conform_table

        table = conform_table(table)
        self.write_batch(table_to_batches(table), table.num_rows)

    def write_batch(self, message: bytes, rows: int) -> None:
        """Queue record batch messages of the capture schema holding *rows* rows, as they are.

        The recorder's path (see :func:`wsreplay.record.batch.entries_to_batch`): its
        batches are encoded on its flush thread without pyarrow.
        """
        with self._lock:
            self._check_open()
            self._pending_batches.append((message, rows))
            self.stats.rows_pending += rows
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
            if not self._pending and not self._pending_batches:
                self.stats.last_flush_monotonic = time.monotonic()
                return True
            if self._pending:  # encoded once: a refused write keeps the message for the next try
                self._pending_batches.append((rows_to_batch(self._pending), len(self._pending)))
                self._pending.clear()
            try:
                sink = self._ensure_stream()
                for message, _ in self._pending_batches:
                    sink.write(message)
                sink.flush()
                os.fsync(sink.fileno())
            except OSError as exc:
                self._abandon_stream()
                self._fail(exc)
                self.stats.failing = True
                return False
            written = sum(rows for _, rows in self._pending_batches)
            self._pending_batches.clear()
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

    def _ensure_stream(self) -> BinaryIO:
        if self._sink is not None:
            return self._sink
        path = self.out / f"{self.capture_id}-{self._segment_no:05d}{STREAM_SUFFIX}"
        # `wsreplay recover` leaves a segment alone while a live writer holds its lock.
        sink = create_locked(path)
        try:
            sink.write(SCHEMA_MESSAGE)
        except BaseException:
            sink.close()
            raise
        self._sink = sink
        self._segment_path = path
        self._segment_started = time.monotonic()
        self.stats.bytes_written = 0
        return sink

    def _abandon_stream(self) -> None:
        # A failed write may have left half a batch in the stream: never append after
        # it. The readers stop at the last whole batch; the next flush starts a segment.
        try:
            if self._sink is not None:
                self._sink.close()
        except Exception:
            pass
        self._sink = None
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
        if self._sink is None:
            return None
        path = self._segment_path
        assert path is not None
        lock = os.dup(self._sink.fileno())
        try:
            self._sink.write(EOS)
            self._sink.close()
        except OSError as exc:
            self._fail(exc)
        self._sink = None
        self._segment_path = None
        self._segment_no += 1
        return path, lock

    def _seal_file(self, path: Path, lock: int) -> None:
        """Seal a closed stream segment into Parquet, then drop its lock (any thread; a crash leaves it to recover)."""
        try:
            if self.seal == "process" or (self.seal == "auto" and "pyarrow" not in sys.modules):
                _seal_in_child(path, lock)
            else:
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


def seal_stream(path: Path, target: Path) -> int:
    """Seal in this process: :func:`wsreplay.store.segments.seal_stream`, imported (with pyarrow) when first used."""
    from .segments import seal_stream as seal

    return seal(path, target)


def _seal_in_child(path: Path, lock: int) -> None:
    """Seal *path* in ``python -m wsreplay.store.sealer``, which inherits the lock; raise OSError if it failed."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "wsreplay.store.sealer", str(path), str(path.with_suffix(".parquet"))],
            pass_fds=(lock,),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
    except OSError as exc:
        raise OSError(exc.errno, f"cannot start the sealing process: {exc.strerror}") from exc
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {proc.returncode}"]
        raise OSError(errno.EIO, f"sealing {path.name} failed: {lines[-1]}")
