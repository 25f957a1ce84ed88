"""The compacted layout of a capture: ``bucket=<k>/`` directories of Parquet files, one bucket per outpost group.

``wsreplay compact`` (:func:`wsreplay.store.compaction.compact`) rewrites a
capture's sealed segments into a hive layout that pyarrow datasets, pandas,
DuckDB, Spark and Dask read as it is::

    capture/
      _wsreplay_layout.parquet        the layout's manifest: no rows, its metadata says what is here
      bucket=-1/part-<run>.parquet    rows without an outpost (browsers, other paths)
      bucket=0/part-<run>.parquet     the outposts whose crc32(pk) % n == 0
      ...
      bucket=<n-1>/part-<run>.parquet
      <capture_id>-00042.parquet      segments sealed after the last compaction (read as before)
      <capture_id>-00043.arrows       the segment being recorded (never compacted while live)

Every compaction *run* adds at most one file per bucket. Each file names, in
its key-value metadata (``wsreplay.layout``, JSON), its run, how many files
the run wrote and which segments it was made from. A run counts only once
all its files are in place; then, and only then, the segments it was made
from are left out (they are deleted right after; a crash in between leaves
them behind, and :func:`layout_of` reads each row once all the same). A run
whose files are not all in place (a crash while they were renamed into
place) is ignored: its rows are still in the original segments.

The manifest carries format version 2, so a wsreplay that does not know this
layout refuses the capture ("upgrade wsreplay") instead of silently reading
only the segments left at the top level.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..exceptions import CaptureFormatError
from ..schema import VERSION_KEY
from .buckets import NO_BUCKET, bucket_of
from .segments import PARQUET_SUFFIX, check_version

__all__ = [
    "COMPACT_FORMAT_VERSION",
    "LAYOUT_KEY",
    "LAYOUT_VERSION",
    "MANIFEST_NAME",
    "Layout",
    "bucket_dir",
    "bucket_files",
    "buckets_for",
    "layout_metadata",
    "layout_of",
    "read_manifest",
]

#: Format version of the files of a compacted layout (and of its manifest); plain segments stay at 1.
COMPACT_FORMAT_VERSION = 2
#: Version of the layout described above (in the ``wsreplay.layout`` metadata of every file).
LAYOUT_VERSION = 1
#: Key-value metadata key of the layout's JSON description.
LAYOUT_KEY = b"wsreplay.layout"
#: The manifest: a Parquet file without rows at the top of a compacted capture.
MANIFEST_NAME = "_wsreplay_layout" + PARQUET_SUFFIX
_PREFIX = "bucket="


def bucket_dir(root: Path, bucket: int) -> Path:
    """The directory of *bucket* (``bucket=<k>``) under *root*."""
    return root / f"{_PREFIX}{bucket}"


def layout_metadata(info: dict[str, Any]) -> dict[bytes, bytes]:
    """Schema metadata of a compacted file (or the manifest) describing *info*."""
    body = {"version": LAYOUT_VERSION, **info}
    return {VERSION_KEY: str(COMPACT_FORMAT_VERSION).encode(), LAYOUT_KEY: json.dumps(body).encode()}


def _layout_info(metadata: dict[bytes, bytes] | None, where: Path) -> dict[str, Any]:
    check_version(metadata, where)
    raw = (metadata or {}).get(LAYOUT_KEY)
    if raw is None:
        raise CaptureFormatError(f"{where} has no {LAYOUT_KEY.decode()} metadata; is it a compacted capture?")
    try:
        info = json.loads(raw)
    except ValueError:
        raise CaptureFormatError(f"{where} has unreadable {LAYOUT_KEY.decode()} metadata") from None
    if not isinstance(info, dict) or info.get("version") != LAYOUT_VERSION:
        got = info.get("version") if isinstance(info, dict) else None
        raise CaptureFormatError(
            f"{where} uses compacted layout version {got}; this wsreplay reads {LAYOUT_VERSION}: upgrade wsreplay"
        )
    return info


def _read_info(path: Path) -> dict[str, Any]:
    try:
        schema = pq.read_schema(str(path))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise CaptureFormatError(f"{path} is not a readable Parquet file ({detail}); is it a capture?") from exc
    return _layout_info(schema.metadata, path)


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of the compacted capture *root* (``buckets``, ``window``), or None if it has none."""
    m = root / MANIFEST_NAME
    if not m.is_file():
        return None
    info = _read_info(m)
    if not isinstance(info.get("buckets"), int) or info["buckets"] < 1:
        raise CaptureFormatError(f"{m}: its bucket count {info.get('buckets')!r} is not a positive integer")
    return info


@dataclass
class Layout:
    """What a compacted capture holds: its complete runs' files and the segments they replace."""

    buckets: int
    window: tuple[int, int] | None
    files: dict[int, list[Path]] = field(default_factory=dict)
    #: Top-level segment file names whose rows are in the files above (left out when reading).
    compacted: set[str] = field(default_factory=set)
    #: Files of runs that never finished (a crash): ignored; removed by the next compaction.
    incomplete: list[Path] = field(default_factory=list)

    def select(self, buckets: set[int] | None = None) -> list[Path]:
        """The files of *buckets* (all when None), in bucket then name order."""
        return [f for b, fs in sorted(self.files.items()) if buckets is None or b in buckets for f in fs]


def layout_of(root: Path) -> Layout | None:
    """The compacted layout of the capture directory *root*, or None when it was never compacted."""
    manifest = read_manifest(root) if root.is_dir() else None
    if manifest is None:
        return None
    n = int(manifest["buckets"])
    window = manifest.get("window")
    lay = Layout(buckets=n, window=(int(window[0]), int(window[1])) if window else None)
    runs: dict[str, list[tuple[int, Path, dict[str, Any]]]] = {}
    for entry in sorted(os.listdir(root)):
        if not entry.startswith(_PREFIX):
            continue
        try:
            bucket = int(entry[len(_PREFIX) :])
        except ValueError:
            continue
        d = root / entry
        if not d.is_dir():
            continue
        for name in sorted(os.listdir(d)):
            if name.startswith((".", "_")) or not name.endswith(PARQUET_SUFFIX):
                continue
            try:
                info = _read_info(d / name)
            except FileNotFoundError:  # removed meanwhile (an incomplete run being cleaned up)
                continue
            if info.get("buckets") != n or info.get("bucket") != bucket:
                raise CaptureFormatError(
                    f"{d / name} says bucket {info.get('bucket')} of {info.get('buckets')}, "
                    f"but lies in {entry} of a capture compacted into {n} buckets"
                )
            runs.setdefault(str(info.get("run")), []).append((bucket, d / name, info))
    for members in runs.values():
        if len(members) != int(members[0][2].get("run_files", -1)):
            lay.incomplete.extend(p for _, p, _ in members)
            continue
        for bucket, p, _info in members:
            lay.files.setdefault(bucket, []).append(p)
        lay.compacted.update(str(s) for s in members[0][2].get("sources", []))
    lay.files = dict(sorted(lay.files.items()))
    return lay


def bucket_files(path: str | os.PathLike[str]) -> tuple[int, dict[int, list[Path]]] | None:
    """The bucket count and each bucket's Parquet files of a compacted capture; None if not compacted.

    Buckets are :func:`wsreplay.store.buckets.bucket_of` of the outpost pk
    (``crc32(pk) % n``); :data:`~wsreplay.store.buckets.NO_BUCKET` (``-1``)
    holds the rows without an outpost. A bucket without rows has no entry.
    Only the files of finished compaction runs are listed. Segments sealed
    after the last compaction (and a live ``.arrows`` stream) are not in
    buckets: :func:`wsreplay.load` reads them too, a reader of these files
    alone does not (run ``wsreplay compact`` again first).

    Examples
    --------
    >>> n, files = bucket_files("capture/")  # doctest: +SKIP
    >>> files[bucket_of(["<pk>"], n)[0]]  # doctest: +SKIP
    [PosixPath('capture/bucket=5/part-20261130T151600-1a2b3c4d.parquet')]
    """
    lay = layout_of(Path(path))
    return None if lay is None else (lay.buckets, {b: list(fs) for b, fs in lay.files.items()})


def buckets_for(outposts: list[str], n: int) -> set[int]:
    """The buckets that can hold rows of *outposts* (never :data:`NO_BUCKET`: those rows have no outpost)."""
    return {int(b) for b in bucket_of(outposts, n) if b != NO_BUCKET}
