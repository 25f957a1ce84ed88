"""A capture's rows by outpost bucket, for analyses that run one group of outposts at a time.

:func:`bucket_partitions` gives every bucket (``crc32(pk) % n``, see
:mod:`wsreplay.store.buckets`) of a capture, so that a group of buckets can be
read without scanning the whole capture again:

* a **compacted** capture (``wsreplay compact``) already is partitioned: a
  group reads only its buckets' files; rows recorded since the last
  compaction (sealed segments and live streams at the top level) are split
  into temporary per-bucket files in one pass over them;
* an **uncompacted** capture is split the same way, in one pass over all its
  segments, into temporary Arrow stream files (one per bucket, lz4, only the
  columns asked for, strings kept dictionary-encoded), removed afterwards.
  The capture itself is never changed: nothing is written into it, and it
  needs no lock. Memory stays at one row group during the pass and at one
  group afterwards; the temporary files take about a third of the capture's
  size on disk per 10 columns read.

Either way a group's table is what ``load_table(path, outpost=<its
outposts>, columns=...)`` would return (sorted by ``ts`` then ``seq``), read
at the cost of its own rows only.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .._ahead import ahead
from ..analysis._group import group_order
from ..exceptions import CaptureNotFoundError
from ..schema import CATEGORICAL_COLUMNS, COLUMNS, SCHEMA
from .buckets import NO_BUCKET, bucket_of
from .layout import layout_of
from .listing import open_segments
from .segments import check_parquet, iter_stream

__all__ = [
    "Partitions",
    "bucket_partitions",
    "capture_rows",
    "segment_tables",
    "split_by_bucket",
    "spill_buckets",
    "spill_schema",
    "SPILL_OPTIONS",
    "STRING_COLUMNS",
]

#: Temporary per-bucket files: Arrow IPC streams, lz4 (fast to write and to read back).
SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
#: Buckets an uncompacted capture is split into: about this many per group of ``chunk_rows``.
_BUCKETS_PER_GROUP = 8
_MAX_BUCKETS = 256


def split_by_bucket(table: pa.Table, n: int) -> Iterator[tuple[int, pa.Table]]:
    """The rows of *table* by bucket of their ``outpost_uuid`` (each bucket's rows in their order)."""
    b = bucket_of(table.column("outpost_uuid"), n)
    # shifted past NO_BUCKET (-1): group_order sorts small non-negative codes by radix (0.8 s instead of 4.1 s
    # for a week of 1,000 outposts with numpy's stable sort of the int64 codes)
    order = group_order(b + 1)
    table = table.take(pa.array(order))
    sb = b[order]
    bounds = [0, *(np.flatnonzero(np.diff(sb)) + 1).tolist(), len(sb)]
    for lo, hi in itertools.pairwise(bounds):
        yield int(sb[lo]), table.slice(lo, hi - lo)


def spill_buckets(
    tables: Iterable[pa.Table], directory: Path, n: int, schema: pa.Schema
) -> tuple[dict[int, Path], dict[int, int]]:
    """Write every row of *tables* (cast to *schema*) into one Arrow stream file per bucket under *directory*.

    Returns each bucket's file and row count. Memory: two of *tables* at a time:
    one table's buckets are written (lz4, in a thread: pyarrow releases the
    GIL) while the next is split. Give string columns dictionary-encoded (in
    *tables* and *schema*): moving rows then moves small integers, not the
    strings.
    """
    writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
    paths: dict[int, Path] = {}
    rows: dict[int, int] = {}

    def write(parts: list[tuple[int, pa.Table]]) -> None:
        for k, part in parts:
            if k not in writers:
                paths[k] = directory / f"bucket{k}.arrows"
                writers[k] = pa.ipc.new_stream(str(paths[k]), schema, options=SPILL_OPTIONS)
            writers[k].write_table(part.select(schema.names).cast(schema))
            rows[k] = rows.get(k, 0) + part.num_rows

    try:
        # the pool is shut down (its last write done) before the writers are closed
        with ThreadPoolExecutor(1, thread_name_prefix="wsreplay-split-write") as pool:
            pending: Future[None] | None = None
            for table in tables:
                if table.num_rows == 0:
                    continue
                parts = list(split_by_bucket(table, n))
                if pending is not None:
                    pending.result()  # one table's write in flight at a time
                pending = pool.submit(write, parts)
            if pending is not None:
                pending.result()
    finally:
        for w in writers.values():
            w.close()
    return paths, rows


def _read_schema(columns: Sequence[str], encoded: Iterable[str] = CATEGORICAL_COLUMNS) -> pa.Schema:
    """The capture schema of *columns*, the *encoded* ones dictionary-encoded (default: as ``load_table`` has them)."""
    fields = []
    enc = set(encoded)
    for name in columns:
        typ = COLUMNS[name]
        fields.append(pa.field(name, pa.dictionary(pa.int32(), typ) if name in enc else typ))
    return pa.schema(fields, metadata=SCHEMA.metadata)


#: Every string column of the capture: dictionary-encoded while rows are split and moved.
STRING_COLUMNS = tuple(f.name for f in SCHEMA if f.type == pa.string())


def spill_schema(columns: Sequence[str]) -> pa.Schema:
    """The schema of spilled rows: *columns*, every string column dictionary-encoded."""
    return _read_schema(columns, STRING_COLUMNS)


@dataclass
class Partitions:
    """The buckets of one capture: how many rows each holds, and its rows on request."""

    buckets: int
    columns: list[str]
    rows: dict[int, int] = field(default_factory=dict)
    files: dict[int, list[Path]] = field(default_factory=dict)
    spills: dict[int, Path] = field(default_factory=dict)
    compacted: bool = False

    def groups(self, chunk_rows: int) -> list[list[int]]:
        """Outpost buckets (not :data:`NO_BUCKET`) in order, gathered into groups of at most *chunk_rows* rows.

        A bucket larger than *chunk_rows* is a group of its own.
        """
        out: list[list[int]] = []
        rows = 0
        for b in sorted(k for k in self.rows if k != NO_BUCKET):
            if out and rows + self.rows[b] <= chunk_rows:
                out[-1].append(b)
                rows += self.rows[b]
            else:
                out.append([b])
                rows = self.rows[b]
        return out

    def table(
        self, buckets: Iterable[int], *, columns: Sequence[str] | None = None, filter: ds.Expression | None = None
    ) -> pa.Table:
        """The rows of *buckets* that match *filter*, sorted by ``ts`` then ``seq``.

        *columns* (default: all the partitions have) are among :attr:`columns`.
        """
        cols = list(self.columns if columns is None else columns)
        schema = _read_schema(cols)
        tables: list[pa.Table] = []
        wanted = sorted(set(buckets))
        files = [str(f) for b in wanted for f in self.files.get(b, [])]
        if files:
            dict_cols = [c for c in cols if c in CATEGORICAL_COLUMNS]
            fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": dict_cols})
            dataset = ds.dataset(files, format=fmt, schema=_file_schema(cols))
            tables.append(dataset.to_table(columns=cols, filter=filter))
        for b in wanted:
            if b in self.spills:
                with pa.memory_map(str(self.spills[b])) as src:
                    t = pa.ipc.open_stream(src).read_all()
                tables.append((t if filter is None else t.filter(filter)).select(cols))
        if not tables:
            return schema.empty_table()
        table = pa.concat_tables([t.cast(schema) for t in tables])
        if table.num_rows > 1 and "ts" in cols:
            keys = [("ts", "ascending")] + ([("seq", "ascending")] if "seq" in cols else [])
            table = table.take(pc.sort_indices(table, sort_keys=keys))
        return table


def _file_schema(columns: Sequence[str]) -> pa.Schema:
    fields = []
    for f in SCHEMA:
        typ = pa.dictionary(pa.int32(), f.type) if f.name in CATEGORICAL_COLUMNS and f.name in columns else f.type
        fields.append(pa.field(f.name, typ))
    return pa.schema(fields)


def segment_tables(
    parquet: Sequence[Path], streams: Sequence[tuple[Path, BinaryIO]], columns: Sequence[str]
) -> Iterator[pa.Table]:
    """The rows of the segments, a row group (or stream batch) at a time, as :func:`spill_schema` has them."""
    cols = list(columns)
    schema = spill_schema(cols)
    for p in parquet:
        pf = pq.ParquetFile(str(p), read_dictionary=[c for c in cols if c in STRING_COLUMNS])
        for g in range(pf.metadata.num_row_groups):
            yield pf.read_row_group(g, columns=cols).cast(schema)
    for name, fh in streams:
        for batch in iter_stream(fh, name=name):
            yield pa.Table.from_batches([batch]).select(cols).cast(schema)


def capture_rows(path: str | os.PathLike[str]) -> int:
    """Rows of the capture at *path*: Parquet footers, plus the rows of stream segments (read)."""
    from .listing import segment_files
    from .segments import read_stream

    segs = segment_files(path)
    rows = sum(pq.read_metadata(str(f)).num_rows for f in segs.parquet)
    return rows + sum(read_stream(f).num_rows for f in segs.streams)


@contextlib.contextmanager
def bucket_partitions(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str],
    chunk_rows: int,
    tmpdir: str | os.PathLike[str] | None = None,
) -> Iterator[Partitions]:
    """The capture at *path* by outpost bucket (see the module docstring); temporary files removed on exit.

    Parameters
    ----------
    path : path
        A capture directory or file, compacted or not.
    columns : list of str
        The columns the partitions' tables will have (must include ``outpost_uuid``).
    chunk_rows : int
        The rows a group of buckets should hold at most: an uncompacted capture
        is split into about eight buckets per group (up to 256).
    tmpdir : path, optional
        Where the temporary files go (default: the system's temporary directory).
    """
    cols = list(dict.fromkeys(["outpost_uuid", *columns]))
    p = Path(path)
    lay = layout_of(p) if p.is_dir() else None
    segs = open_segments(p)
    scratch = Path(tempfile.mkdtemp(prefix="wsreplay-partitions-", dir=tmpdir))
    try:
        loose = [f for f in segs.parquet if lay is None or f.name not in lay.compacted]
        for f in loose:
            if not check_parquet(f):
                raise CaptureNotFoundError(f"{f} vanished while splitting {p} (compacted meanwhile?); run it again")
        if lay is not None:
            n = lay.buckets
            parts = Partitions(buckets=n, columns=cols, files=dict(lay.files), compacted=True)
            for b, fs in lay.files.items():
                parts.rows[b] = sum(pq.read_metadata(str(f)).num_rows for f in fs)
        else:
            total = sum(pq.read_metadata(str(f)).num_rows for f in loose)
            want = max(1, -(-total * _BUCKETS_PER_GROUP // max(1, chunk_rows)))
            n = min(_MAX_BUCKETS, 1 << (want - 1).bit_length())
            parts = Partitions(buckets=n, columns=cols)
        parts.columns = cols
        # the next row group is read while this one is split and written (both mostly outside the GIL)
        tables = ahead(segment_tables(loose, segs.streams, cols), name="wsreplay-split-read")
        parts.spills, spilled = spill_buckets(tables, scratch, n, spill_schema(cols))
        for b, k in spilled.items():
            parts.rows[b] = parts.rows.get(b, 0) + k
        segs.close()
        yield parts
    finally:
        segs.close()
        shutil.rmtree(scratch, ignore_errors=True)
