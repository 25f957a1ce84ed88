"""Recovering captures: seal what a crashed recorder left in a capture directory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import CaptureNotFoundError
from .segments import PARQUET_SUFFIX, STREAM_SUFFIX, StreamDamage, seal_stream, try_lock

__all__ = ["recover", "RecoveryReport"]


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
