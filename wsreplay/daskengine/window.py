"""The window every partition is judged over: the capture's first and last event.

A partition of outposts must be analysed over the whole capture's window,
never its own (an outpost that died early, alone in its partition, would
otherwise look fine). :func:`wsreplay.dask.load` stores the capture's span,
read from the files' statistics, in the frame's attrs; a frame without it
(filtered at load, built elsewhere) gets the min and max of its ``ts``,
computed once on the current scheduler.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .partitions import Source

__all__ = ["SPAN_ATTR", "source_span", "frame_window"]

#: Key of the Dask frame's meta ``attrs`` that holds the capture's window (epoch ns).
SPAN_ATTR = "wsreplay_span"


def _remote_span(source: Source) -> tuple[int, int] | None:
    import pyarrow.parquet as pq

    fs, _ = source.filesystem()
    lo: int | None = None
    hi: int | None = None
    for path in source.files():
        pf = pq.ParquetFile(fs.open(path, "rb"))
        meta = pf.metadata
        col = meta.schema.names.index("ts")
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            if rg.num_rows == 0:
                continue
            stats = rg.column(col).statistics
            if stats is None or not stats.has_min_max or not isinstance(stats.min_raw, int):
                ts = pf.read_row_group(g, columns=["ts"]).column("ts").cast(pa.int64())
                mm = pc.min_max(ts)
                a, b = mm["min"].as_py(), mm["max"].as_py()
            else:
                a, b = int(stats.min_raw), int(stats.max_raw)
            if a is None or b is None:
                continue
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    return None if lo is None or hi is None else (lo, hi)


def source_span(source: Source) -> tuple[int, int] | None:
    """First and last ``ts`` of the capture (epoch ns) from the files' footers; ``None``: no rows."""
    if source.protocol is None:
        from ..store.span import span_ns

        return span_ns(source.path)
    return _remote_span(source)


def frame_window(frames: Any) -> tuple[int, int] | None:
    """The capture's span stored in *frames*' attrs, else the min/max of its ``ts`` (computed once)."""
    import dask

    attrs = getattr(frames._meta, "attrs", {})
    if SPAN_ATTR in attrs:
        lo, hi = attrs[SPAN_ATTR]
        return int(lo), int(hi)
    ts = frames["ts"]
    lo_ts, hi_ts = dask.compute(ts.min(), ts.max())
    import pandas as pd

    if pd.isna(lo_ts) or pd.isna(hi_ts):
        return None
    return int(pd.Timestamp(lo_ts).value), int(pd.Timestamp(hi_ts).value)
