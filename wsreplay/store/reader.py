"""Reading, saving and recovering captures.

``load`` reads a capture file or directory (sealed Parquet segments and
in-progress or crashed Arrow stream segments alike) into the frames
DataFrame. Filters are pushed down to pyarrow, so reading one hour of a month
only decodes the row groups that can hold that hour.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from ..exceptions import CaptureFormatError, CaptureNotFoundError
from ..schema import CATEGORICAL_COLUMNS, COLUMNS, SCHEMA, table_to_frames
from ..timeutil import TimeLike, to_timestamp
from .segments import (
    PARQUET_SUFFIX,
    STREAM_SUFFIX,
    StreamDamage,
    check_schema,
    check_version,
    read_stream,
    seal_stream,
    try_lock,
    write_parquet,
)

__all__ = ["load", "load_table", "save", "recover", "RecoveryReport", "segment_files", "TimeLike"]


@dataclass
class Segments:
    """The segment files of a capture, split by kind."""

    parquet: list[Path] = field(default_factory=list)
    streams: list[Path] = field(default_factory=list)


def _check_exists(p: Path) -> None:
    if not p.exists():
        raise CaptureNotFoundError(f"capture {p} does not exist")


def _no_segments(p: Path) -> CaptureNotFoundError:
    return CaptureNotFoundError(
        f"{p} holds no capture segments (*.parquet or *.arrows); "
        "record one with `wsreplay record` or `wsreplay simulate`"
    )


def segment_files(path: str | os.PathLike[str]) -> Segments:
    """List the segments of a capture file or directory (one directory listing).

    A stream segment whose Parquet twin exists (sealed, or a crash between
    sealing and deleting the stream) is left out: the Parquet file holds the
    same rows. To read the segments of a capture that is still being recorded,
    use :func:`load` / :func:`load_table`, which open what they list.
    """
    p = Path(path)
    _check_exists(p)
    if p.is_file():
        if p.suffix == STREAM_SUFFIX:
            return Segments(streams=[p])
        return Segments(parquet=[p])
    names = set(os.listdir(p))
    parquet = sorted(p / n for n in names if n.endswith(PARQUET_SUFFIX))
    streams = sorted(
        p / n for n in names if n.endswith(STREAM_SUFFIX) and n[: -len(STREAM_SUFFIX)] + PARQUET_SUFFIX not in names
    )
    parquet = [x for x in parquet if x.is_file()]
    streams = [x for x in streams if x.is_file()]
    if not parquet and not streams:
        raise _no_segments(p)
    return Segments(parquet=parquet, streams=streams)


#: Directory listings :func:`_open_segments` takes at most (it stops earlier once one adds nothing).
_MAX_LISTINGS = 8


@dataclass
class _Opened:
    """The segments of a capture, with every stream segment already open.

    A running recorder seals a stream (``.arrows`` -> ``.parquet.tmp`` ->
    rename -> unlink the stream) at any moment. Holding the stream open keeps
    its rows readable after the unlink; Parquet segments are never removed or
    rewritten once renamed into place, so their paths are enough.
    """

    parquet: list[Path] = field(default_factory=list)
    streams: list[tuple[Path, BinaryIO]] = field(default_factory=list)

    def close(self) -> None:
        for _, fh in self.streams:
            fh.close()


def _open_segments(p: Path) -> _Opened:
    """List and open the segments of *p*: each segment's rows exactly once, from its stream or its Parquet.

    A directory listing that runs while files are renamed and unlinked may miss
    both the stream that was removed and the Parquet file that replaced it;
    a second listing, started after the first ended, sees that Parquet file.
    So listings are repeated until one finds no new segment (at least two).
    """
    _check_exists(p)
    opened = _Opened()
    if p.is_file():
        if p.suffix != STREAM_SUFFIX:
            opened.parquet.append(p)
            return opened
        try:
            opened.streams.append((p, open(p, "rb")))
        except FileNotFoundError:  # sealed since: read its Parquet twin
            sealed = p.with_suffix(PARQUET_SUFFIX)
            if not sealed.is_file():
                raise CaptureNotFoundError(f"capture {p} does not exist (any more)") from None
            opened.parquet.append(sealed)
        return opened
    done: set[str] = set()  # segment names (file name without suffix) already taken
    try:
        for listing in range(_MAX_LISTINGS):
            names = set(os.listdir(p))
            found = False
            for name in sorted(names):
                if name.endswith(PARQUET_SUFFIX):
                    stem, twin = name[: -len(PARQUET_SUFFIX)], None
                elif name.endswith(STREAM_SUFFIX):
                    stem = name[: -len(STREAM_SUFFIX)]
                    twin = stem + PARQUET_SUFFIX
                else:
                    continue
                if stem in done:
                    continue
                if twin is None or twin in names:
                    sealed = p / (stem + PARQUET_SUFFIX)
                    if sealed.is_file():
                        opened.parquet.append(sealed)
                        done.add(stem)
                        found = True
                    continue
                try:
                    fh = open(p / name, "rb")
                except (FileNotFoundError, IsADirectoryError):
                    # sealed since the listing: its rows are in the Parquet twin (none if it was empty)
                    sealed = p / twin
                    if sealed.is_file():
                        opened.parquet.append(sealed)
                        done.add(stem)
                        found = True
                    continue
                opened.streams.append((p / name, fh))
                done.add(stem)
                found = True
            if listing >= 1 and not found:
                break
    except BaseException:
        opened.close()
        raise
    if not opened.parquet and not opened.streams:
        raise _no_segments(p)
    opened.parquet.sort()
    opened.streams.sort(key=lambda item: item[0])
    return opened


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


def _check_parquet(path: Path) -> None:
    try:
        schema = pq.read_schema(str(path))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:  # a damaged footer may hold non-UTF-8 names
        detail = " ".join(str(exc).split())
        raise CaptureFormatError(f"{path} is not a readable Parquet file ({detail}); is it a capture?") from exc
    check_version(schema.metadata, path)
    check_schema(schema, path)


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
    segs = _open_segments(Path(path))
    try:
        tables = _read_segments(segs, path, cols, dict_cols, expr)
    finally:
        segs.close()
    if not tables:
        return _encode_dicts(SCHEMA.empty_table().select(cols), dict_cols)
    table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    if "ts" in cols and table.num_rows > 1 and not _sorted(table):
        keys = [("ts", "ascending")] + ([("seq", "ascending")] if "seq" in cols else [])
        table = table.take(pc.sort_indices(table, sort_keys=keys))
    return table


def _read_segments(
    segs: _Opened, path: str | os.PathLike[str], cols: list[str], dict_cols: list[str], expr: ds.Expression | None
) -> list[pa.Table]:
    tables: list[pa.Table] = []
    if segs.parquet:
        for p in segs.parquet:
            _check_parquet(p)
        fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": dict_cols})
        dataset = ds.dataset([str(p) for p in segs.parquet], format=fmt, schema=_dict_schema(dict_cols))
        try:
            tables.append(dataset.to_table(columns=cols, filter=expr))
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
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


@dataclass
class RecoveryReport:
    """What :func:`recover` did."""

    sealed: list[Path] = field(default_factory=list)
    rows: int = 0
    removed: list[Path] = field(default_factory=list)
    busy: list[Path] = field(default_factory=list)
    #: Streams with a damaged part: what could not be read and what was kept around it.
    damaged: list[StreamDamage] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"sealed {len(self.sealed)} segment(s) with {self.rows} event(s)"]
        if self.removed:
            parts.append(f"removed {len(self.removed)} leftover file(s)")
        if self.busy:
            parts.append(f"skipped {len(self.busy)} file(s) still being written by a running recorder")
        if self.damaged:
            lost = sum(d.bytes_lost for d in self.damaged)
            parts.append(f"{len(self.damaged)} damaged segment(s), {lost} byte(s) unreadable (see the warnings)")
        return "; ".join(parts)


_TMP_SUFFIX = PARQUET_SUFFIX + ".tmp"


def recover(path: str | os.PathLike[str]) -> RecoveryReport:
    """Seal what a crashed recorder left in a capture directory.

    Every ``.arrows`` stream segment not held by a running writer is read up to
    its last whole batch (past a damaged batch in the middle, see
    :func:`load`) and sealed into Parquet; half-written ``.parquet.tmp`` files
    and streams whose Parquet twin already exists are removed.

    A live writer holds an exclusive ``flock`` on its stream segment until the
    segment is sealed and deleted, and on a ``.parquet.tmp`` while writing it:
    those files (and the ``.parquet.tmp`` of a locked stream) are left alone
    and listed in ``busy``. Recovering a capture that is still being recorded
    is therefore safe; it seals only what crashed writers left.

    Returns
    -------
    RecoveryReport
        Segments sealed, events recovered, files removed, files skipped, damage found.
    """
    p = Path(path)
    if not p.is_dir():
        raise CaptureNotFoundError(f"{p} is not a capture directory")
    report = RecoveryReport()
    for stream in sorted(p.glob(f"*{STREAM_SUFFIX}")):
        with try_lock(stream) as mine:
            if not mine:
                if stream.exists():
                    report.busy.append(stream)
                continue
            target = stream.with_suffix(PARQUET_SUFFIX)
            if target.exists():
                stream.unlink()
                report.removed.append(stream)
                continue
            rows = seal_stream(stream, target, damage=report.damaged)
            if rows:
                report.sealed.append(target)
                report.rows += rows
            else:
                report.removed.append(stream)
            stream.unlink()
    for tmp in sorted(p.glob(f"*{_TMP_SUFFIX}")):
        stream = p / (tmp.name[: -len(_TMP_SUFFIX)] + STREAM_SUFFIX)
        with try_lock(stream) as stream_free:
            if not stream_free and stream.exists():
                report.busy.append(tmp)  # its stream is being sealed by a live writer
                continue
            with try_lock(tmp) as mine:
                if not mine:
                    if tmp.exists():
                        report.busy.append(tmp)
                    continue
                tmp.unlink()
                report.removed.append(tmp)
    return report
