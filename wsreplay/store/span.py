"""The span of a capture (its first and last event) from the files' statistics, without reading rows.

A capture analysed in pieces (the report's outpost groups, a partitioned or
distributed engine) must judge every piece over the capture's own window,
not the piece's: an outpost that went silent early would otherwise look
fine in a piece whose frames end when it died. :func:`capture_span` gives that
window, to pass as ``span=`` to :func:`wsreplay.outages` and
:func:`wsreplay.uptime`.

A compacted capture keeps its window in its manifest's metadata. Sealed
Parquet segments carry min/max statistics of ``ts`` per row group: only
their footers are read. Stream segments still being written (or left by a
crash) have no statistics: their ``ts`` column is read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..exceptions import CaptureFormatError
from .layout import read_manifest
from .listing import segment_files
from .segments import read_stream

__all__ = ["capture_span", "span_ns"]


def _parquet_span(path: os.PathLike[str] | str) -> tuple[int, int] | None:
    try:
        meta = pq.ParquetFile(str(path)).metadata
    except (pa.ArrowInvalid, OSError) as exc:
        raise CaptureFormatError(f"{path} is not a readable Parquet file ({exc}); is it a capture?") from exc
    col = meta.schema.names.index("ts") if "ts" in meta.schema.names else -1
    if col < 0:
        raise CaptureFormatError(f"{path} has no 'ts' column; is it a capture?")
    lo: int | None = None
    hi: int | None = None
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        if rg.num_rows == 0:
            continue
        stats = rg.column(col).statistics
        ns = stats is not None and stats.has_min_max and "nanoseconds" in str(stats.logical_type)
        if not ns or stats is None or not isinstance(stats.min_raw, int):
            return _table_span(pq.read_table(str(path), columns=["ts"]))
        a, b = int(stats.min_raw), int(stats.max_raw)
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return None if lo is None or hi is None else (lo, hi)


def _table_span(table: pa.Table) -> tuple[int, int] | None:
    if table.num_rows == 0:
        return None
    mm = pc.min_max(table.column("ts").cast(pa.int64()))
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    return None if lo is None or hi is None else (int(lo), int(hi))


def span_ns(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """First and last ``ts`` of the capture at *path* in epoch nanoseconds (``None``: no rows).

    A compacted capture's window is in its manifest (see
    :mod:`wsreplay.store.layout`): only the segments recorded since are read.
    """
    p = Path(path)
    manifest = read_manifest(p) if p.is_dir() else None
    seg = segment_files(p, buckets=manifest is None)
    window = manifest.get("window") if manifest is not None else None
    parts: list[tuple[int, int] | None] = [(int(window[0]), int(window[1]))] if window else []
    parts += [_parquet_span(p) for p in seg.parquet]
    parts += [_table_span(read_stream(p).select(["ts"])) for p in seg.streams]
    found = [p for p in parts if p is not None]
    if not found:
        return None
    return min(p[0] for p in found), max(p[1] for p in found)


def capture_span(path: str | os.PathLike[str]) -> tuple[object, object] | None:
    """First and last event of the capture at *path*, as UTC :class:`pandas.Timestamp`.

    Pass it as ``span=`` to :func:`wsreplay.outages` / :func:`wsreplay.uptime`
    when analysing part of the capture. ``None`` for a capture without rows.

    Examples
    --------
    >>> span = capture_span("capture/")  # doctest: +SKIP
    >>> wsreplay.outages(wsreplay.load("capture/", outpost=[pk]), span=span)  # doctest: +SKIP
    """
    import pandas as pd

    ns = span_ns(path)
    if ns is None:
        return None
    return pd.Timestamp(ns[0], unit="ns", tz="UTC"), pd.Timestamp(ns[1], unit="ns", tz="UTC")
