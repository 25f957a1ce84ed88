"""Captures as Dask DataFrames, partitioned by outpost bucket.

``wsreplay.dask.load(path)`` returns a lazy Dask DataFrame whose partitions
are buckets of outposts (``crc32(outpost_uuid) % n``, the split of
:mod:`wsreplay.store.buckets`) plus one partition for the rows without an
outpost (browser notices, other endpoints). Each partition is read on a
worker and holds exactly what ``wsreplay.load(path, outpost=<its outposts>)``
returns. The public analysis functions accept the result and return the same
pandas result as on the loaded frames, computed on the current Dask scheduler
(the ``distributed.Client`` you created, if any)::

    from distributed import Client
    import wsreplay, wsreplay.dask

    client = Client("tcp://scheduler:8786")          # or Client() for local worker processes
    frames = wsreplay.dask.load("s3://captures/prod", storage_options={"anon": False})
    wsreplay.outages(frames, level="outpost")        # a pandas DataFrame

Every partition is judged over the whole capture's window (its first and last
event, from the files' statistics), never its own: the frame carries it in
``frames.attrs["wsreplay_span"]`` (see :func:`capture_window`).

Needs the ``dask`` extra: ``pip install 'wsreplay[dask]'``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from .daskengine.window import SPAN_ATTR
from .exceptions import ConfigurationError
from .schema import COLUMNS
from .timeutil import TimeLike

__all__ = ["load", "capture_window", "SPAN_ATTR", "DEFAULT_PARTITION_ROWS"]

#: Rows a partition aims at when the bucket count is chosen for you (a few hundred MB in pandas).
DEFAULT_PARTITION_ROWS = 4_000_000


def _import_dask() -> Any:
    try:
        import dask.dataframe as dd
    except ImportError as exc:  # pragma: no cover - the extra is installed by make test
        raise ConfigurationError("wsreplay.dask needs Dask: pip install 'wsreplay[dask]'") from exc
    return dd


def load(
    path: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    *,
    start: TimeLike = None,
    end: TimeLike = None,
    endpoint: str | Sequence[str] | None = None,
    npartitions: int | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Any:
    """A capture as a Dask DataFrame with one partition per outpost bucket.

    Parameters
    ----------
    path : path or URL
        A capture directory or file, or an fsspec URL of one (``s3://...``,
        ``gs://...``, ``file:///...``; remote captures must be sealed Parquet).
    columns : list of str, optional
        Read only these columns (all by default); e.g.
        ``wsreplay.analysis.columns_for("outages", "ack_latency")``.
    start, end, endpoint
        As for :func:`wsreplay.load`. The analysis window is then the rows'
        own span, computed once with a Dask min/max of ``ts``.
    npartitions : int, optional
        The number of outpost buckets. A compacted capture (``wsreplay
        compact``) has its own, one partition per bucket directory; otherwise
        the default is the count that scans the fewest rows among those that
        keep partitions under :data:`DEFAULT_PARTITION_ROWS` rows
        (:func:`wsreplay.daskengine.partitions.bucket_count`).
    storage_options : dict, optional
        fsspec options for a URL (credentials, endpoint, ``anon``...).

    Returns
    -------
    dask.dataframe.DataFrame
        Partitions in bucket order, the rows without an outpost last; each
        one what ``wsreplay.load(path, outpost=<its outposts>, columns=...)``
        returns (same dtypes; categorical columns with categories known per
        partition only).

    Notes
    -----
    Finding which outposts a capture holds reads its ``outpost_uuid`` column,
    file by file on the workers. In a capture that is not compacted every file
    may hold every outpost, so every partition scans every file: compacting
    first (``wsreplay compact CAPTURE``) gives each bucket its own files, and
    then each partition reads only them.

    Examples
    --------
    >>> frames = wsreplay.dask.load("sample_captures/incident", npartitions=4)  # authentik restarts at 00:15
    >>> frames.npartitions  # four buckets of outposts, and the rows without an outpost
    5
    >>> wsreplay.outages(frames, level="outpost").groupby("cause", observed=True).size()
    cause
    disconnect         1
    upstream_close    40
    dtype: int64
    """
    dd = _import_dask()
    from .daskengine.partitions import Source, empty_frames_of, plan, read_partition
    from .daskengine.window import source_span

    cols = list(COLUMNS) if columns is None else list(columns)
    unknown = [c for c in cols if c not in COLUMNS]
    if unknown:
        raise ConfigurationError(f"unknown capture column(s) {unknown}; the columns are {list(COLUMNS)}")
    if npartitions is not None and npartitions < 1:
        raise ConfigurationError(f"npartitions must be at least 1, not {npartitions}")
    source = Source.of(path, storage_options)
    eps = None if endpoint is None else ([endpoint] if isinstance(endpoint, str) else list(endpoint))
    parts = plan(source, npartitions, DEFAULT_PARTITION_ROWS)
    meta = empty_frames_of(cols)
    if start is None and end is None and eps is None:
        span = source_span(source)
        if span is not None:
            meta.attrs[SPAN_ATTR] = span
    from dask.dataframe.utils import clear_known_categories

    meta = clear_known_categories(meta)
    import dask

    # partitions are already what load returns: no conversion of object columns (binary payloads) to strings
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_map(
            read_partition,
            parts,
            source=source,
            columns=cols,
            start=start,
            end=end,
            endpoint=eps,
            meta=meta,
            label="wsreplay-load",
            enforce_metadata=False,
        )


def capture_window(frames: Any) -> tuple[int, int] | None:
    """The window (first and last ``ts``, epoch ns) every partition of *frames* is judged over.

    The capture's span that :func:`load` stored in the frame's attrs when it
    read the whole capture; otherwise (filters, a frame built elsewhere) the
    min and max of ``ts``, computed on the current scheduler. ``None`` when
    there are no rows.
    """
    from .daskengine.window import frame_window

    return frame_window(frames)
