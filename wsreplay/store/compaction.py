"""``compact``: rewrite a capture's sealed segments into the bucketed layout of :mod:`wsreplay.store.layout`.

A long recording is many segments, each holding every outpost: reading one
group of outposts means scanning all of them. Compacting rewrites the sealed
segments into one directory per outpost bucket (``crc32(pk) % n``, see
:mod:`wsreplay.store.buckets`), so ``load(outpost=...)``, the report's
groups and the Dask partitions read only their buckets' files.

Within a file, rows are grouped by UTC day (one or more row groups per day,
in time order, so a time filter still skips whole row groups) and sorted by
``(outpost_uuid, conn_id, ts, seq)`` inside a day: each connection's rows sit
together, which compresses to less than half of a time-sorted segment
(measured in ``bench/bench_store.py``). ``load`` sorts what it reads by
``(ts, seq)`` as always.

Crash safety: everything is written under a hidden staging directory
(``.compact-<run>``), then the manifest is replaced (atomically), then the
files are renamed into their ``bucket=<k>`` directories, and only then are
the original segments deleted. Readers count a run only once all its files
are in place (each file says how many the run has), and then leave out the
segments it was made from: at every moment every row is read exactly once.
A later ``compact`` removes what a crashed one left.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import CaptureError, CaptureFormatError, CaptureNotFoundError, ConfigurationError
from ..schema import SCHEMA
from .layout import MANIFEST_NAME, Layout, bucket_dir, layout_metadata, layout_of
from .partition import segment_tables, spill_buckets, spill_schema
from .segments import (
    PARQUET_OPTIONS,
    PARQUET_SUFFIX,
    ROW_GROUP_SIZE,
    STREAM_SUFFIX,
    check_parquet,
    try_lock,
)

__all__ = ["CompactReport", "compact", "choose_buckets", "MAX_BUCKETS", "OUTPOSTS_PER_BUCKET"]

#: Outposts per bucket aimed at when the bucket count is chosen from the fleet size.
OUTPOSTS_PER_BUCKET = 8
#: Most buckets chosen automatically (each bucket is one open file while compacting).
MAX_BUCKETS = 256
_DAY_NS = 86_400 * 10**9
_LOCK_NAME = ".wsreplay-compact.lock"
_STAGING = ".compact-"
#: Sort order of the rows of a day inside a compacted file.
ORDER = ("outpost_uuid", "conn_id", "ts", "seq")


def choose_buckets(outposts: int) -> int:
    """The bucket count for a fleet of *outposts*: about 8 outposts a bucket, a power of two, 1 to 256.

    The count is fixed when a capture is first compacted (later runs add to
    the same buckets), so it follows the fleet, which changes slowly, not the
    number of rows, which grows with every day recorded. Eight outposts a
    bucket keep a bucket of a 1,000-outpost fleet (128 buckets) at about
    140 k rows a day, 1 M a week and 4 M a month: one bucket's frames fit
    in memory many times over, which is what the report's groups and Dask's
    partitions need, while files stay large enough (megabytes a week) for
    Parquet to compress and read efficiently. Buckets are merged into larger
    groups when read (the report), never split, so erring small is cheap.
    """
    want = max(1, -(-outposts // OUTPOSTS_PER_BUCKET))
    return min(MAX_BUCKETS, 1 << (want - 1).bit_length())


@dataclass
class CompactReport:
    """What :func:`compact` did."""

    capture: Path
    out: Path
    buckets: int
    rows: int = 0
    sources: list[str] = field(default_factory=list)
    files: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.sources:
            smaller = self.bytes_after and self.bytes_before > self.bytes_after
            ratio = f" ({self.bytes_before / self.bytes_after:.1f}x smaller)" if smaller else ""
            done = (
                f"compacted {len(self.sources)} segment(s), {self.rows:,} rows, into {self.files} file(s) "
                f"in {self.buckets} buckets under {self.out}: {self.bytes_before / 1e6:,.1f} MB -> "
                f"{self.bytes_after / 1e6:,.1f} MB{ratio}"
            )
        else:
            done = f"nothing to compact ({self.buckets} buckets)"
        lines = [done]
        lines += [f"skipped {name}: {why}" for name, why in self.skipped]
        lines += [f"removed {name} (left by an interrupted compaction)" for name in self.cleaned]
        return "\n".join(lines)


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    fh = open(root / _LOCK_NAME, "a+b")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CaptureError(f"another `wsreplay compact` is running on {root}; wait for it to finish") from None
        yield
    finally:
        fh.close()


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _clean(root: Path, lay: Layout | None, rep: CompactReport) -> None:
    """Remove what an interrupted compaction left (under the lock, so nothing here is live)."""
    for name in sorted(os.listdir(root)):
        if name.startswith(_STAGING):
            shutil.rmtree(root / name, ignore_errors=True)
            rep.cleaned.append(name)
    if lay is None:
        return
    for p in lay.incomplete:
        p.unlink(missing_ok=True)
        rep.cleaned.append(str(p.relative_to(root)))
    for name in sorted(lay.compacted):
        p = root / name
        if p.is_file():
            p.unlink()
            rep.cleaned.append(name)


def _sources(root: Path, compacted: set[str], rep: CompactReport) -> list[Path]:
    """The sealed segments of *root* to compact; what cannot be compacted is listed in *rep*."""
    names = set(os.listdir(root))
    found: list[Path] = []
    for name in sorted(names):
        p = root / name
        if name.startswith((".", "_")) or name in compacted:
            continue
        if name.endswith(STREAM_SUFFIX):
            with try_lock(p) as mine:
                why = (
                    "not sealed yet (a crashed recorder's stream: run `wsreplay recover` first)"
                    if mine
                    else "being recorded (a live stream; compact again once it is sealed)"
                )
            rep.skipped.append((name, why))
        elif name.endswith(PARQUET_SUFFIX) and p.is_file():
            if name[: -len(PARQUET_SUFFIX)] + STREAM_SUFFIX in names:
                rep.skipped.append((name, "being sealed (its stream is still there)"))
                continue
            found.append(p)
    return found


def _fleet(sources: list[Path]) -> int:
    pks: set[str] = set()
    for p in sources:
        col = pq.read_table(str(p), columns=["outpost_uuid"], read_dictionary=["outpost_uuid"]).column(0)
        for chunk in col.chunks:
            pks.update(v for v in chunk.dictionary.to_pylist() if v is not None)
    return len(pks)


def _span(sources: list[Path]) -> tuple[int, int] | None:
    from .span import span_ns

    parts = [s for s in (span_ns(p) for p in sources) if s is not None]
    return (min(s[0] for s in parts), max(s[1] for s in parts)) if parts else None


def _spill(sources: list[Path], staging: Path, n: int) -> tuple[dict[int, Path], int]:
    """Split every row of *sources* into one Arrow stream file per bucket (bounded memory: one row group)."""
    cols = list(SCHEMA.names)
    paths, rows = spill_buckets(segment_tables(sources, [], cols), staging, n, spill_schema(cols))
    return paths, sum(rows.values())


def _order(table: pa.Table, day: np.ndarray) -> np.ndarray:
    """Row order by (day, outpost_uuid, conn_id, ts, seq), on integer codes (sorting strings is slow)."""

    def codes(name: str) -> np.ndarray:
        enc = table.column(name).combine_chunks()
        enc = enc if pa.types.is_dictionary(enc.type) else enc.dictionary_encode()
        rank = np.argsort(np.argsort(np.array(enc.dictionary.to_pylist(), dtype=object), kind="stable"))
        idx = enc.indices.fill_null(-1).to_numpy()
        return np.where(idx < 0, -1, rank[np.maximum(idx, 0)] if len(rank) else -1)

    ts = table.column("ts").cast(pa.int64()).to_numpy()
    seq = table.column("seq").fill_null(-1).to_numpy()
    return np.lexsort((seq, ts, codes("conn_id"), codes("outpost_uuid"), day))


def _write_bucket(spill: Path, target: Path, meta: dict[bytes, bytes]) -> int:
    """Sort one bucket's rows by (day, outpost, connection, ts, seq) and write them, a row group per day."""
    with pa.memory_map(str(spill)) as src:
        table = pa.ipc.open_stream(src).read_all()
    # one dictionary per column (each spilled batch brought its own): rows then move as integers
    table = table.unify_dictionaries().combine_chunks()
    day = table.column("ts").cast(pa.int64()).to_numpy() // _DAY_NS
    order = _order(table, day)
    table = table.take(pa.array(order))
    days = day[order]
    cuts = np.flatnonzero(np.diff(days)) + 1
    bounds = [0, *cuts.tolist(), len(days)]
    schema = SCHEMA.with_metadata(meta)
    with open(target, "wb") as fh:
        with pq.ParquetWriter(fh, schema, **PARQUET_OPTIONS) as writer:  # type: ignore[arg-type]
            for lo, hi in itertools.pairwise(bounds):
                block = table.slice(lo, hi - lo).cast(SCHEMA).replace_schema_metadata(meta)
                writer.write_table(block, row_group_size=ROW_GROUP_SIZE)
        fh.flush()
        os.fsync(fh.fileno())
    return table.num_rows


def _write_manifest(root: Path, n: int, window: tuple[int, int] | None) -> None:
    tmp = root / f".{MANIFEST_NAME}.tmp"
    meta = layout_metadata({"buckets": n, "window": list(window) if window else None})
    with open(tmp, "wb") as fh:
        pq.write_table(SCHEMA.empty_table().replace_schema_metadata(meta), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / MANIFEST_NAME)
    _fsync_dir(root)


def compact(
    path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, buckets: int | None = None
) -> CompactReport:
    """Rewrite the sealed segments of a capture into Parquet partitioned by outpost bucket.

    Parameters
    ----------
    path : path
        A capture directory. Its sealed Parquet segments are compacted; a
        stream still being recorded (locked by its recorder), a crashed
        recorder's unsealed stream (run ``wsreplay recover`` first) and a
        segment being sealed are left alone and listed in the report.
        Compacting again later adds the segments sealed since.
    out : path, optional
        Write the compacted capture into this new (or empty) directory and
        leave *path* untouched; by default *path* is compacted in place
        (its segments are removed once their rows are in the buckets).
    buckets : int, optional
        Number of outpost buckets. Default: chosen from the number of
        outposts by :func:`choose_buckets` (about eight per bucket), or the
        count the capture was compacted with before (which cannot change).

    Returns
    -------
    CompactReport
        Rows and segments compacted, files written, sizes before and after,
        what was skipped and why.

    Raises
    ------
    CaptureNotFoundError
        If *path* does not exist.
    CaptureFormatError
        If *path* is not a capture directory, or a segment is not a capture file.
    ConfigurationError
        If *buckets* is not positive or differs from the count the capture was compacted with.
    """
    src = Path(path)
    if not src.exists():
        raise CaptureNotFoundError(f"capture {src} does not exist")
    if not src.is_dir():
        raise CaptureFormatError(f"{src} is a file; `wsreplay compact` takes a capture directory")
    if buckets is not None and buckets < 1:
        raise ConfigurationError(f"--buckets must be at least 1, not {buckets}")
    dest = src if out is None else Path(out)
    if out is not None:
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ConfigurationError(f"{dest} is not an empty directory; --out takes a new one")
        dest.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        return _compact_locked(src, dest, buckets)


def _compact_locked(src: Path, dest: Path, buckets: int | None) -> CompactReport:
    prior = layout_of(dest)
    rep = CompactReport(capture=src, out=dest, buckets=prior.buckets if prior else (buckets or 0))
    _clean(dest, prior, rep)
    sources = _sources(src, prior.compacted if prior and src == dest else set(), rep)
    src_lay = layout_of(src) if src != dest else None
    if src_lay is not None:  # copying a compacted capture: its buckets' rows are sources too
        sources = [p for p in sources if p.name not in src_lay.compacted] + src_lay.select()
    if not sources and prior is None and src_lay is None:
        raise CaptureNotFoundError(
            f"{src} holds no sealed capture segments to compact (*.parquet)"
            + ("; " + "; ".join(f"{n}: {w}" for n, w in rep.skipped) if rep.skipped else "")
        )
    for p in sources:
        if not check_parquet(p):
            raise CaptureNotFoundError(f"{p} vanished while compacting (another compaction?); run it again")
    if prior is not None and buckets is not None and buckets != prior.buckets:
        raise ConfigurationError(
            f"{dest} is compacted into {prior.buckets} buckets; compact it again with --buckets {prior.buckets} "
            "(or none), or into a new directory with --out"
        )
    if not sources:
        return rep
    n = prior.buckets if prior else (buckets or choose_buckets(_fleet(sources)))
    rep.buckets = n
    spans = [s for s in (_span(sources), prior.window if prior else None) if s is not None]
    window = (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None
    run = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)
    staging = dest / f"{_STAGING}{run}"
    staging.mkdir()
    rep.sources = [p.name if p.parent == src else str(p.relative_to(src)) for p in sources]
    rep.bytes_before = sum(p.stat().st_size for p in sources)
    spills, rep.rows = _spill(sources, staging, n)
    rows = rep.rows
    names = [p.name for p in sources if p.parent == dest]  # in place: the segments to remove afterwards
    written: list[tuple[int, Path]] = []
    for k in sorted(spills):
        info: dict[str, object] = {"buckets": n, "bucket": k, "window": list(window) if window else None, "run": run}
        info |= {"run_files": len(spills), "sources": names, "order": ["day", *ORDER]}
        name = f"part-{run}{PARQUET_SUFFIX}"
        staged = staging / f"{k}-{name}"
        rows -= _write_bucket(spills[k], staged, layout_metadata(info))
        spills[k].unlink()
        written.append((k, staged))
    if rows != 0:  # never remove a segment whose rows did not all arrive
        raise CaptureError(f"compaction of {src} lost track of {rows} rows; nothing was changed")
    _fsync_dir(staging)
    _write_manifest(dest, n, window)  # before any file is visible: an older wsreplay refuses the capture
    for k, staged in written:
        d = bucket_dir(dest, k)
        d.mkdir(exist_ok=True)
        final = d / f"part-{run}{PARQUET_SUFFIX}"
        os.replace(staged, final)
        _fsync_dir(d)
        rep.files += 1
        rep.bytes_after += final.stat().st_size
    _fsync_dir(dest)
    for name in names:  # the run is complete: these rows are read from the buckets now
        (dest / name).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    return rep
