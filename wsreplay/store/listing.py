"""Which files make up a capture: its segments listed, and opened safely while a recorder seals them.

:func:`segment_files` lists the sealed Parquet and the Arrow stream segments
of a capture file or directory; :func:`open_segments` lists and opens them
for reading, each segment's rows exactly once even while a running recorder
renames and unlinks its files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..exceptions import CaptureNotFoundError
from .files import PARQUET_SUFFIX, STREAM_SUFFIX
from .layout import MANIFEST_NAME, layout_of

__all__ = ["Segments", "segment_files", "OpenedSegments", "open_segments"]


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


def _listed(p: Path) -> list[str]:
    """The names in directory *p* that may be segments (``_``-prefixed files are a compacted layout's manifest)."""
    return [n for n in os.listdir(p) if not n.startswith("_")]


def segment_files(path: str | os.PathLike[str], *, buckets: bool = True) -> Segments:
    """List the segments of a capture file or directory (one directory listing).

    A stream segment whose Parquet twin exists (sealed, or a crash between
    sealing and deleting the stream) is left out: the Parquet file holds the
    same rows. For a compacted capture (:mod:`wsreplay.store.layout`) the
    Parquet files are its buckets' files plus the segments sealed since;
    with ``buckets=False`` only the files at its top level (no error if
    there are none).
    To read the segments of a capture that is still being recorded,
    use :func:`load` / :func:`load_table`, which open what they list.
    """
    p = Path(path)
    _check_exists(p)
    if p.is_file():
        if p.suffix == STREAM_SUFFIX:
            return Segments(streams=[p])
        return Segments(parquet=[p])
    names = set(_listed(p))
    parquet = sorted(p / n for n in names if n.endswith(PARQUET_SUFFIX))
    streams = sorted(
        p / n for n in names if n.endswith(STREAM_SUFFIX) and n[: -len(STREAM_SUFFIX)] + PARQUET_SUFFIX not in names
    )
    parquet = [x for x in parquet if x.is_file()]
    streams = [x for x in streams if x.is_file()]
    if buckets:
        lay = layout_of(p)
        if lay is not None:  # compacted: the buckets' files, and the segments not compacted yet
            parquet = [x for x in parquet if x.name not in lay.compacted] + lay.select()
    if not parquet and not streams and (buckets or not (p / MANIFEST_NAME).is_file()):
        raise _no_segments(p)
    return Segments(parquet=parquet, streams=streams)


#: Directory listings :func:`open_segments` takes at most (it stops earlier once one adds nothing).
_MAX_LISTINGS = 8


@dataclass
class OpenedSegments:
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


def open_segments(p: Path) -> OpenedSegments:
    """List and open the segments of *p*: each segment's rows exactly once, from its stream or its Parquet.

    A directory listing that runs while files are renamed and unlinked may miss
    both the stream that was removed and the Parquet file that replaced it;
    a second listing, started after the first ended, sees that Parquet file.
    So listings are repeated until one finds no new segment (at least two).
    """
    _check_exists(p)
    opened = OpenedSegments()
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
            names = set(_listed(p))
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
    if not opened.parquet and not opened.streams and not (p / MANIFEST_NAME).is_file():
        raise _no_segments(p)
    opened.parquet.sort()
    opened.streams.sort(key=lambda item: item[0])
    return opened
