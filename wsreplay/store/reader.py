"""Reading and saving captures: ``load``, ``load_table``, ``save``.

``load`` reads a capture file or directory (sealed Parquet segments and
in-progress or crashed Arrow stream segments alike) into the frames
DataFrame. Filters are pushed down to pyarrow, so reading one hour of a month
only decodes the row groups that can hold that hour.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from ..exceptions import CaptureFormatError
from ..schema import CATEGORICAL_COLUMNS, COLUMNS, SCHEMA, table_to_frames
from ..timeutil import TimeLike, to_timestamp
from .layout import buckets_for, layout_of
from .listing import OpenedSegments, open_segments
from .segments import (
    PARQUET_SUFFIX,
    check_parquet,
    read_stream,
    write_parquet,
)

__all__ = ["load", "load_table", "save", "TimeLike"]


def _as_list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _filter(start: TimeLike, end: TimeLike, endpoint: Any, outpost: Any) -> ds.Expression | None:
    expr: ds.Expression | None = None

    def add(e: ds.Expression) -> None:
        nonlocal expr
        expr = e if expr is None else expr & e

    t0, t1 = to_timestamp(start, "start"), to_timestamp(end, "end")
    ts_type = COLUMNS["ts"]
    if t0 is not None:
        add(ds.field("ts") >= pa.scalar(t0.value, type=pa.int64()).cast(ts_type))
    if t1 is not None:
        add(ds.field("ts") < pa.scalar(t1.value, type=pa.int64()).cast(ts_type))
    endpoints = _as_list(endpoint)
    if endpoints is not None:
        add(ds.field("endpoint").isin(endpoints))
    outposts = _as_list(outpost)
    if outposts is not None:
        add(ds.field("outpost_uuid").isin(outposts))
    return expr


def load_table(
    path: str | os.PathLike[str],
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    endpoint: str | Sequence[str] | None = None,
    outpost: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Like :func:`load`, but return the Arrow table (string columns dictionary-encoded)."""
    cols = list(COLUMNS) if columns is None else list(columns)
    unknown = [c for c in cols if c not in COLUMNS]
    if unknown:
        raise CaptureFormatError(f"unknown capture column(s) {unknown}; the columns are {list(COLUMNS)}")
    expr = _filter(start, end, endpoint, outpost)
    dict_cols = [c for c in cols if c in CATEGORICAL_COLUMNS]
    p = Path(path)
    tables: list[pa.Table] | None = None
    for _ in range(_ATTEMPTS):
        segs = open_segments(p)
        try:
            files = _parquet_files(p, segs.parquet, _as_list(outpost))
            tables = _read_segments(segs, files, path, cols, dict_cols, expr)
        finally:
            segs.close()
        if tables is not None:
            break
        # else a compaction finished meanwhile and removed segments it had listed: list again
    if tables is None:
        raise CaptureFormatError(f"{path} kept changing while it was read (compacted meanwhile?); try again")
    if not tables:
        return _encode_dicts(SCHEMA.empty_table().select(cols), dict_cols)
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    if "ts" in cols and table.num_rows > 1 and not _sorted(table):
        keys = [("ts", "ascending")] + ([("seq", "ascending")] if "seq" in cols else [])
        table = table.take(pc.sort_indices(table, sort_keys=keys))
    return table


#: Times the segments are listed and read when files vanish meanwhile (a compaction removing them).
_ATTEMPTS = 4


def _parquet_files(p: Path, listed: list[Path], outposts: list[str] | None) -> list[Path]:
    """The Parquet files to read: the listed segments, plus a compacted capture's buckets that can match.

    The layout is read after the segments were listed: a segment that a
    compaction finished with meanwhile is then left out (its rows are in the
    buckets), and one it is still working on is read from the segment.
    """
    lay = layout_of(p) if p.is_dir() else None
    if lay is None:
        return listed
    wanted = None if outposts is None else buckets_for(outposts, lay.buckets)
    return [f for f in listed if f.name not in lay.compacted] + lay.select(wanted)


def _read_segments(
    segs: OpenedSegments,
    files: list[Path],
    path: str | os.PathLike[str],
    cols: list[str],
    dict_cols: list[str],
    expr: ds.Expression | None,
) -> list[pa.Table] | None:
    """The rows of every segment; None if a listed Parquet file was removed before it was read."""
    tables: list[pa.Table] = []
    if files:
        for p in files:
            if not check_parquet(p):
                return None
        fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": dict_cols})
        try:
            dataset = ds.dataset([str(p) for p in files], format=fmt, schema=_dict_schema(dict_cols))
            tables.append(dataset.to_table(columns=cols, filter=expr))
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            if not all(p.is_file() for p in files):
                return None
            detail = " ".join(str(exc).split())  # pyarrow's messages span lines; the user gets one
            raise CaptureFormatError(f"a segment of {path} could not be read: {detail}") from exc
    for name, fh in segs.streams:
        t = read_stream(fh, name=name)
        if expr is not None and t.num_rows:
            t = t.filter(expr)
        t = t.select(cols)
        tables.append(_encode_dicts(t, dict_cols))
    return tables


def _dict_schema(dict_cols: list[str]) -> pa.Schema:
    fields = []
    for f in SCHEMA:
        if f.name in dict_cols:
            fields.append(pa.field(f.name, pa.dictionary(pa.int32(), f.type)))
        else:
            fields.append(f)
    return pa.schema(fields, metadata=SCHEMA.metadata)


def _encode_dicts(table: pa.Table, dict_cols: list[str]) -> pa.Table:
    arrays = []
    for name in table.column_names:
        col = table.column(name)
        if name in dict_cols and not pa.types.is_dictionary(col.type):
            col = col.dictionary_encode()
        arrays.append(col)
    return pa.Table.from_arrays(arrays, names=table.column_names)


def _sorted(table: pa.Table) -> bool:
    """True if ``ts`` never goes backwards (checked chunk by chunk, without copying the column)."""
    previous: int | None = None
    for chunk in table.column("ts").chunks:
        if len(chunk) == 0:
            continue
        ts = chunk.view(pa.int64()).to_numpy(zero_copy_only=chunk.null_count == 0)
        if previous is not None and ts[0] < previous:
            return False
        if not (ts[1:] >= ts[:-1]).all():
            return False
        previous = int(ts[-1])
    return True


def load(
    path: str | os.PathLike[str],
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    endpoint: str | Sequence[str] | None = None,
    outpost: str | Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Load a capture into the frames DataFrame.

    Parameters
    ----------
    path : path
        A capture directory, or one ``.parquet`` / ``.arrows`` segment. Segments
        still being written, and a segment cut off by a crash, are read up to
        their last whole batch. A capture that a recorder is writing (and
        rotating) meanwhile is read consistently: every row on disk when the
        call began, each once.
    start, end : str, datetime, Timestamp or epoch seconds, optional
        Keep events with ``start <= ts < end`` (naive times are UTC).
    endpoint : str or list of str, optional
        ``"outpost"``, ``"client"`` and/or ``"other"``.
    outpost : str or list of str, optional
        Outpost pk(s) (``outpost_uuid``).
    columns : list of str, optional
        Read only these columns (all by default).

    Returns
    -------
    pandas.DataFrame
        One row per event, sorted by ``ts``, with the capture columns:
        ``ts`` as ``datetime64[ns, UTC]``, low-cardinality strings as
        ``category``, integers as nullable ``Int16``/``Int32``/``Int64``.

    Raises
    ------
    CaptureNotFoundError
        If *path* does not exist or holds no segment.
    CaptureFormatError
        If a file is not a capture; ``CaptureVersionError`` if it was written
        by a newer wsreplay.

    Warns
    -----
    CaptureDamageWarning
        If a stream segment is damaged in the middle: the batches before and
        after the damage are returned, and the warning says how many bytes
        (and, when known, batches and rows) could not be read.

    Examples
    --------
    >>> frames = wsreplay.load("sample_captures/fleet_day")
    >>> frames.groupby("endpoint", observed=True).size()  # doctest: +ELLIPSIS
    endpoint
    outpost    ...
    client     ...
    dtype: int64
    """
    table = load_table(path, start=start, end=end, endpoint=endpoint, outpost=outpost, columns=columns)
    try:
        return table_to_frames(table)
    except (pa.ArrowException, UnicodeDecodeError) as exc:  # damaged values (e.g. a string that is not UTF-8)
        detail = " ".join(str(exc).split())
        raise CaptureFormatError(f"{path} holds damaged values ({detail}); is it a capture?") from exc


def save(frames: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Save a frames DataFrame as one capture Parquet file.

    Parameters
    ----------
    frames : pandas.DataFrame
        Frames as returned by :func:`load` (a subset of rows or columns is fine:
        missing columns are written as nulls). When no message has its parsed
        columns (``instruction_name``, ``message_type``, ``parse_error``: a
        table built by hand or converted with only ``payload``), they are
        decoded from the payloads with the recorder's decoder
        (:func:`wsreplay.store.decoding.decode_missing`).
    path : path
        Target file; ``.parquet`` is added when it has no suffix. An existing
        directory gets a file ``capture.parquet`` inside it.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from ..schema import frames_to_table
    from .decoding import decode_missing

    p = Path(path)
    if p.is_dir():
        p = p / "capture.parquet"
    elif p.suffix == "":
        p = p.with_suffix(PARQUET_SUFFIX)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(decode_missing(frames_to_table(frames)), p)
    return p
