"""The partitions of a capture for Dask: one per outpost bucket, plus the rows without an outpost.

A partition is a bucket of outposts (:func:`wsreplay.store.buckets.bucket_of`)
and the files that hold their rows. It is read on a worker by
:func:`read_partition`, into exactly the frames :func:`wsreplay.load` returns
for ``outpost=<the bucket's outposts>`` (same columns, dtypes and row order):
the files are read one by one with the same filters, concatenated in the
capture's file order and sorted by ``(ts, seq)`` with a stable sort, which is
what ``load`` does with the whole capture.

Finding the partitions (:func:`discover`) reads, on the workers, the
``outpost_uuid`` column of every file (dictionary-encoded: a few bytes a row)
to learn which outposts each file holds, so a partition reads only the files
of its outposts. In a capture that is not compacted every file may hold every
outpost, so every partition scans every file (filtered, but scanned):
``wsreplay compact`` first gives each bucket its own files, and then a
partition reads only them.

Paths are local paths or fsspec URLs (``s3://bucket/capture``,
``file:///...``); remote captures are read through fsspec + pyarrow and must be
sealed Parquet (a capture still being recorded has Arrow stream segments,
which only a local path reads).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..exceptions import CaptureFormatError, CaptureNotFoundError
from ..schema import CATEGORICAL_COLUMNS, COLUMNS, SCHEMA, table_to_frames
from ..store.buckets import NO_BUCKET, bucket_groups
from ..timeutil import TimeLike, to_timestamp

__all__ = [
    "Source",
    "Part",
    "FileInfo",
    "discover",
    "plan",
    "bucket_count",
    "read_cost",
    "read_partition",
    "empty_frames_of",
]

#: Endpoints whose rows have no ``outpost_uuid`` (``/ws/client/`` and any other path).
_NO_OUTPOST_ENDPOINTS = ("client", "other")


@dataclass(frozen=True)
class Source:
    """A capture: a local path (``protocol`` None) or an fsspec URL with its storage options."""

    path: str
    protocol: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, path: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> Source:
        """The source for *path*: a URL with ``scheme://`` goes through fsspec, anything else is local."""
        text = os.fspath(path)
        if "://" in text:
            return cls(text, text.split("://", 1)[0], dict(storage_options or {}))
        if storage_options:
            raise CaptureFormatError(f"storage_options are for fsspec URLs (s3://...), not the local path {text}")
        return cls(text)

    def filesystem(self) -> tuple[Any, str]:
        """The fsspec filesystem and the path inside it (remote sources only)."""
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.path, **self.storage_options)
        return fs, root

    def files(self) -> list[str]:
        """The capture's segment files in the order :func:`wsreplay.load` reads them."""
        if self.protocol is None:
            from ..store.listing import segment_files

            seg = segment_files(self.path)
            return [str(p) for p in [*seg.parquet, *seg.streams]]
        fs, root = self.filesystem()
        if fs.isfile(root):
            return [root]
        found = sorted(p for p in fs.find(root) if p.endswith(".parquet") and not p.rsplit("/", 1)[-1].startswith("_"))
        if not found:
            raise CaptureNotFoundError(f"{self.path} holds no Parquet segment")
        return found


@dataclass(frozen=True)
class FileInfo:
    """What :func:`discover` learnt of one segment file."""

    path: str
    rows: int
    outposts: tuple[str, ...]
    no_outpost_rows: int


@dataclass(frozen=True)
class Part:
    """One partition: a bucket (``NO_BUCKET`` for the rows without an outpost), its outposts and files.

    ``files`` pairs each file with the outposts to keep from it (``None``: every
    row, a compacted bucket's own file), in the order ``load`` reads them.
    """

    bucket: int
    outposts: tuple[str, ...]
    files: tuple[tuple[str, tuple[str, ...] | None], ...]


def _open_parquet(source: Source, path: str) -> pq.ParquetFile:
    if source.protocol is None:
        return pq.ParquetFile(path)
    fs, _ = source.filesystem()
    return pq.ParquetFile(fs.open(path, "rb"))


def file_info(source: Source, path: str) -> FileInfo:
    """The outposts of one segment file (read on a worker: the ``outpost_uuid`` column, dictionary-encoded)."""
    if path.endswith(".parquet"):
        pf = _open_parquet(source, path)
        col = pf.read(columns=["outpost_uuid"]).column("outpost_uuid")
    else:
        from ..store.segments import read_stream

        col = read_stream(Path(path)).column("outpost_uuid")
    values: set[str] = set()
    for chunk in col.chunks:
        arr = chunk if pa.types.is_dictionary(chunk.type) else chunk.dictionary_encode()
        used = pc.unique(arr.indices.drop_null())
        values.update(v for v in arr.dictionary.take(used).to_pylist() if v is not None)
    return FileInfo(path, len(col), tuple(sorted(values)), col.null_count)


def discover(source: Source, files: Sequence[str] | None = None) -> list[FileInfo]:
    """:func:`file_info` of *files* (default: every file of *source*), computed on the current Dask scheduler."""
    import dask

    todo = source.files() if files is None else list(files)
    tasks = [dask.delayed(file_info, pure=True)(source, f) for f in todo]
    return list(dask.compute(*tasks))


def compacted_buckets(source: Source) -> tuple[int, dict[str, int]] | None:
    """(bucket count, bucket of each file) of a compacted local capture; ``None`` otherwise."""
    if source.protocol is not None:
        return None
    from ..store.layout import bucket_files

    found = bucket_files(source.path)
    if found is None:
        return None
    n, files = found
    return n, {str(f): b for b, fs in files.items() for f in fs}


def read_cost(infos: Sequence[FileInfo], n: int) -> int:
    """Rows scanned when every bucket of *n* reads the files that hold any of its outposts."""
    from ..store.buckets import bucket_of

    total = 0
    for info in infos:
        if info.outposts:
            total += info.rows * len(set(bucket_of(list(info.outposts), n).tolist()))
    return total


def bucket_count(infos: Sequence[FileInfo], rows_per_partition: int) -> int:
    """The bucket count that scans the fewest rows among those keeping partitions near *rows_per_partition*.

    The smallest count that keeps partitions under the target, or a larger
    power of two (up to 256) when it reads less: in a capture whose segments
    each hold one bucket's outposts of a power-of-two split (as ``wsreplay
    compact`` or a recorder per bucket leaves them), a count that divides that
    split reads every segment once, where another reads each one many times.
    """
    least = max(1, math.ceil(sum(i.rows for i in infos) / rows_per_partition))
    candidates = [least, *(2**k for k in range(9) if least < 2**k <= 256)]
    return min(candidates, key=lambda n: (read_cost(infos, n), n))


def plan(source: Source, npartitions: int | None, rows_per_partition: int) -> list[Part]:
    """The partitions of *source*: one per bucket (the layout's buckets when compacted), the null bucket last.

    Only the files that are not a compacted bucket's own are read to learn
    their outposts (on the workers).
    """
    files = source.files()
    compacted = compacted_buckets(source)
    own: dict[str, int] = compacted[1] if compacted else {}
    infos = {i.path: i for i in discover(source, [f for f in files if f not in own])}
    if compacted is not None:
        n = compacted[0]
    else:
        n = npartitions or bucket_count(list(infos.values()), rows_per_partition)
    groups = bucket_groups({o for i in infos.values() for o in i.outposts}, n)
    buckets = sorted({b for b in own.values() if b != NO_BUCKET} | set(groups))
    parts: list[Part] = []
    for b in [*buckets, NO_BUCKET]:
        members = set(groups.get(b, ()))
        entries: list[tuple[str, tuple[str, ...] | None]] = []
        for f in files:
            if f in own:
                if own[f] == b:
                    entries.append((f, None))
            elif b == NO_BUCKET:
                if infos[f].no_outpost_rows:
                    entries.append((f, None))
            elif members.intersection(infos[f].outposts):
                entries.append((f, tuple(sorted(members.intersection(infos[f].outposts)))))
        if entries or (b == NO_BUCKET and not parts):
            parts.append(Part(b, tuple(sorted(members)), tuple(entries)))
    return parts


def _filter(
    start: TimeLike, end: TimeLike, endpoints: list[str] | None, bucket: int, outposts: tuple[str, ...] | None
) -> ds.Expression | None:
    expr: ds.Expression | None = None

    def add(e: ds.Expression) -> None:
        nonlocal expr
        expr = e if expr is None else expr & e

    ts_type = COLUMNS["ts"]
    t0, t1 = to_timestamp(start, "start"), to_timestamp(end, "end")
    if t0 is not None:
        add(ds.field("ts") >= pa.scalar(t0.value, type=pa.int64()).cast(ts_type))
    if t1 is not None:
        add(ds.field("ts") < pa.scalar(t1.value, type=pa.int64()).cast(ts_type))
    if endpoints is not None:
        add(ds.field("endpoint").isin(endpoints))
    if bucket == NO_BUCKET:
        add(ds.field("outpost_uuid").is_null())
    elif outposts is not None:
        add(ds.field("outpost_uuid").isin(list(outposts)))
    return expr


def _read_file(
    source: Source,
    path: str,
    bucket: int,
    outposts: tuple[str, ...] | None,
    cols: list[str],
    start: TimeLike,
    end: TimeLike,
    endpoints: list[str] | None,
) -> pa.Table:
    dict_cols = [c for c in cols if c in CATEGORICAL_COLUMNS]
    if source.protocol is None:
        from ..store.reader import load_table

        if bucket == NO_BUCKET:
            # load has no "outpost is null" filter: the endpoints without outposts, then the null rows
            eps = [e for e in _NO_OUTPOST_ENDPOINTS if endpoints is None or e in endpoints]
            if not eps:
                return SCHEMA.empty_table().select(cols)
            extra = [] if "outpost_uuid" in cols else ["outpost_uuid"]
            t = load_table(path, start=start, end=end, endpoint=eps, columns=[*cols, *extra])
            t = t.filter(pc.is_null(t.column("outpost_uuid")))
            return t.select(cols)
        keep = None if outposts is None else list(outposts)
        return load_table(path, start=start, end=end, endpoint=endpoints, outpost=keep, columns=cols)
    fs, _ = source.filesystem()
    fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": dict_cols})
    dataset = ds.dataset(path, format=fmt, filesystem=fs)
    try:
        return dataset.to_table(columns=cols, filter=_filter(start, end, endpoints, bucket, outposts))
    except (pa.ArrowInvalid, OSError) as exc:
        detail = " ".join(str(exc).split())
        raise CaptureFormatError(f"{path} could not be read: {detail}") from exc


def _encode(table: pa.Table, cols: list[str]) -> pa.Table:
    arrays = []
    for name in cols:
        col = table.column(name)
        if name in CATEGORICAL_COLUMNS and not pa.types.is_dictionary(col.type):
            col = col.dictionary_encode()
        arrays.append(col)
    return pa.Table.from_arrays(arrays, names=cols)


def read_partition(
    part: Part,
    source: Source,
    columns: Sequence[str],
    start: TimeLike = None,
    end: TimeLike = None,
    endpoint: Sequence[str] | None = None,
) -> Any:
    """The frames of one partition (runs on a worker): what ``load(path, outpost=part.outposts)`` returns."""
    cols = list(columns)
    eps = None if endpoint is None else list(endpoint)
    tables = [_encode(_read_file(source, f, part.bucket, keep, cols, start, end, eps), cols) for f, keep in part.files]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return empty_frames_of(cols)
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    if "ts" in cols and table.num_rows > 1:
        ts = table.column("ts").cast(pa.int64())
        if not pc.all(pc.greater_equal(ts.slice(1), ts.slice(0, len(ts) - 1))).as_py():
            keys = [("ts", "ascending")] + ([("seq", "ascending")] if "seq" in cols else [])
            table = table.take(pc.sort_indices(table, sort_keys=keys))
    return table_to_frames(table)


def empty_frames_of(columns: Sequence[str]) -> Any:
    """An empty frames DataFrame with *columns* and the dtypes ``load`` gives them."""
    return table_to_frames(_encode(SCHEMA.empty_table().select(list(columns)), list(columns)))
